"""The running dashboard through gradio_client: generate, judge, export; bad input; retried votes; quiet logs."""

import json
import logging

import pytest

from .live_app import running_app


@pytest.fixture(scope="module")
def live(small_demo, tmp_path_factory):
    db = tmp_path_factory.mktemp("api") / "db.sqlite"
    with running_app([small_demo], str(db)) as (url, ctx):
        from gradio_client import Client

        yield Client(url, verbose=False), ctx


def generate(client, prompt="How do I train a puppy?", wa='{"helpfulness": 2, "harmlessness": 0}', ma="genarm",
             wb="{}", mb="base", max_new=24, **kw):
    return client.predict(prompt, wa, ma, wb, mb, kw.get("beta", 1.0), 1.0, kw.get("top_k", 0), 1.0, max_new,
                          kw.get("seed", 0), api_name="/generate_pair")


def judge(client, a, b, verdict="A", per="{}", annotator="", comment="", key=""):
    return json.loads(client.predict(a, b, verdict, per, annotator, comment, key, api_name="/record_judgment"))


def test_generate_judge_export_round_trip(live, tmp_path):
    client, ctx = live
    out = json.loads(generate(client))
    ids = out["generation_ids"]
    rows = ctx.store.generations_frame().set_index("id")
    assert [rows.loc[i, "completion"] for i in ids] == out["completions"]
    assert rows.loc[ids[0], "setting"] == {"method": "genarm", "weights": {"helpfulness": 2.0}, "n": 1}
    assert rows.loc[ids[1], "method"] == "base"
    assert out["labels"] == ["GenARM helpfulness=2", "Base only"]
    jid = judge(client, ids[0], ids[1], "A", '{"helpfulness": "A", "harmlessness": "tie"}', "api-user", "nice")["judgment_id"]
    j = ctx.store.judgments_frame().set_index("judgment_id").loc[jid]
    assert (j.verdict, j.verdict_helpfulness, j.verdict_harmlessness, j.annotator, j.comment) == ("A", "A", "tie", "api-user", "nice")
    files, status = client.predict("TRL preference JSONL", "", "overall", "", api_name="/export")
    rows = [json.loads(l) for f in files if f.endswith(".jsonl") and ".helpfulness" not in f and ".harmlessness" not in f
            for l in open(f).read().splitlines()]
    assert {"prompt": "How do I train a puppy?", "chosen": out["completions"][0], "rejected": out["completions"][1]} in rows
    assert "pair" in status


def test_a_vote_sent_again_after_a_lost_answer_is_stored_once(live):
    """A client whose answer was lost retries: the same vote (by its key, or by pair and annotator) returns the
    judgment stored the first time."""
    client, ctx = live
    a, b = json.loads(generate(client, seed=5))["generation_ids"]
    before = ctx.store.counts()["judgments"]
    first = judge(client, a, b, "B", annotator="retrier", key="client-key-1")
    assert judge(client, a, b, "B", annotator="retrier", key="client-key-1") == first
    derived = judge(client, a, b, "A", annotator="other-client")
    assert judge(client, a, b, "A", annotator="other-client") == derived
    assert ctx.store.counts()["judgments"] == before + 2


def test_a_second_vote_with_another_verdict_is_refused_and_an_edit_changes_it(live):
    """The defect this replaces: the second vote was answered "Recorded judgment #N" (the first's id) and lost."""
    from gradio_client.exceptions import AppError

    client, ctx = live
    a, b = json.loads(generate(client, seed=11))["generation_ids"]
    first = judge(client, a, b, "A", annotator="twice", comment="first look")["judgment_id"]
    assert judge(client, a, b, "A", annotator="twice", comment="first look")["judgment_id"] == first  # a retry
    with pytest.raises(AppError, match=rf"a judgment of this pair by annotator 'twice' exists \(#{first}, verdict A\).*"
                                       rf"edit judgment #{first}.*/edit_judgment"):
        judge(client, a, b, "B", annotator="twice", comment="changed my mind")
    with pytest.raises(AppError, match="exists"):
        judge(client, a, b, "A", annotator="twice", comment="another comment", key="another-page")
    with pytest.raises(AppError, match="is by 'twice'; only they can change it"):
        client.predict(first, "B", "", "someone-else", None, api_name="/edit_judgment")
    out = json.loads(client.predict(first, "B", "", "twice", "changed my mind", api_name="/edit_judgment"))
    assert out == {"judgment_id": first, "history": 1}
    j = ctx.store.judgments_frame().set_index("judgment_id").loc[first]
    assert (j.verdict, j.comment) == ("B", "changed my mind")
    assert [h["verdict"] for h in ctx.store.judgment_history(first)] == ["A"]
    with pytest.raises(AppError, match="judgment_id must be a judgment id"):
        client.predict("first", "B", "", "twice", None, api_name="/edit_judgment")


