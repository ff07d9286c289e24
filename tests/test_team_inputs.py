"""Inputs that once ended in a traceback, lost work or stalled a shared server (issue: a dashboard a team
can share): each is refused with a message that names the field, before any decoding or expansion."""

from __future__ import annotations

import pytest

from app.service import AppContext, UserError, parse_grid, read_prompt_list
from app.service import requests as req
from storage.store import Store


@pytest.fixture
def ctx(rm_set, tmp_path):
    c = AppContext({"tiny": rm_set}, Store(str(tmp_path / "db.sqlite")))
    yield c
    c.close()


def no_decoding(ctx, monkeypatch):
    """Fail the test if anything reaches the engine."""
    def refuse(*_a, **_k):
        raise AssertionError("decoded although the request should have been refused first")
    monkeypatch.setattr(ctx.sets.engine, "stream", refuse)


def test_a_huge_top_k_is_refused_naming_the_field_before_decoding(ctx, monkeypatch):
    no_decoding(ctx, monkeypatch)
    with pytest.raises(UserError, match="top_k must be a whole number from 0"):
        ctx.decoding(1.0, 1.0, 1e30, 1.0, 8, 0)
    assert ctx.decoding(1.0, 1.0, 50, 1.0, 8, 0).top_k == 50


def test_a_grid_bomb_is_refused_from_its_text_before_anything_is_expanded():
    """30 × 101 values per objective would be 9 million settings: refused by counting, never built."""
    bomb = "helpfulness: " + ", ".join(["0:1:101"] * 30) + "; harmlessness: " + ", ".join(["0:1:101"] * 30)
    with pytest.raises(UserError, match="grid: more than 400 settings"):
        parse_grid(bomb, ["helpfulness", "harmlessness"])
    with pytest.raises(UserError, match="grid: 2,001 characters"):
        parse_grid("helpfulness: 1" + " " * 1987, ["helpfulness"])
    assert parse_grid("helpfulness: 0:2:3; harmlessness: 1", ["helpfulness", "harmlessness"]) == {
        "helpfulness": [0.0, 1.0, 2.0], "harmlessness": [1.0]}


def test_a_request_over_the_memory_budget_is_refused_before_decoding(ctx, monkeypatch):
    """Two Best-of-64 panels on a long prompt would ask for ~128 rows of KV cache each of thousands of
    tokens: refused by rows × (prompt + new tokens) against the set's budget."""
    no_decoding(ctx, monkeypatch)
    budget = ctx.sets.token_budget()
    assert budget > 0
    cfg = ctx.decoding(1.0, 1.0, 0, 1.0, 64, 0)
    panels = [ctx.setting("best_of_n", {"helpfulness": 1}, 64), ctx.setting("bon_rm", {"harmlessness": 1}, 64)]
    monkeypatch.setattr(ctx.sets, "token_budget", lambda: 128 * 100)  # a small server
    with pytest.raises(UserError, match=r"request: 128 rows of KV cache .* row-tokens; this server allows 12,800"):
        list(ctx.generate_pair("Human: " + "word " * 60 + "Assistant:", panels, cfg))
    monkeypatch.setattr(ctx.sets, "token_budget", lambda: 11 * 64)
    args = [ctx.setting("args", {"harmlessness": 1}, 10)]
    with pytest.raises(UserError, match="request: 11 rows"):  # ARGS's reward caches hold its k candidates
        list(ctx.generate_pair("Human: hi Assistant:", args, cfg))


def test_text_with_nul_or_too_long_is_refused_naming_the_field(ctx, monkeypatch):
    no_decoding(ctx, monkeypatch)
    cfg = ctx.decoding(1.0, 1.0, 0, 1.0, 8, 0)
    with pytest.raises(UserError, match=r"prompt contains a NUL character"):
        list(ctx.generate_pair("Human: hi\x00 Assistant:", [ctx.setting("base", {})], cfg))
    with pytest.raises(UserError, match=r"prompt is 20,001 characters; at most 20,000"):
        list(ctx.generate_pair("x" * 20_001, [ctx.setting("base", {})], cfg))
    with pytest.raises(UserError, match="annotator is 201 characters; at most 200"):
        ctx.judge_api(1, 2, "A", "{}", "a" * 201)
    with pytest.raises(UserError, match="comment contains a NUL character"):
        ctx.judge_api(1, 2, "A", "{}", "ann", "bad\x00comment")
    with pytest.raises(UserError, match="preset name is 201 characters"):
        ctx.records.save_preset("p" * 201, ctx.setting("genarm", {"helpfulness": 1}))


def test_a_deeply_nested_prompt_line_and_an_infinite_count_are_messages():
    with pytest.raises(UserError, match=r"pasted list:1: JSON nested more than 8 levels deep"):
        read_prompt_list("[" * 3000)
    from app.tabs.studies import SOURCES, study_prompts

    class Sets:
        @staticmethod
        def evaluation_records(n):
            return [{"prompt": "x"}] * n

    class Ctx:
        sets = Sets()

    for bad in ("inf", "1e400", "-3", "2.5"):
        with pytest.raises(UserError, match="held-out prompts"):
            study_prompts(Ctx(), SOURCES[0], bad, "", None)
    assert len(study_prompts(Ctx(), SOURCES[0], "4", "", None)) == 4
    assert req.name("  bob ", "annotator") == "bob"
