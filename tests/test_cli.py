"""``genarm generate``: one JSON object per prompt, the model set's defaults, errors on stderr."""

import json
import subprocess
import sys

import pytest

from .conftest import tiny_variant


def run(*args):
    return subprocess.run([sys.executable, "-m", "genarm_core", *args], capture_output=True, text=True, timeout=300)


def test_generate_json(tiny_set, tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "Tell me a joke."}\nplain text prompt\n')
    out = run("generate", "--models", str(tiny_set), "--prompt", "How do I bake bread?", "--prompt-file", str(prompts),
              "--weights", "helpfulness=1.0,harmlessness=0.5", "--beta", "1", "--temperature", "1", "--top-k", "0",
              "--top-p", "1", "--max-new-tokens", "6", "--seed", "0", "--json", "--trace")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(l) for l in out.stdout.splitlines()]
    assert [l["prompt"] for l in lines] == ["How do I bake bread?", "Tell me a joke.", "plain text prompt"]
    first = lines[0]
    assert len(first["token_ids"]) == len(first["trace"]) <= 6
    assert set(first["prompt_ids"]) == {"base", "helpfulness", "harmlessness"}
    assert first["settings"]["max_new_tokens"] == 6 and first["weights"] == {"helpfulness": 1.0, "harmlessness": 0.5}
    assert set(first["trace"][0]) >= {"id", "text", "logprob", "base_logprob", "arm_logprobs"}
    again = run("generate", "--models", str(tiny_set), "--prompt", "How do I bake bread?", "--weights",
                "helpfulness=1.0,harmlessness=0.5", "--max-new-tokens", "6", "--json")
    plain = json.loads(again.stdout.splitlines()[0])
    assert plain["completion"] == first["completion"]  # same seed, same text
    assert plain["trace"] is None  # --json alone records no trace


def test_the_model_sets_defaults_apply_and_flags_override(tiny_set):
    def with_defaults(data):
        for spec in data["objectives"].values():
            spec["max_weight"] = 1.0
        data["defaults"] = {"temperature": 0.5, "top_p": 0.8, "max_new_tokens": 5, "stop": ["zzz"]}
    f = tiny_variant(tiny_set, "cli_defaults.yaml", with_defaults)
    out = json.loads(run("generate", "--models", str(f), "--prompt", "Hi", "--json").stdout)
    assert out["settings"]["temperature"] == 0.5 and out["settings"]["top_p"] == 0.8 and out["settings"]["stop"] == ["zzz"]
    assert out["n_tokens"] <= 5
    out = json.loads(run("generate", "--models", str(f), "--prompt", "Hi", "--json", "--temperature", "0.9",
                         "--max-new-tokens", "3").stdout)
    assert out["settings"]["temperature"] == 0.9 and out["settings"]["top_p"] == 0.8 and out["n_tokens"] <= 3
    # Best-of-N takes N = 8 unless told; weights outside the set's range are refused, as in the dashboard.
    bon = json.loads(run("generate", "--models", str(f), "--prompt", "Hi", "--method", "best_of_n", "--json").stdout)
    assert len(bon["candidates"]) == 8 and bon["setting"]["n"] == 8
    bad = run("generate", "--models", str(f), "--prompt", "Hi", "--weights", "helpfulness=2")
    assert bad.returncode == 2 and "between -2 and 1" in bad.stderr and not bad.stdout


def test_errors_go_to_stderr(tiny_set, tmp_path):
    bad = run("generate", "--models", str(tiny_set), "--prompt", "x", "--weights", "helpfulness=lots")
    assert bad.returncode == 2 and "needs a number" in bad.stderr and not bad.stdout
    missing = run("generate", "--models", str(tmp_path / "none.yaml"), "--prompt", "x")
    assert missing.returncode == 2 and "neither a model-set file nor a built-in name" in missing.stderr
    assert "Traceback" not in missing.stderr
    unknown = run("generate", "--models", str(tiny_set), "--prompt", "x", "--weights", "kindness=1")
    assert unknown.returncode == 2 and "unknown objective" in unknown.stderr
    empty = run("generate", "--models", str(tiny_set), "--prompt", "   ")
    assert empty.returncode == 2 and "prompt 1 is empty" in empty.stderr


