"""Named API endpoints without a UI of their own (for gradio_client); the UI's export button is
the third (``/export``, in the Judgments tab)."""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from ..service import AppContext, UserError
from .common import gr_error


def json_weights(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    try:
        w = json.loads(text or "{}")
    except json.JSONDecodeError:
        raise UserError(f"weights must be a JSON object such as {{\"helpfulness\": 1.0}}, got {text!r}") from None
    if not isinstance(w, dict):
        raise UserError("weights must be a JSON object")
    return w


def register(ctx: AppContext) -> None:
    def generate_pair(prompt: str, weights_a: str = "{}", method_a: str = "genarm", weights_b: str = "{}",
                      method_b: str = "base", beta: float = 1.0, temperature: float = 1.0, top_k: int = 0,
                      top_p: float = 1.0, max_new_tokens: int = 32, seed: int = 0) -> str:
        """Generate panels A and B in one batched run; returns JSON with completions and stored generation ids."""
        try:
            specs = [ctx.panel(method_a, json_weights(weights_a)), ctx.panel(method_b, json_weights(weights_b))]
            cfg = ctx.decoding(beta, temperature, top_k, top_p, max_new_tokens, seed)
            final = None
            for final in ctx.generate(prompt, specs, cfg):
                pass
        except UserError as exc:
            raise gr_error(exc) from None
        return json.dumps({"generation_ids": final.generation_ids, "completions": final.texts,
                           "settings": cfg.to_dict(), "labels": [s.label(cfg.beta) for s in specs],
                           "scores": [r.scores for r in final.results], "warning": final.warning})

    def record_judgment(generation_a_id: int, generation_b_id: int, verdict: str, objective_verdicts: str = "{}",
                        annotator: str = "", comment: str = "") -> str:
        """Record a verdict (A, B, tie, both_bad) on two stored generations of the same prompt."""
        try:
            per_obj = json.loads(objective_verdicts or "{}")
            if not isinstance(per_obj, dict):
                raise UserError("objective_verdicts must be a JSON object")
            jid = ctx.judge([generation_a_id, generation_b_id], verdict, per_obj, annotator=annotator, comment=comment)
        except (UserError, json.JSONDecodeError) as exc:
            raise gr_error(exc) from None
        return json.dumps({"judgment_id": jid})

    gr.api(generate_pair, api_name="generate_pair", concurrency_id="generate", concurrency_limit=1)
    gr.api(record_judgment, api_name="record_judgment")
