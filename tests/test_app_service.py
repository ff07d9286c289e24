"""The dashboard's service layer and tab handlers on tiny models, without a browser."""

import pytest

from app.render import token_html
from app.service import AppContext, UserError, parse_grid, read_prompt_list, win_rates
from app.service import requests as req
from app.tabs import compare
from genarm_core.models.config import Setting
from storage.store import JudgmentFilter, Store

from .conftest import run_cancelled_after_the_first_batch, tiny_variant, tiny_variant_data


@pytest.fixture
def ctx(tiny_set, tmp_path):
    c = AppContext({"tiny": tiny_set}, Store(str(tmp_path / "db.sqlite")))
    yield c
    c.records.close()


def run_queued(ctx, prompts, settings, cfg, **kw):
    """A dashboard study queued and run by a worker (here, in this process); its report."""
    from app.worker import Worker

    job = ctx.submit_study(prompts, settings, cfg, **kw)
    assert Worker(ctx.store, "test-worker").run_once()
    done = ctx.job(job)
    assert done["status"] == "done", done["message"]
    return ctx.study_report(done["study_id"])


def run(ctx, prompt, settings, blind=False, **kw):
    cfg = ctx.decoding(kw.get("beta", 1), 1.0, 0, 1.0, kw.get("max_new", 8), kw.get("seed", 0))
    return list(ctx.generate_pair(prompt, settings, cfg, blind=blind))


def panels(ctx, *specs):
    return [ctx.setting(m, w) for m, w in specs]


def test_pair_is_generated_streamed_and_stored(ctx):
    settings = panels(ctx, ("GenARM", {"helpfulness": 1.0, "harmlessness": 0.5}), ("Base only", {}))
    updates = run(ctx, "Human: hi Assistant:", settings)
    assert len(updates) >= 2 and not updates[0].done and updates[-1].done
    pair = updates[-1].pair
    frame = ctx.store.generations_frame(include_trace=True)
    assert list(frame["id"]) == pair.ids and list(frame["completion"]) == updates[-1].texts
    assert list(frame["method"]) == ["genarm", "base"]
    assert frame.loc[0, "setting"] == {"method": "genarm", "weights": {"harmlessness": 0.5, "helpfulness": 1.0}, "n": 1}
    assert frame.loc[1, "setting"] == {"method": "base", "weights": {}, "n": 1}
    assert frame.loc[0, "trace"] and frame.loc[0, "model_set_id"] == ctx.model_set_id
    stored = ctx.judge_pair(pair, "A", {"helpfulness": "A"}, annotator="me")
    j = ctx.store.judgments_frame().iloc[0]
    assert j.judgment_id == stored.judgment_id and j.completion_a == updates[-1].texts[0] and j.verdict_helpfulness == "A"
    with pytest.raises(UserError, match="already judged"):
        ctx.judge_pair(pair.voted_copy(), "A", {}, "me")


def test_votes_repeat_conflict_and_edit_through_the_service(ctx):
    """Same key and content: the stored judgment; other content: refused naming it; a change is an edit."""
    from app.service import AlreadyJudged

    settings = panels(ctx, ("GenARM", {"helpfulness": 1.0}), ("Base only", {}))
    pair = run(ctx, "Hello", settings)[-1].pair
    a, b = pair.ids
    first = ctx.judge_api(a, b, "A", "{}", "ann", "ok").judgment_id
    assert ctx.judge_api(a, b, "A", "{}", "ann", "ok").judgment_id == first
    with pytest.raises(AlreadyJudged, match=rf"exists \(#{first}, verdict A\)") as info:
        ctx.judge_api(a, b, "tie", "{}", "ann", "ok")
    assert info.value.judgment_id == first
    # The page of a pair this annotator already judged elsewhere says so and offers no buttons again.
    voted, status, views = compare.vote(ctx, pair, "B", {}, "ann", "", "combined shift")
    assert voted.voted and status.startswith("Not recorded: a judgment of this pair by annotator 'ann' exists")
    assert ctx.store.counts()["judgments"] == 1
    ctx.edit_api(first, "B", None, "ann", None)
    j = ctx.store.judgments_frame().iloc[0]
    assert (j.verdict, j.comment) == ("B", "ok") and [h["verdict"] for h in ctx.records.history(first)] == ["A"]
    with pytest.raises(UserError, match="only they can change it"):
        ctx.edit_api(first, "A", None, "bob", None)
    # The Judgments tab's form (no login: no identity to check; with one, only one's own judgments).
    from app.tabs import judgments

    assert judgments.change_verdict(ctx, first, "tie", "", None) == f"Judgment #{first} now reads tie; 2 earlier verdicts kept."
    with pytest.raises(UserError, match="only they can change it"):
        judgments.change_verdict(ctx, first, "A better", "", "bob")
    with pytest.raises(UserError, match="judgment_id must be a judgment id"):
        judgments.change_verdict(ctx, None, "A better", "", None)


