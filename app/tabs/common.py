"""Small pieces the tab modules share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import gradio as gr

from storage.store import JudgmentFilter, parse_date

from ..service import UserError

PANEL_NAMES = "ABCD"


def gr_error(exc: Exception) -> gr.Error:
    """A message for the page, without a stack trace in the log (the input was bad, not the code)."""
    return gr.Error(str(exc), print_exception=False)


@dataclass
class DecodingControls:
    """The shared decoding settings of the Compare tab; the Sweep tab reads them too."""

    beta: Any
    temperature: Any
    top_k: Any
    top_p: Any
    seed: Any


@dataclass
class View:
    """How a tab shows the loaded model set: ``fn()`` returns updates for ``outputs``. Run on page
    load and after a model-set switch (``app.ui`` wires both)."""

    fn: Callable[[], list]
    outputs: list


def judgment_filter(annot: str | None, obj: str | None, since: str | None) -> JudgmentFilter:
    since_dt = None
    if since and since.strip():
        try:
            since_dt = parse_date(since)
        except ValueError as exc:
            raise UserError(f"'since': {exc}") from None
    return JudgmentFilter(since=since_dt, annotator=annot or None,
                          objective=None if obj in (None, "", "overall") else obj)
