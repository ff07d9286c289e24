"""The running dashboard through gradio_client: generate, judge, export; stored rows match."""

import json

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
    return client.predict(prompt, wa, ma, wb, mb, kw.get("beta", 1.0), 1.0, 0, 1.0, max_new, 0, api_name="/generate_pair")


def test_generate_judge_export_round_trip(live, tmp_path):
    client, ctx = live
    out = json.loads(generate(client))
    ids = out["generation_ids"]
    rows = ctx.store.generations_frame().set_index("id")
    assert [rows.loc[i, "completion"] for i in ids] == out["completions"]
    assert rows.loc[ids[0], "weights"] == {"helpfulness": 2.0, "harmlessness": 0.0} and rows.loc[ids[1], "method"] == "base"
    assert out["labels"] == ["genarm helpfulness=2", "base"]
    jid = json.loads(client.predict(ids[0], ids[1], "A", '{"helpfulness": "A", "harmlessness": "tie"}', "api-user", "nice",
                                    api_name="/record_judgment"))["judgment_id"]
    j = ctx.store.judgments_frame().set_index("judgment_id").loc[jid]
    assert (j.verdict, j.verdict_helpfulness, j.verdict_harmlessness, j.annotator, j.comment) == ("A", "A", "tie", "api-user", "nice")
    files, status = client.predict("TRL preference JSONL", "", "overall", "", api_name="/export")
    rows = [json.loads(l) for f in files if f.endswith(".jsonl") and ".helpfulness" not in f and ".harmlessness" not in f
            for l in open(f).read().splitlines()]
    assert {"prompt": "How do I train a puppy?", "chosen": out["completions"][0], "rejected": out["completions"][1]} in rows
    assert "pairs" in status


@pytest.mark.parametrize("kwargs, message", [
    ({"wa": '{"helpfulness": 100}'}, "between"),
    ({"wa": '{"helpfulness": "a lot"}'}, "must be a number"),
    ({"wa": "helpfulness=1"}, "JSON object"),
    ({"max_new": 100000}, "at most"),
    ({"prompt": "   "}, "empty"),
    ({"ma": "telepathy"}, "method"),
])
def test_bad_api_input_gets_a_message(live, kwargs, message):
    from gradio_client.exceptions import AppError

    client, _ = live
    with pytest.raises(AppError, match=message):
        generate(client, **kwargs)


def test_judging_unknown_generations_is_refused(live):
    from gradio_client.exceptions import AppError

    client, ctx = live
    before = ctx.store.counts()["judgments"]
    with pytest.raises(AppError, match="no generation"):
        client.predict(999999, 999998, "A", "{}", "", "", api_name="/record_judgment")
    with pytest.raises(AppError, match="verdict"):
        client.predict(1, 2, "A wins", "{}", "", "", api_name="/record_judgment")
    assert ctx.store.counts()["judgments"] == before