def test_best_of_n_panel(ctx):
    final = run(ctx, "Hello", [ctx.setting("Best-of-N", {"helpfulness": 1.0}, 3), ctx.setting("GenARM", {"helpfulness": 1.0})])[-1]
    assert final.done and final.pair.settings[0] == Setting("best_of_n", {"helpfulness": 1.0}, 3)
    # Best-of-N ranks its samples by the weights, so its sliders stay shown; a base panel's do not.
    views = compare.panel_views(final.pair, "combined shift")
    assert [v.controls_visible for v in views] == [True, True]
    base = run(ctx, "Hello", [ctx.setting("Best-of-N", {"helpfulness": 1.0}, 3), ctx.setting("Base only", {})])[-1]
    assert [v.controls_visible for v in compare.panel_views(base.pair, "combined shift")] == [True, False]


@pytest.mark.parametrize("call, message", [
    (lambda c: c.setting("GenARM", {"helpfulness": 99}), "between"),
    (lambda c: c.setting("GenARM", {"helpfulness": "much"}), "weight of 'helpfulness' must be a number"),
    (lambda c: c.setting("GenARM", {"helpfulness": None}, where="panel A"), "panel A: weight of 'helpfulness'"),
    (lambda c: c.setting("GenARM", {"helpfulness": "NaN"}), "must be a number"),
    (lambda c: c.setting("GenARM", {"kindness": 1}), "unknown objective"),
    (lambda c: c.setting("Magic", {}), "method"),
    (lambda c: c.decoding(1, 1, 0, 1, 10_000, 0), "at most"),
    (lambda c: c.decoding(0, 1, 0, 1, 8, 0), "β must be > 0"),
    (lambda c: c.decoding("x", 1, 0, 1, 8, 0), "β must be a number"),
    (lambda c: c.decoding(1, 1, -3, 1, 8, 0), "top_k"),
    (lambda c: c.decoding(1, 1, 0, 1, 8, 10**30), "seed must fit in 64 bits"),
    (lambda c: c.decoding(1, 1, 0, 1, 8, 1.5), "seed must be a whole number"),
    (lambda c: run(c, "   ", [c.setting("GenARM", {})]), "prompt: the prompt is empty"),
    (lambda c: c.judge_pair(None, "A", {}, ""), "generate a pair first"),
    (lambda c: c.judge_api("x", 2, "A", "{}"), "generation_a_id must be a generation id"),
    (lambda c: c.judge_api(1, 2, "A", '{"humour": "A"}'), r"unknown objective\(s\) \['humour'\]"),
    (lambda c: c.judge_api(1, 2, "A", "{oops"), "objective_verdicts must be a JSON object"),
    (lambda c: c.judge_api(1, 2, "A wins", "{}"), "verdict must be one of"),
])
def test_bad_input_gets_a_message_that_names_the_field(ctx, call, message):
    with pytest.raises(UserError, match=message):
        call(ctx)


def test_blind_mode_hides_everything_that_tells_the_sides_apart(ctx):
    settings = panels(ctx, ("GenARM", {"helpfulness": 2.0}), ("Base only", {}))
    seen_orders = set()
    for seed in range(8):
        pair = run(ctx, "Hello", settings, blind=True, seed=seed)[-1].pair
        seen_orders.add(tuple(pair.order))
        views = compare.panel_views(pair, "combined shift")
        assert {v.reveal for v in views} == {"*setting hidden until you vote*"} and not any(v.controls_visible for v in views)
        # The token views are grey and carry no numbers, for the base panel as for the aligned one.
        for v in views:
            assert "genarm-neutral" in v.tokens and "shift" not in v.tokens and "rgba(22,163,74" not in v.tokens
        voted, status, revealed = compare.vote(ctx, pair, "A", {}, "me", "", "combined shift")
        assert "(revealed)" in revealed[0].reveal and "shift" in "".join(v.tokens for v in revealed)
        # The vote is about what was shown: un-swapped before it is stored.
        j = ctx.store.judgments_frame().iloc[-1]
        assert j.swapped == pair.swapped and j.verdict == ("B" if pair.swapped else "A")
    assert seen_orders == {(0, 1), (1, 0)}


