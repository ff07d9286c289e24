"""The dashboard's service layer on tiny models: validation, storage of every generation, sweeps."""

import pytest

from app.render import token_html
from app.service import AppContext, UserError, parse_grid, read_prompt_list
from storage.store import Store


@pytest.fixture
def ctx(tiny_set, tmp_path):
    return AppContext({"tiny": tiny_set}, Store(str(tmp_path / "db.sqlite")))


def run(ctx, prompt, panels, **kw):
    cfg = ctx.decoding(kw.get("beta", 1), 1.0, 0, 1.0, kw.get("max_new", 8), 0)
    return list(ctx.generate(prompt, panels, cfg))


def test_pair_is_generated_streamed_and_stored(ctx):
    panels = [ctx.panel("GenARM", {"helpfulness": 1.0, "harmlessness": 0.5}), ctx.panel("Base only", {})]
    updates = run(ctx, "Human: hi Assistant:", panels)
    assert len(updates) >= 2 and not updates[0].done and updates[-1].done
    final = updates[-1]
    frame = ctx.store.generations_frame(include_trace=True)
    assert list(frame["id"]) == final.generation_ids
    assert list(frame["completion"]) == final.texts and list(frame["method"]) == ["genarm", "base"]
    assert frame.loc[0, "weights"] == {"helpfulness": 1.0, "harmlessness": 0.5} and frame.loc[1, "weights"] == {}
    assert frame.loc[0, "trace"] and frame.loc[0, "model_set_id"] == ctx.model_set_id
    jid = ctx.judge(final.generation_ids, "A", {"helpfulness": "A"}, annotator="me")
    j = ctx.store.judgments_frame().iloc[0]
    assert j.judgment_id == jid and j.completion_a == final.texts[0] and j.verdict_helpfulness == "A"


def test_best_of_n_panel(ctx):
    final = run(ctx, "Hello", [ctx.panel("Best-of-N", {"helpfulness": 1.0}, 3), ctx.panel("GenARM", {"helpfulness": 1.0})])[-1]
    assert final.done and len(final.results[0].candidates) == 3


@pytest.mark.parametrize("call, message", [
    (lambda c: c.panel("GenARM", {"helpfulness": 99}), "between"),
    (lambda c: c.panel("GenARM", {"helpfulness": "much"}), "must be a number"),
    (lambda c: c.panel("GenARM", {"kindness": 1}), "unknown objective"),
    (lambda c: c.panel("Magic", {}), "method"),
    (lambda c: c.decoding(1, 1, 0, 1, 10_000, 0), "at most"),
    (lambda c: c.decoding(0, 1, 0, 1, 8, 0), "beta"),
    (lambda c: c.decoding("x", 1, 0, 1, 8, 0), "numbers"),
    (lambda c: run(c, "   ", [c.panel("GenARM", {})]), "empty"),
    (lambda c: c.judge([], "A"), "generate a pair first"),
])
def test_bad_input_gets_a_clear_message(ctx, call, message):
    with pytest.raises(UserError, match=message):
        call(ctx)


def test_too_long_prompt_is_cut_with_a_warning(ctx):
    long_prompt = "word " * 2000 + "THE END"
    final = run(ctx, long_prompt, [ctx.panel("GenARM", {})], max_new=8)[-1]
    assert final.done and "only its last" in final.warning
    stored = ctx.store.generations_frame().iloc[0]["prompt"]
    assert stored.endswith("THE END") and len(stored) < len(long_prompt)


def test_sweep_batches_the_grid_and_stores_it(ctx):
    grid = parse_grid("helpfulness: 0, 2; harmlessness: 0:1:2", ctx.objectives)
    assert grid == {"helpfulness": [0.0, 2.0], "harmlessness": [0.0, 1.0]}
    cfg = ctx.decoding(1, 1, 0, 1, 6, 0, trace=False)
    steps = list(ctx.sweep(["Hello", "Tell me a joke."], grid, cfg, samples=2))
    sweep_id, df = steps[-1][1]
    assert len(df) == 4 * 2 * 2 and df["setting"].nunique() == 4
    assert {"score_helpfulness", "score_harmlessness", "w_helpfulness", "w_harmlessness"} <= set(df.columns)
    assert df["score_helpfulness"].notna().all()
    assert len(ctx.store.generations_frame(sweep_id=sweep_id)) == 16
    with pytest.raises(UserError, match="expected"):
        parse_grid("kindness: 1", ctx.objectives)
    assert parse_grid("helpfulness: 0:2:5", ctx.objectives) == {"helpfulness": [0.0, 0.5, 1.0, 1.5, 2.0]}
    for bad, msg in [("helpfulness: 1..2", "neither a number"), ("helpfulness: 0:1", "neither a number"),
                     ("helpfulness: 0:1:0", "between 1 and 101"), ("helpfulness: x", "neither a number")]:
        with pytest.raises(UserError, match=msg):
            parse_grid(bad, ctx.objectives)


