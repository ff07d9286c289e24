"""Named API endpoints without a UI of their own (for gradio_client); the UI's export button is
the third (``/export``, in the Judgments tab). Every input is checked by ``app.service`` with a
message that names the field."""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from ..service import PAIR_CONCURRENCY, AppContext, UserError
from ..service import requests as req
from .common import refuse


def generate_pair(ctx: AppContext, prompt: Any, weights_a: Any = "{}", method_a: Any = "genarm", weights_b: Any = "{}",
                  method_b: Any = "base", beta: Any = 1.0, temperature: Any = 1.0, top_k: Any = 0, top_p: Any = 1.0,
                  max_new_tokens: Any = 32, seed: Any = 0, n_a: Any = 8, n_b: Any = 8) -> str:
    settings = [ctx.setting(method_a, req.json_object(weights_a, "weights_a", '{"helpfulness": 1.0}'), n_a, where="A"),
                ctx.setting(method_b, req.json_object(weights_b, "weights_b", '{"helpfulness": 1.0}'), n_b, where="B")]
    cfg = ctx.decoding(beta, temperature, top_k, top_p, max_new_tokens, seed)
    final = None
    for final in ctx.generate_pair(prompt if isinstance(prompt, str) else "", settings, cfg):
        pass
    ids = final.pair.ids if final.pair else None
    return json.dumps({"generation_ids": ids, "completions": final.texts, "settings": cfg.to_dict(),
                       "labels": [s.label for s in settings], "setting": [s.to_dict() for s in settings],
                       "scores": [r.scores for r in final.results], "warning": final.warning})


def record_judgment(ctx: AppContext, generation_a_id: Any, generation_b_id: Any, verdict: Any,
                    objective_verdicts: Any = "{}", annotator: Any = "", comment: Any = "", idempotency_key: Any = "") -> str:
    stored = ctx.judge_api(generation_a_id, generation_b_id, verdict, objective_verdicts, annotator, comment,
                           idempotency_key or None)
    return json.dumps({"judgment_id": stored.judgment_id})


def edit_judgment(ctx: AppContext, judgment_id: Any, verdict: Any, objective_verdicts: Any = "{}", annotator: Any = "",
                  comment: Any = None) -> str:
    stored = ctx.edit_api(judgment_id, verdict, objective_verdicts, annotator, comment)
    return json.dumps({"judgment_id": stored.judgment_id, "history": len(ctx.records.history(stored.judgment_id))})


def register(ctx: AppContext) -> None:
    def as_login(request: gr.Request | None, annotator: Any) -> str:
        """With logins, an API caller acts as its login (another annotator's name is refused)."""
        return ctx.access.annotator(getattr(request, "username", None) if request is not None else None,
                                    str(annotator or ""))

    def api_generate_pair(prompt: str, weights_a: str = "{}", method_a: str = "genarm", weights_b: str = "{}",
                          method_b: str = "base", beta: float = 1.0, temperature: float = 1.0, top_k: int = 0,
                          top_p: float = 1.0, max_new_tokens: int = 32, seed: int = 0) -> str:
        """Generate panels A and B in one batched run; returns JSON with completions and stored generation ids."""
        try:
            return generate_pair(ctx, prompt, weights_a, method_a, weights_b, method_b, beta, temperature, top_k, top_p,
                                 max_new_tokens, seed)
        except UserError as exc:
            raise refuse(exc) from None

    def api_record_judgment(generation_a_id: int, generation_b_id: int, verdict: str, objective_verdicts: str = "{}",
                            annotator: str = "", comment: str = "", idempotency_key: str = "",
                            request: gr.Request = None) -> str:
        """Record a verdict (A, B, tie, both_bad) on two stored generations of the same prompt. Sending the
        same vote again (same key, or by default the same pair and annotator) returns the stored judgment;
        another verdict or comment for a pair this annotator judged is refused: use /edit_judgment."""
        try:
            return record_judgment(ctx, generation_a_id, generation_b_id, verdict, objective_verdicts,
                                   as_login(request, annotator), comment, idempotency_key)
        except UserError as exc:
            raise refuse(exc) from None

    def api_edit_judgment(judgment_id: int, verdict: str, objective_verdicts: str = "{}", annotator: str = "",
                          comment: str | None = None, request: gr.Request = None) -> str:
        """Change a stored judgment's verdict, as its annotator (the earlier verdict is kept in its history;
        ratings use the latest). A comment of None keeps the stored one. Returns JSON with the id and the
        number of earlier verdicts."""
        try:
            return edit_judgment(ctx, judgment_id, verdict, objective_verdicts, as_login(request, annotator), comment)
        except UserError as exc:
            raise refuse(exc) from None

    from ..service.queue import Queue

    queue = Queue(ctx.records)

    def api_queue_next(study_id: int, annotator: str, overlap: int | None = None, request: gr.Request = None) -> str:
        """The annotation queue: the next pair of a study for this annotator (blind: sides shuffled, no
        settings), as JSON {slot_id, prompt, a, b}; {"done": true} when none is left for them. The study
        fixes the overlap (annotators per pair); ``overlap``, when sent, must be the study's."""
        try:
            sid = req.generation_id(study_id, "study_id", what="a study id")
            item = queue.next(sid, as_login(request, annotator), overlap)
        except UserError as exc:
            raise refuse(exc) from None
        if item is None:
            return json.dumps({"done": True})
        return json.dumps({"slot_id": item.slot_id, "prompt": item.prompt, "a": item.left, "b": item.right})

    def api_queue_vote(slot_id: int, verdict: str, annotator: str, comment: str = "", request: gr.Request = None) -> str:
        """A verdict (A, B, tie, both_bad) about the sides as /queue_next showed them; returns {judgment_id}."""
        try:
            if verdict not in req.VERDICTS:
                raise UserError(f"verdict: one of {', '.join(req.VERDICTS)}; got {verdict!r}")
            return json.dumps({"judgment_id": queue.vote(queue.item(slot_id, as_login(request, annotator), judged=True), verdict,
                                                         comment or "")})
        except UserError as exc:
            raise refuse(exc) from None

    def api_queue_skip(slot_id: int, annotator: str, comment: str = "", request: gr.Request = None) -> str:
        """Skip a served pair (stored as a skip, never a verdict); returns {"skipped": slot_id}."""
        try:
            queue.skip(queue.item(slot_id, as_login(request, annotator)), comment or "")
        except UserError as exc:
            raise refuse(exc) from None
        return json.dumps({"skipped": int(slot_id)})

    gr.api(api_queue_next, api_name="queue_next")
    gr.api(api_queue_vote, api_name="queue_vote")
    gr.api(api_queue_skip, api_name="queue_skip")
    gr.api(api_generate_pair, api_name="generate_pair", concurrency_id="pairs", concurrency_limit=PAIR_CONCURRENCY)
    gr.api(api_record_judgment, api_name="record_judgment")
    gr.api(api_edit_judgment, api_name="edit_judgment")