def test_a_refused_request_leaves_nothing_votable(ctx):
    request = compare.PairRequest("tiny", "Hello", False, -1, 1, 0, 1, 8, 0, False, "combined shift",
                                  [compare.PanelInput("GenARM", 4, {"helpfulness": 1.0}), compare.PanelInput("Base only", 4, {})])
    with pytest.raises(UserError, match="β must be > 0"):
        list(compare.run_pair(ctx, request))
    stale = compare.PairRequest(**{**request.__dict__, "shown_set": "another", "beta": 1})
    with pytest.raises(UserError, match="reload the page"):
        list(compare.run_pair(ctx, stale))
    assert ctx.store.counts()["generations"] == 0


def test_a_typed_annotator_name_survives_the_page_load():
    import gradio as gr

    assert compare.remembered_annotator("", "alice", None) == "alice"
    kept = compare.remembered_annotator("bob", "alice", None)  # typed before the load finished: left alone
    assert kept != "alice" and kept == gr.skip()
    assert compare.remembered_annotator("bob", "alice", "carol") == "carol"  # a login wins


def test_too_long_prompt_is_cut_with_a_warning(ctx):
    long_prompt = "word " * 2000 + "THE END"
    final = run(ctx, long_prompt, [ctx.setting("GenARM", {})], max_new=8)[-1]
    assert final.done and "only its last" in final.warning
    stored = ctx.store.generations_frame().iloc[0]["prompt"]
    assert stored.endswith("THE END") and len(stored) < len(long_prompt)


def test_a_dashboard_study_runs_the_grid_with_the_base_as_reference_and_judges_it(ctx):
    from app.service.studies import grid_settings
    from app.tabs import studies

    grid = parse_grid("helpfulness: 0, 2; harmlessness: 0:1:2", ctx.objectives)
    assert grid == {"helpfulness": [0.0, 2.0], "harmlessness": [0.0, 1.0]}
    cfg = ctx.decoding(1, 1, 0, 1, 6, 0, trace=False)
    settings = studies.study_settings(ctx, "helpfulness: 0, 2; harmlessness: 0:1:2", "2")
    assert len(settings) == 5 and settings[-1].label == "Best-of-2 harmlessness=1 helpfulness=1"
    report = run_queued(ctx, ["Hello", "Tell me a joke."], settings, cfg, samples=2)
    # The base alone is added as the reference; the grid's all-zero point is a setting of its own.
    assert report.reference == "Base only" and report.settings[:2] == ["Base only", "GenARM (all weights 0)"]
    assert len(report.completions) == 2 * 2 * 6
    assert set(report.scoring_judges) == {"helpfulness ARM", "harmlessness ARM"}
    assert report.judge_header("helpfulness ARM") == "helpfulness ARM (self-scored)"
    assert len(ctx.store.study_cells(report.study["id"])) == 24
    kl = report.summary.set_index("setting")["kl_to_base"]
    assert kl["Base only"].value == 0 and kl["GenARM (all weights 0)"].value == 0
    table = studies.point_rows(report, report.settings[1])
    assert len(table) == 4 and {"prompt", "completion", "reference"} <= set(table.columns)
    again = ctx.study_report(report.study["id"])
    assert list(again.summary["setting"]) == report.settings
    assert studies.clicked_setting('{"setting": "%s"}' % report.settings[2], report) == report.settings[2]
    assert studies.clicked_setting('{"setting": "nope"}', report) is None
    with pytest.raises(UserError, match="expected"):
        parse_grid("kindness: 1", ctx.objectives)
    assert parse_grid("helpfulness: 0:2:5", ctx.objectives) == {"helpfulness": [0.0, 0.5, 1.0, 1.5, 2.0]}
    for bad, msg in [("helpfulness: 1..2", "neither a number"), ("helpfulness: 0:1", "neither a number"),
                     ("helpfulness: 0:1:0", "between 1 and 101"), ("helpfulness: x", "neither a number")]:
        with pytest.raises(UserError, match=msg):
            parse_grid(bad, ctx.objectives)
    with pytest.raises(UserError, match="grid: weight of 'helpfulness' must be between"):
        grid_settings(ctx.config, {"helpfulness": [9.0]})
    with pytest.raises(UserError, match="Best-of-N: N must be whole numbers"):
        studies.study_settings(ctx, "", "four")
    with pytest.raises(UserError, match=r"judges: \['oracle'\] are not judges of this model set"):
        ctx.submit_study(["Hello"], settings[:1], cfg, judges=["oracle"])