def test_prompt_lists(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "a"}\n"b"\n')
    assert read_prompt_list("x\n\ny", str(f)) == ["x", "y", "a", "b"]
    f.write_text('plain text\n"Hello", she said\n[{"role": "user", "content": "hi"}]\n{"prompt": "c", "id": 3}\n')
    assert read_prompt_list(path=str(f)) == ["plain text", '"Hello", she said', [{"role": "user", "content": "hi"}], "c"]
    f.write_text('ok\n{"prompt": "broken\n')
    with pytest.raises(UserError, match=r"p.jsonl:2: not valid JSON"):
        read_prompt_list(path=str(f))
    f.write_text('{"text": "no prompt key"}\n')
    with pytest.raises(UserError, match="expected a string"):
        read_prompt_list(path=str(f))
    with pytest.raises(UserError, match="pasted list:1"):
        read_prompt_list("[1, 2]")  # a JSON list that is not a chat


def test_token_view_escapes_html():
    trace = [{"id": 1, "text": "<script>alert(1)</script>", "logprob": -0.1, "combined_logprob": -0.2,
              "base_logprob": -1.0, "arm_logprobs": {"helpfulness": -0.5}}]
    out = token_html(trace)
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "rgba(22,163,74" in out  # pushed up: green
    assert "helpfulness ARM log-prob: -0.500" in out


def test_chat_prompts_are_parsed_and_stored_as_messages(ctx):
    from app.service import parse_chat

    msgs = parse_chat("System: be nice\nUser: hi\nAssistant: hello!\nhow are you?\nUser: tell me a joke")
    assert msgs == [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello!\nhow are you?"}, {"role": "user", "content": "tell me a joke"}]
    assert parse_chat("just text") == [{"role": "user", "content": "just text"}]
    with pytest.raises(UserError, match="end with"):
        parse_chat("User: hi\nAssistant: hello")
    final = run(ctx, msgs, [ctx.panel("GenARM", {"helpfulness": 1.0})])[-1]
    row = ctx.store.generations_frame().iloc[0]
    assert row["prompt_messages"] == msgs and "tell me a joke" in row["prompt"] and final.done


def test_auth_parsing(tmp_path):
    from app.server import parse_auth

    assert parse_auth(None, None) is None
    f = tmp_path / "users"
    f.write_text("# team\nalice:secret\nbob:pw\n")
    assert parse_auth("root:x", str(f)) == [("root", "x"), ("alice", "secret"), ("bob", "pw")]
    with pytest.raises(SystemExit, match="USER:PASS"):
        parse_auth("nopassword", None)


def test_switching_model_sets_only_among_configured_ones(ctx, tiny_set):
    with pytest.raises(UserError, match="unknown model set"):
        ctx.load("../../etc/passwd")
    before = ctx.models
    ctx.model_sets["broken"] = tiny_set.parent / "missing.yaml"
    with pytest.raises(ValueError):
        ctx.load("broken")
    assert ctx.models is before and ctx.current == "tiny"  # a failed switch keeps the loaded set


def test_a_locked_database_loses_nothing(tiny_set, tmp_path):
    """Another process holds SQLite's write lock past the busy timeout: the pair is shown, kept in
    memory, and written with the next generation once the lock is gone; a vote meanwhile is refused."""
    import sqlite3

    db = tmp_path / "db.sqlite"
    ctx = AppContext({"tiny": tiny_set}, Store(str(db), busy_timeout_s=0.2))
    panels = [ctx.panel("GenARM", {"helpfulness": 1.0}), ctx.panel("Base only", {})]
    first = run(ctx, "Hello", panels)[-1]
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    try:
        blocked = run(ctx, "Tell me a joke.", panels)[-1]
        assert blocked.done and blocked.generation_ids is None and len(blocked.texts) == 2
        assert "not stored" in blocked.warning and "database is locked" in blocked.warning and ctx.pending == 2
        with pytest.raises(UserError, match="judgment was not stored"):
            ctx.judge(first.generation_ids, "A")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    after = run(ctx, "Hello", panels)[-1]
    assert after.generation_ids and ctx.pending == 0
    frame = ctx.store.generations_frame()
    assert list(frame["prompt"]) == ["Hello", "Hello", "Tell me a joke.", "Tell me a joke.", "Hello", "Hello"]
    assert list(frame["completion"][2:4]) == blocked.texts and list(frame["id"][4:]) == after.generation_ids
    assert ctx.judge(first.generation_ids, "A") > 0


def test_models_tab_shows_how_each_arm_was_trained(small_demo, tmp_path):
    from app.render import training_figure, training_table

    ctx = AppContext({"demo": small_demo}, Store(str(tmp_path / "db.sqlite")))
    logs = ctx.training_logs()
    assert set(logs) == {"helpfulness", "harmlessness"}
    table = training_table(logs)
    assert list(table["objective"]) == ["helpfulness", "harmlessness"]
    assert (table["accuracy after"] > table["accuracy before"]).all()
    fig = training_figure(logs)
    assert {t.name for t in fig.data} == {"helpfulness", "harmlessness"} and len(fig.data) == 4
    assert "no training log" in training_figure({}).layout.title.text
