"""Small pieces the tab modules share: lenient input components and the error rule.

Gradio checks a component's value before a handler sees it (a number box's bounds, a radio's
choices) and answers a bad one with its own message and a stack trace in the server log: "Could
not preprocess input component at index 14". The lenient components below pass the raw value on
instead, and ``app.service`` checks it with a message that names the field; the widgets keep their
bounds and choices for people.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import gradio as gr
from gradio import component_meta

from ..service import UserError

log = logging.getLogger("genarm.app")


# Gradio writes a ``.pyi`` stub beside any module that defines a component subclass (for its
# custom-component tooling); these three are ordinary components with one method changed, so the
# stub writer is switched off while they are defined.
_write_stub = component_meta.create_or_modify_pyi
component_meta.create_or_modify_pyi = lambda *args, **kwargs: None
try:
    class LooseSlider(gr.Slider):
        """A slider whose value reaches the handler as typed (checked there, with the field's name).

        A subclass, not a patched instance: Gradio rebuilds a component from its class after an
        update. ``is_template`` makes the page draw Gradio's own slider for it (a subclass
        would otherwise be fetched as a custom component)."""

        is_template = True

        def preprocess(self, payload: Any) -> Any:
            return payload

    class LooseNumber(gr.Number):
        """A number box whose value reaches the handler as typed."""

        is_template = True

        def preprocess(self, payload: Any) -> Any:
            return payload

    class LooseRadio(gr.Radio):
        """A radio whose value reaches the handler even if it is not a choice (API clients)."""

        is_template = True

        def preprocess(self, payload: Any) -> Any:
            return payload
finally:
    component_meta.create_or_modify_pyi = _write_stub


def refuse(exc: UserError) -> gr.Error:
    """A refused input: one log line, a message on the page, no stack trace (the input was bad, not the code)."""
    log.info("refused: %s", exc)
    return gr.Error(str(exc), print_exception=False)


@dataclass
class View:
    """How a tab shows the loaded model set: ``fn()`` returns updates for ``outputs``. Run on page
    load and after a model-set switch (``app.ui`` wires both)."""

    fn: Callable[[], list]
    outputs: list


@dataclass
class DecodingControls:
    """The shared decoding settings of the Compare tab; the Sweep tab reads them too."""

    beta: Any
    temperature: Any
    top_k: Any
    top_p: Any
    seed: Any