def test_prompt_lists(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "a"}\n"b"\n')
    assert read_prompt_list("x\n\ny", str(f)) == ["x", "y", "a", "b"]
    f.write_text('plain text\n"Hello", she said\n[{"role": "user", "content": "hi"}]\n{"prompt": "c", "id": 3}\n')
    assert read_prompt_list(path=str(f)) == ["plain text", '"Hello", she said', [{"role": "user", "content": "hi"}], "c"]
    f.write_text('ok\n{"prompt": "broken\n')
    with pytest.raises(UserError, match=r"p.jsonl:2: not valid JSON"):
        read_prompt_list(path=str(f))
    with pytest.raises(UserError, match="pasted list:1"):
        read_prompt_list("[1, 2]")  # a JSON list that is not a chat


def test_token_view_escapes_html_and_hides_end_tokens():
    trace = [{"id": 1, "text": "<script>alert(1)</script>", "logprob": -0.1, "combined_logprob": -0.2,
              "base_logprob": -1.0, "arm_logprobs": {"helpfulness": -0.5}},
             {"id": 0, "text": "", "eos": True, "logprob": -0.1, "combined_logprob": -0.1, "base_logprob": -0.1,
              "arm_logprobs": {}}]
    out = token_html(trace)
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "rgba(22,163,74" in out and "genarm-tip" in out  # pushed up: green, with a styled tooltip
    assert "helpfulness ARM: -0.50 (+0.50 vs base)" in out and "<|endoftext|>" not in out and "∎" in out


def test_win_rates_by_setting(ctx):
    settings = panels(ctx, ("GenARM", {"helpfulness": 1.0}), ("Base only", {}))
    for verdict in ("A", "B", "tie", "both_bad"):
        pair = run(ctx, "Hello", settings)[-1].pair
        ctx.judge_pair(pair, verdict, {}, "me")
    rates = win_rates(ctx.records.judgments(JudgmentFilter())).set_index("setting")
    aligned = rates.loc["GenARM helpfulness=1"]
    assert (aligned.wins, aligned.losses, aligned.ties, aligned.both_bad) == (1, 1, 1, 1)
    assert aligned.win_rate == pytest.approx(0.25) and aligned.win_rate_half_ties == pytest.approx(0.5)
    assert aligned.win_rate_low <= aligned.win_rate <= aligned.win_rate_high < 1 and not aligned.enough  # 4 < 5 judgments
    assert aligned.half_ties_low < 0.5 < aligned.half_ties_high
    table, full = ctx.records.judgments_table(JudgmentFilter())
    assert list(table.columns[:6]) == ["#", "when (UTC)", "annotator", "verdict", "A", "B"]
    assert len(table.loc[0, "when (UTC)"]) == 19  # to the second


