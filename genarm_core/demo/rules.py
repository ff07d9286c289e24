"""The demo world's classifier (``world.classify``) as study judges (``kind: rule``).

``style_is(record, completion, kind, styles)``: 1 when a prompt of ``kind`` gets an answer of one
of ``styles`` (an answer with content but off the prompt's subject is "off-topic", not its style),
0 when it gets another; None for prompts of the other kind (``kind: any``: every prompt). The record carries the prompt's
``kind``, ``family``, ``task`` and ``subject`` (the held-out prompt files have them).
"""

from __future__ import annotations

from typing import Sequence

from . import world


def style_is(record: dict, completion: str, kind: str, styles: Sequence[str]) -> float | None:
    if kind != "any" and record.get("kind") != kind:
        return None
    prompt = world.Prompt(text=record["prompt"], kind=record.get("kind", ""), family=record.get("family", ""),
                          task=record.get("task", ""), subject=record.get("subject", ""))
    return float(world.classify(completion, prompt) in styles)