def test_every_option_has_help_and_shows_its_default():
    out = run("generate", "--help").stdout + run("train-arm", "--help").stdout
    for flag in ("--temperature", "--top-p", "--max-new-tokens", "--beta-r", "--sft-weight", "--chat-template"):
        assert flag in out
    assert "(default: the model set's, else 1.0)" in out and "(default: 0.05)" in out


def test_genarm_command_dispatches(tiny_set):
    from app.cli import main

    assert main([]) == 2 and main(["--help"]) == 0
    assert subprocess.run([sys.executable, "-m", "app.cli", "stats", "--help"], capture_output=True,
                          text=True).stdout.startswith("usage: genarm stats")


def test_stats_ratings_prints_bradley_terry_with_intervals(tmp_path, capsys):
    """`genarm stats ratings`: base anchored at 1000, a setting that wins most battles above it, a setting
    judged too rarely shown as "not enough judgments" rather than a number."""
    import csv
    import io

    from app.cli import main
    from storage.store import Store

    from .storage_helpers import gen_record

    db = tmp_path / "r.db"
    store = Store(str(db))
    bon = {"method": "best_of_n", "weights": {"helpfulness": 1.0}, "n": 4}
    for i, (verdict, other) in enumerate([("A", None)] * 8 + [("B", None)] * 2 + [("tie", None)] * 2 + [("A", bon)] * 2):
        a, b = store.add_generations([gen_record(prompt=f"p{i}", weights={"helpfulness": 1.0}),
                                      gen_record(prompt=f"p{i}", completion="x", method="best_of_n" if other else "base",
                                                 weights=other["weights"] if other else {}, setting=other)])
        store.add_judgment(a, b, verdict, annotator="ann")
    store.close()
    assert main(["stats", "ratings", "--db", str(db), "--format", "csv", "--rounds", "50"]) == 0
    rows = {r["setting"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert rows["Base only"]["rating"] == "1000" and rows["Base only"]["note"] == "anchor"
    assert int(rows["GenARM helpfulness=1"]["rating"]) > 1000 and rows["GenARM helpfulness=1"]["battles"] == "14"
    low, high = (float(x) for x in rows["GenARM helpfulness=1"]["95% CI"].strip("[]").split(","))
    assert low < int(rows["GenARM helpfulness=1"]["rating"]) < high
    bon_row = next(r for name, r in rows.items() if name.startswith("Best-of-"))
    assert bon_row["rating"] == "" and bon_row["note"] == "not enough judgments"
    assert main(["stats", "ratings", "--db", str(db), "--anchor", "nobody"]) == 2
    assert "anchor: no judgments of 'nobody'" in capsys.readouterr().err
    assert main(["stats", "ratings", "--db", str(db)]) == 0 and "| setting | rating |" in capsys.readouterr().out


def test_pairwise_win_fractions_and_battle_counts(tmp_path):
    """The Judgments tab's heatmaps: each setting against each other, both orientations, with the count."""
    from app.render import pairwise_figure
    from app.service.records import Records, pairwise_table
    from storage.store import JudgmentFilter, Store

    from .storage_helpers import gen_record

    store = Store(str(tmp_path / "p.db"))
    bon = {"method": "best_of_n", "weights": {"helpfulness": 1.0}, "n": 4}
    for i, (verdict, other) in enumerate([("A", None)] * 6 + [("tie", None)] * 2 + [("B", bon)] * 2):
        a, b = store.add_generations([gen_record(prompt=f"p{i}", weights={"helpfulness": 1.0}),
                                      gen_record(prompt=f"p{i}", completion="x", method="best_of_n" if other else "base",
                                                 weights=other["weights"] if other else {}, setting=other)])
        store.add_judgment(a, b, verdict, annotator="ann")
    _, full = Records(store).judgments_table(JudgmentFilter())
    pairs = pairwise_table(full, rounds=100).set_index(["setting", "opponent"])
    genarm, base = "GenARM helpfulness=1", "Base only"
    assert pairs.loc[(genarm, base), "battles"] == 8 and pairs.loc[(base, genarm), "battles"] == 8
    assert pairs.loc[(genarm, base), "win_fraction"] == pytest.approx(7 / 8)  # 6 wins, 2 ties as halves
    assert pairs.loc[(base, genarm), "win_fraction"] == pytest.approx(1 / 8)
    assert pairs.loc[(genarm, base), "low"] <= 7 / 8 <= pairs.loc[(genarm, base), "high"]
    bon_name = next(s for s, _ in pairs.index if s.startswith("Best-of-"))
    assert pairs.loc[(bon_name, genarm), "win_fraction"] == 1.0 and pairs.loc[(bon_name, genarm), "battles"] == 2
    fig = pairwise_figure(pairwise_table(full, rounds=50), "t")
    heat, counts = fig.data
    names = list(heat.y)
    i, j = names.index(genarm), names.index(base)
    assert heat.z[i][j] == pytest.approx(7 / 8) and counts.z[i][j] == 8
    k = names.index(bon_name)
    assert heat.z[k][i] is None and heat.text[k][i] == "n=2"  # below the minimum: no colour, the count instead
    store.close()


def test_annotator_agreement_alpha_majority_and_position_bias(tmp_path, capsys):
    """Three named annotators on the same pairs, some shown swapped: verdicts are compared in one
    orientation, α matches Krippendorff's own package on the same matrix, and an annotator who
    always clicks the left panel shows a position bias of 1.0."""
    import krippendorff

    from app.cli import main
    from app.service.records import Records, annotator_agreement
    from storage.store import JudgmentFilter, Store

    from .storage_helpers import gen_record

    db = tmp_path / "a.db"
    store = Store(str(db))
    pairs = [store.add_generations([gen_record(prompt=f"p{i}", weights={"helpfulness": 1.0}),
                                    gen_record(prompt=f"p{i}", completion="other", method="base", weights={})])
             for i in range(4)]
    truth = ["A", "B", "A", "tie"]  # what "ann" and "bob" see, in stored order
    for (a, b), v in zip(pairs, truth):
        store.add_judgment(a, b, v, annotator="ann", blind=True)
        store.add_judgment(a, b, v if v != "tie" else "A", annotator="bob", blind=True)
    # "lefty" clicks the left panel every time; on pairs 1 and 3 the sides were swapped (left = stored B).
    for k, (a, b) in enumerate(pairs):
        swapped = k % 2 == 1
        store.add_judgment(a, b, "B" if swapped else "A", annotator="lefty", blind=True, swapped=swapped)
    store.add_judgment(*pairs[0], "B", annotator="")  # an unnamed vote is not anyone's
    full = Records(store).judgments(JudgmentFilter())
    line, table = annotator_agreement(full)
    labels = {"ann": truth, "bob": ["A", "B", "A", "A"], "lefty": ["A", "B", "A", "B"]}
    code = {"A": 0, "B": 1, "tie": 2}
    expected = krippendorff.alpha(reliability_data=[[code[x] for x in v] for v in labels.values()],
                                  level_of_measurement="nominal")
    assert f"Krippendorff's α (nominal) = {expected:.2f}" in line and "4 pairs judged by two or more" in line
    # Annotator pairs: (ann, bob) agree on 3 of 4, (ann, lefty) 3, (bob, lefty) 3 → 9 of 12.
    assert "agree 0.75 of the time (n = 12)" in line
    rows = table.set_index("annotator")
    assert list(rows.index) == ["ann", "bob", "lefty"]
    assert rows.loc["lefty", "left side chosen (blind, decisive)"] == 1.0 and rows.loc["lefty", "blind decisive"] == 4
    assert rows.loc["ann", "agrees with the others' majority"] == 1.0  # pair 3: bob and lefty disagree, no majority
    assert rows.loc["ann", "items with a majority"] == 3
    assert rows.loc["bob", "median seconds"] is not None and rows.loc["bob", "median seconds"] >= 0
    store.close()
    assert main(["stats", "agreement", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "Krippendorff" in out and "| lefty |" in out