def test_chat_prompts_are_parsed_and_stored_as_messages(ctx):
    msgs = req.parse_chat("System: be nice\nUser: hi\nAssistant: hello!\nhow are you?\nUser: tell me a joke")
    assert msgs == [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello!\nhow are you?"}, {"role": "user", "content": "tell me a joke"}]
    assert req.parse_chat("just text") == [{"role": "user", "content": "just text"}]
    with pytest.raises(UserError, match="end with"):
        req.parse_chat("User: hi\nAssistant: hello")
    final = run(ctx, msgs, [ctx.setting("GenARM", {"helpfulness": 1.0})])[-1]
    row = ctx.store.generations_frame().iloc[0]
    assert row["prompt_messages"] == msgs and "tell me a joke" in row["prompt"] and final.done


def test_auth_parsing(tmp_path):
    from app.server import parse_auth

    assert parse_auth(None, None) is None
    f = tmp_path / "users"
    f.write_text("# team\nalice:secret\nbob:pw\n")
    assert parse_auth("root:x", str(f)) == ([("root", "x"), ("alice", "secret"), ("bob", "pw")], {})
    with pytest.raises(SystemExit, match="USER:PASS"):
        parse_auth("nopassword", None)


def test_switching_model_sets_only_among_configured_ones(ctx, tiny_set):
    with pytest.raises(UserError, match="unknown model set"):
        ctx.load("../../etc/passwd")
    before = ctx.models
    ctx.model_sets["broken"] = tiny_set.parent / "missing.yaml"
    with pytest.raises(UserError, match="could not be loaded"):
        ctx.load("broken")
    assert ctx.models is before and ctx.current == "tiny"  # a failed switch keeps the loaded set


def test_a_locked_database_loses_nothing(tiny_set, tmp_path):
    """Another process holds SQLite's write lock past the busy timeout: the pair is shown, kept in
    memory, and written with the next generation once the lock is gone; a vote meanwhile is refused."""
    import sqlite3

    db = tmp_path / "db.sqlite"
    ctx = AppContext({"tiny": tiny_set}, Store(str(db), busy_timeout_s=0.2))
    settings = panels(ctx, ("GenARM", {"helpfulness": 1.0}), ("Base only", {}))
    first = run(ctx, "Hello", settings)[-1]
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    try:
        blocked = run(ctx, "Tell me a joke.", settings)[-1]
        assert blocked.done and blocked.pair is None and len(blocked.texts) == 2
        assert "not stored" in blocked.warning and "database is locked" in blocked.warning and ctx.pending == 2
        with pytest.raises(UserError, match="judgment was not stored"):
            ctx.judge_pair(first.pair, "A", {}, "")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    after = run(ctx, "Hello", settings)[-1]
    assert after.pair and ctx.pending == 0
    frame = ctx.store.generations_frame()
    assert list(frame["prompt"]) == ["Hello", "Hello", "Tell me a joke.", "Tell me a joke.", "Hello", "Hello"]
    assert list(frame["completion"][2:4]) == blocked.texts and list(frame["id"][4:]) == after.pair.ids
    assert ctx.judge_pair(first.pair, "A", {}, "").judgment_id > 0


def test_models_tab_shows_how_each_arm_was_trained(small_demo, tmp_path):
    from app.render import training_figure, training_table

    ctx = AppContext({"demo": small_demo}, Store(str(tmp_path / "db.sqlite")))
    logs = ctx.sets.training_logs()
    assert set(logs) == {"helpfulness", "harmlessness"}
    table = training_table(logs)
    assert list(table["objective"]) == ["helpfulness", "harmlessness"]
    assert (table["accuracy after"].astype(float) > table["accuracy before"].astype(float)).all()
    fig = training_figure(logs)
    assert {t.name for t in fig.data} == {"helpfulness", "harmlessness"} and len(fig.data) == 4
    assert "No training log" in training_figure({}).layout.annotations[0].text
    described = ctx.sets.describe()
    assert described.loc[0, "parameters"].endswith(("k", "M")) and described.loc[0, "prompt format"].startswith("'Human:")


def test_exports_leave_no_folders_behind(ctx, tmp_path, monkeypatch):
    import app.service.records as records

    settings = panels(ctx, ("GenARM", {"helpfulness": 1.0}), ("Base only", {}))
    ctx.judge_pair(run(ctx, "Hello", settings)[-1].pair, "A", {}, "me")
    files, summary = ctx.records.export("TRL preference JSONL", JudgmentFilter())
    assert "1 pair " in summary + " " and all(f.startswith(str(ctx.records._export_root)) for f in files)
    monkeypatch.setattr(records, "EXPORT_KEEP_S", -1.0)  # every earlier export is old now
    ctx.records.export("Judgments CSV", JudgmentFilter())
    assert len(list(ctx.records._export_root.glob("export-*"))) == 1
    root = ctx.records._export_root
    ctx.records.close()
    assert not root.exists()


def words(record, completion):
    """A rule judge for the tests: the completion's length in words (None for a prompt saying 'skip')."""
    return None if "skip" in str(record["prompt"]) else float(len(completion.split()))


def broken(record, completion):
    raise RuntimeError("this judge is broken")


@pytest.fixture
def judged_ctx(tiny_set, tmp_path):
    """The tiny set with two rule judges: ``words`` (marked for Compare) and ``broken``."""
    def judged(data):
        data["judges"] = {"broken": {"kind": "rule", "function": "tests.test_app_service:broken"},
                          "words": {"kind": "rule", "function": "tests.test_app_service:words", "compare": True}}
    f = tiny_variant(tiny_set, "judged_for_compare.yaml", judged)
    c = AppContext({"tiny": f}, Store(str(tmp_path / "judged.sqlite")))
    yield c
    c.records.close()


def test_compare_scores_each_panel_with_a_judge_after_the_pair_is_votable(judged_ctx):
    """The set's ``compare: true`` judge is the default; the pair is shown, then votable once scored; the
    scores are stored as the judge's and shown with each panel's setting (after the vote in blind
    mode); another judge rescored on demand, off drops them; a failing judge is a warning, not an error."""
    ctx = judged_ctx
    assert ctx.panel_judges() == ["broken", "words"] and ctx.default_panel_judge() == "words"
    request = compare.PairRequest("tiny", "Hello", False, 1, 1, 0, 1, 8, 0, False, "combined shift",
                                  [compare.PanelInput("GenARM", 4, {"helpfulness": 1.0}),
                                   compare.PanelInput("Base only", 4, {})], judge="words")
    views = list(compare.run_pair(ctx, request))
    unscored, scored = views[-2], views[-1]  # shown while the judge scores; no vote can race the scores
    assert not unscored.votable and unscored.pair.judge_scores is None and "judge" not in unscored.panels[0].reveal
    assert "Scoring each panel with judge `words`" in unscored.status
    name, values = scored.pair.judge_scores
    texts = [r.text for r in scored.pair.results]
    assert name == "words" and values == [float(len(t.split())) for t in texts] and scored.votable
    for i, view in enumerate(scored.panels):
        assert f"judge `words`: **{values[scored.pair.order[i]]:.3g}**" in view.reveal
    stored = ctx.store.judge_scores_frame().query("judge == 'words'")
    assert sorted(zip(stored["generation_id"], stored["value"])) == sorted(zip(scored.pair.ids, values))

    # Blind: the scores stay hidden with the settings until the vote.
    blind = list(compare.run_pair(ctx, compare.PairRequest(**{**request.__dict__, "blind": True})))[-1]
    assert blind.pair.judge_scores is not None and "after your vote" in blind.status
    assert all("judge" not in v.reveal for v in blind.panels)
    _, _, revealed = compare.vote(ctx, blind.pair, "A", {}, "me", "", "combined shift")
    assert all("judge `words`" in v.reveal for v in revealed)

    # Another judge on demand; a failing one is a notice and leaves the pair as it was; off drops the scores.
    pair, notice, panels_ = compare.rescore(ctx, scored.pair, "broken", "combined shift")
    assert "could not score" in notice and "this judge is broken" in notice and pair.judge_scores == scored.pair.judge_scores
    pair, notice, panels_ = compare.rescore(ctx, scored.pair, "", "combined shift")
    assert pair.judge_scores is None and notice == "" and all("judge" not in v.reveal for v in panels_)
    skipped = list(compare.run_pair(ctx, compare.PairRequest(**{**request.__dict__, "prompt": "please skip"})))[-1]
    assert all("does not apply to this prompt" in v.reveal for v in skipped.panels)
    with pytest.raises(UserError, match="'nope' is not a scoring judge of model set 'tiny'"):
        compare.rescore(ctx, scored.pair, "nope", "combined shift")


def test_a_bad_compare_flag_names_the_field(tiny_set):
    from genarm_core.models.config import ConfigError, ModelSetConfig

    data = tiny_variant_data(tiny_set, lambda data: data.update(
        judges={"w": {"kind": "rule", "function": "tests.test_app_service:words", "compare": "yes"}}))
    with pytest.raises(ConfigError, match=r"judges\.w\.compare: true or false"):
        ModelSetConfig.from_dict(data, source=tiny_set)


def test_a_cancelled_dashboard_study_stops_between_batches_and_a_rerun_resumes_it(ctx):
    """Cancel stops the job after the batch in flight (nothing decodes on in the background); what it
    finished is stored, and running the same study again completes it without a cell twice."""
    from app.tabs import studies
    from app.worker import Worker

    settings = studies.study_settings(ctx, "helpfulness: 0, 2; harmlessness: 1", "")
    cfg = ctx.decoding(1, 1, 0, 1, 4, 0, trace=False)
    prompts = ["Hello", "Tell me a joke."]
    job = ctx.submit_study(prompts, settings, cfg, samples=3)
    answers = []
    run_cancelled_after_the_first_batch(Worker(ctx.store, "w", beat_s=0.01), ctx.store,
                                        lambda: answers.append(ctx.cancel_job(job)))
    assert "cancelling after the batch in flight" in answers[0]
    stopped = ctx.job(job)
    assert stopped["status"] == "cancelled"
    assert "study #1 cancelled: 6 of 18 cells are stored; run the same study again" in stopped["message"]
    assert ctx.store.counts()["generations"] == 6
    report = run_queued(ctx, prompts, settings, cfg, samples=3)
    assert report.study["id"] == 1 and len(report.completions) == 18
    cells = ctx.store.generations_frame(study_id=1)["cell"]
    assert ctx.store.counts()["generations"] == 18 and cells.is_unique