def test_scripted_voters_at_once_lose_no_vote(live):
    """20 voters through the API at once, each voting twice on shared pairs, some changing their verdict:
    every answer is either a stored judgment that holds what was sent, or a refusal that names one."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client, ctx = live
    pairs = [json.loads(generate(client, seed=20 + i))["generation_ids"] for i in range(3)]

    def voter(i):
        c = Client(client.src, verbose=False)
        a, b = pairs[i % 3]
        answers = []
        for verdict in ("A", "A" if i % 2 else "B"):  # odd voters repeat themselves, even ones change their mind
            try:
                answers.append((verdict, judge(c, a, b, verdict, annotator=f"voter-{i}")["judgment_id"]))
            except AppError as exc:
                answers.append((verdict, str(exc)))
        return i, answers

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(voter, range(20)))
    stored = ctx.store.judgments_frame().set_index("judgment_id")
    for i, ((v1, first), (v2, second)) in results:
        assert isinstance(first, int) and stored.loc[first].verdict == v1 and stored.loc[first].annotator == f"voter-{i}"
        if v2 == v1:
            assert second == first
        else:
            assert isinstance(second, str) and f"#{first}" in second and "exists" in second
    mine = stored[stored.annotator.str.startswith("voter-")]
    assert len(mine) == 20 and mine.annotator.is_unique


@pytest.mark.parametrize("kwargs, message", [
    ({"wa": '{"helpfulness": 100}'}, "between"),
    ({"wa": '{"helpfulness": "a lot"}'}, "must be a number"),
    ({"wa": "helpfulness=1"}, "weights_a must be a JSON object"),
    ({"max_new": 100000}, "at most"),
    ({"prompt": "   "}, "prompt: the prompt is empty"),
    ({"ma": "telepathy"}, "method"),
    ({"beta": -1}, "β must be > 0"),
    ({"top_k": -5}, "top_k"),
    ({"seed": 10**30}, "seed must fit in 64 bits"),
])
def test_bad_api_input_gets_a_message_that_names_the_field(live, kwargs, message):
    from gradio_client.exceptions import AppError

    client, ctx = live
    before = ctx.store.counts()["generations"]
    with pytest.raises(AppError, match=message):
        generate(client, **kwargs)
    assert ctx.store.counts()["generations"] == before


@pytest.mark.parametrize("args, message", [
    ((999999, 999998, "A", "{}"), "no generation"),
    ((1, 2, "A wins", "{}"), "verdict must be one of"),
    ((1, 2, "A", '{"humour": "A"}'), r"unknown objective\(s\) \['humour'\]"),
    (("first", 2, "A", "{}"), "generation_a_id must be a generation id"),
    ((1, 2, "A", "{not json"), "objective_verdicts must be a JSON object"),
])
def test_bad_judgments_are_refused_and_nothing_is_stored(live, args, message):
    from gradio_client.exceptions import AppError

    client, ctx = live
    before = ctx.store.counts()
    with pytest.raises(AppError, match=message):
        client.predict(*args, "", "", "", api_name="/record_judgment")
    after = ctx.store.counts()
    assert (after["judgments"], after["objective_verdicts"]) == (before["judgments"], before["objective_verdicts"])


def test_refused_input_is_one_log_line_not_a_traceback(live, capfd, caplog):
    from gradio_client.exceptions import AppError

    client, _ = live
    caplog.set_level(logging.INFO, logger="genarm.app")
    for kwargs in ({"beta": -1}, {"top_k": -5}, {"seed": 10**30}, {"wa": '{"helpfulness": 100}'}):
        with pytest.raises(AppError):
            generate(client, **kwargs)
    with pytest.raises(AppError):
        client.predict("not a format", "", "overall", "", api_name="/export")
    err = capfd.readouterr().err
    assert "Traceback" not in err
    refused = [r.getMessage() for r in caplog.records if r.name == "genarm.app"]
    assert len(refused) == 5 and all(m.startswith("refused: ") for m in refused)


def test_a_three_annotator_session_of_30_pairs_through_the_queue_api(live):
    """Scripted annotators through /queue_next, /queue_vote, /queue_skip on a 30-pair study, overlap 3:
    every pair gets exactly 3 judgments, nobody twice; the views then show it (printed with -s)."""
    import random

    from app.service.records import annotator_agreement, judge_agreement
    from app.service.studies import StudyRunner
    from genarm_core.models.builtin import evaluation_records
    from genarm_core.evaluation.study import parse_study
    from storage.store import JudgmentFilter

    client, ctx = live
    path = ctx.sets.files[ctx.sets.current]
    study = parse_study({"name": "api queue", "model_set": str(path), "prompts": evaluation_records(path, 10),
                         "decoding": {"temperature": 1.0, "max_new_tokens": 24, "stop": ["\n\nHuman:"]},
                         "settings": ["base", {"method": "genarm", "weights": {"helpfulness": 2.0}},
                                      {"method": "genarm", "weights": {"harmlessness": 2.0}},
                                      {"method": "genarm", "weights": {"helpfulness": 1.0, "harmlessness": 2.0}}]}, "api.yaml")
    sid = StudyRunner(study, ctx.store, ctx.sets.engine, path, progress=False).run().study_id
    rng = random.Random(0)
    style = {"careful": lambda a, b: "A" if len(a) >= len(b) else "B",  # prefers the longer answer
             "hasty": lambda a, b: rng.choice(["A", "A", "B", "tie"]),
             "lefty": lambda a, b: "A"}  # always the left side
    served = []
    for _ in range(40):  # interleaved: each annotator takes one pair in turn
        for name, choose in style.items():
            item = json.loads(client.predict(sid, name, 3, api_name="/queue_next"))
            if item.get("done"):
                continue
            served.append((name, item["slot_id"]))
            if name == "hasty" and len(served) % 11 == 0:
                client.predict(item["slot_id"], name, "cannot tell", api_name="/queue_skip")
                continue
            client.predict(item["slot_id"], choose(item["a"], item["b"]), name, "", api_name="/queue_vote")
    assert json.loads(client.predict(sid, "careful", 3, api_name="/queue_next")) == {"done": True}
    # A judged slot takes no other vote; the same vote sent again (its answer lost) gets the stored judgment.
    answers = []
    for verdict in ("A", "B"):
        try:
            answers.append(json.loads(client.predict(served[0][1], verdict, "careful", "", api_name="/queue_vote")))
        except Exception as exc:  # noqa: BLE001 - the refusal, checked below
            answers.append(str(exc))
    assert sorted(type(a).__name__ for a in answers) == ["dict", "str"]
    assert any(isinstance(a, str) and "exists" in a for a in answers)
    judged = ctx.records.judgments(JudgmentFilter(study_id=sid))
    pairs = judged.groupby(["generation_a_id", "generation_b_id"]).size()
    skips = ctx.store.queue_frame(sid)
    skipped = skips[skips["status"] == "skipped"]
    assert len(pairs) <= 30 and pairs.max() <= 3
    assert not judged.duplicated(["generation_a_id", "generation_b_id", "annotator"]).any()
    # Pairs reach their overlap: with 3 annotators and skips, a pair is complete unless someone skipped it.
    assert (pairs == 3).sum() == 30 - len({(a, b) for a, b in zip(skipped["generation_a_id"], skipped["generation_b_id"])})
    from app.service.records import skip_counts

    line, table = annotator_agreement(judged, skips=skip_counts(ctx.store, sid))
    print("\n" + line)
    print(table.to_string(index=False))
    print(judge_agreement(ctx.store, judged).to_string(index=False))
    rows = table.set_index("annotator")
    assert rows.loc["lefty", "left side chosen (blind, decisive)"] == 1.0
    assert rows.loc["hasty", "share skipped"] == round(len(skipped) / (len(skipped) + rows.loc["hasty", "judgments"]), 2)
