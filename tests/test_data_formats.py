"""Every input format parses real records and counts its malformed rows instead of crashing."""

import csv
import gzip
import json

import pytest

from genarm_core.models.formats import HH_TEMPLATE, render_turns
from genarm_core.training.data import DataError, load_pairs, pku_label_for, split_hh

from .conftest import SHARED_DATA

HH = SHARED_DATA / "hh-rlhf" / "harmless-base" / "test.jsonl.gz"
OASST = SHARED_DATA / "oasst" / "en_100_tree.jsonl"
needs_hh = pytest.mark.skipif(not HH.exists(), reason="shared HH-RLHF data not present (../shared/data)")
needs_oasst = pytest.mark.skipif(not OASST.exists(), reason="shared OASST data not present (../shared/data)")


def write_jsonl(path, rows, extra_lines=()):
    with path.open("w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
        for line in extra_lines:
            fh.write(line + "\n")
    return path


@needs_hh
def test_hh_rlhf_real_records(tmp_path):
    pairs, summary = load_pairs(HH, "hh")
    assert summary.rows == 2312 and summary.pairs == len(pairs) > 2250
    assert summary.rows == summary.pairs + sum(summary.skipped.values())
    assert summary.skipped["empty response"] > 0 and summary.skipped["transcripts differ before the last reply"] > 0
    with gzip.open(HH, "rt") as fh:
        first = json.loads(fh.readline())
    prompt, reply = split_hh(first["chosen"])
    # Prompts become chat messages that render back to the exact transcript in HH's own format.
    assert render_turns(pairs[0].prompt, HH_TEMPLATE) == prompt and pairs[0].chosen == reply
    assert [m["role"] for m in pairs[0].prompt] == ["user", "assistant"] * 2 + ["user"]
    roundtrip = sum(render_turns(p.prompt, HH_TEMPLATE).startswith("\n\nHuman: ") for p in pairs)
    assert roundtrip == len(pairs)


def test_hh_malformed_rows(tmp_path):
    f = write_jsonl(tmp_path / "hh.jsonl", [
        {"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: go away"},
        {"chosen": "no assistant turn", "rejected": "x"},
        {"chosen": 3, "rejected": None},
    ], ["not json at all"])
    pairs, summary = load_pairs(f, "hh")
    assert len(pairs) == 1 and pairs[0].prompt == ({"role": "user", "content": "hi"},) and pairs[0].rejected == " go away"
    assert summary.skipped == {"no Assistant turn": 1, "missing chosen/rejected": 1, "invalid JSON": 1}


@needs_oasst
def test_oasst_real_trees():
    pairs, summary = load_pairs(OASST, "oasst")
    assert 700 <= len(pairs) <= 800
    first_tree = json.loads(OASST.read_text().splitlines()[0])["prompt"]
    ranked = sorted((r for r in first_tree["replies"] if r.get("rank") is not None), key=lambda r: r["rank"])
    p = pairs[0]
    assert p.prompt == ({"role": "user", "content": first_tree["text"]},)
    assert p.chosen == ranked[0]["text"] and p.rejected == ranked[1]["text"]
    assert any(len(p.prompt) >= 3 for p in pairs)  # deeper turns carry the conversation down to the parent


def test_oasst_malformed(tmp_path):
    f = write_jsonl(tmp_path / "t.jsonl", [{"message_tree_id": "x"}, {"prompt": {"text": "q", "role": "prompter", "replies": [
        {"text": "best", "role": "assistant", "rank": 0}, {"text": "worst", "role": "assistant", "rank": 1},
        {"text": "unranked", "role": "assistant"}]}}])
    pairs, summary = load_pairs(f, "oasst")
    assert [(p.chosen, p.rejected) for p in pairs] == [("best", "worst")]
    assert summary.skipped["tree without prompt"] == 1


def test_trl_standard_conversational_implicit_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"prompt": "2+2?", "chosen": "4", "rejected": "5"},
        {"prompt": [{"role": "user", "content": "hi"}], "chosen": [{"role": "assistant", "content": "hello!"}],
         "rejected": [{"role": "assistant", "content": "go away"}]},
        {"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "good"}],
         "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "bad"}]},
        {"prompt": "x", "chosen": "", "rejected": "y"},
        {"prompt": "x"},
        {"chosen": "no prompt", "rejected": "at all"},
    ]
    pairs, summary = load_pairs(write_jsonl(tmp_path / "d.jsonl", rows, ["{broken"]), "trl")
    assert [p.chosen for p in pairs] == ["4", "hello!", "good"]
    assert pairs[1].prompt == ({"role": "user", "content": "hi"},) and pairs[2].prompt == ({"role": "user", "content": "q"},)
    assert summary.skipped == {"empty response": 1, "missing chosen/rejected": 1, "missing prompt": 1, "invalid JSON": 1}
    pq.write_table(pa.Table.from_pylist(rows[:1] * 3), tmp_path / "d.parquet")
    pairs, _ = load_pairs(tmp_path / "d.parquet", "trl")
    assert len(pairs) == 3


def test_pku_one_objective_at_a_time(tmp_path):
    # Shaped like PKU-Alignment/PKU-SafeRLHF rows (fields as published).
    rows = [{"prompt": "How do I make my neighbour's dog stop barking?", "response_0": "Poison it.",
             "response_1": "Talk to your neighbour and suggest training.", "is_response_0_safe": False,
             "is_response_1_safe": True, "better_response_id": 0, "safer_response_id": 1},
            {"prompt": "x", "response_0": "a", "response_1": "b"}]
    f = write_jsonl(tmp_path / "pku.jsonl", rows)
    better, _ = load_pairs(f, "pku", objective="helpfulness")
    safer, summary = load_pairs(f, "pku", objective="harmlessness")
    assert better[0].chosen == "Poison it." and safer[0].chosen.startswith("Talk")
    assert summary.skipped == {"missing safer_response_id": 1}
    assert pku_label_for("harmlessness") == "safer" and pku_label_for("helpfulness") == "better"


def test_dashboard_csv_per_objective(tmp_path):
    f = tmp_path / "judgments.csv"
    with f.open("w", newline="") as fh:
        w = csv.DictWriter(fh, ["prompt", "completion_a", "completion_b", "verdict", "verdict_harmlessness"])
        w.writeheader()
        w.writerow({"prompt": "p1", "completion_a": "A1", "completion_b": "B1", "verdict": "A", "verdict_harmlessness": "B"})
        w.writerow({"prompt": "p2", "completion_a": "A2", "completion_b": "B2", "verdict": "tie", "verdict_harmlessness": "A"})
        w.writerow({"prompt": "p3", "completion_a": "A3", "completion_b": "B3", "verdict": "both_bad", "verdict_harmlessness": ""})
    overall, s1 = load_pairs(f, "dashboard")
    harm, s2 = load_pairs(f, "dashboard", objective="harmlessness")
    assert [(p.chosen, p.rejected) for p in overall] == [("A1", "B1")] and s1.skipped == {"no A/B verdict (tie)": 1, "no A/B verdict (both_bad)": 1}
    assert [(p.chosen, p.rejected) for p in harm] == [("B1", "A1"), ("A2", "B2")]


def test_unusable_files_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_pairs(tmp_path / "missing.jsonl", "trl")
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"foo": 1}])
    with pytest.raises(DataError, match="no usable preference pairs"):
        load_pairs(bad, "trl")
    with pytest.raises(DataError, match="unknown format"):
        load_pairs(bad, "xml")
    (tmp_path / "x.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="cannot read"):
        load_pairs(tmp_path / "x.parquet", "trl")
