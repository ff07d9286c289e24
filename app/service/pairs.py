"""Generating panels side by side, and blind mode: what a page may show before and after a vote.

``Pair`` is everything a page holds about a generated pair between the generation and the vote
(in ``gr.State``): the stored ids, the display order (blind mode may swap A and B), the settings,
the token traces. ``Pair.view(i)`` says what panel ``i`` shows: before a blind vote nothing that
tells the sides apart (no setting, no scores, and a token view that is the same for every panel);
after the vote, everything.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from genarm_core.models.config import Setting

PANEL_NAMES = "ABCD"


def swap_verdict(verdict: str, swapped: bool) -> str:
    """A verdict about the displayed panels as a verdict about the stored A and B."""
    return {"A": "B", "B": "A"}.get(verdict, verdict) if swapped else verdict


@dataclass
class PanelResult:
    text: str
    n_tokens: int
    finish_reason: str
    trace: list[dict[str, Any]] | None
    scores: dict[str, float]
    #: the method's cost, measured: model forwards (base, ARMs, reward-model candidates) and seconds per token
    forwards_per_token: float = 0.0
    seconds_per_token: float = 0.0


@dataclass
class Pair:
    """A finished, stored pair as a page shows it. ``order[i]`` is the stored row shown in panel i."""

    ids: list[int]
    settings: list[Setting]
    beta: float
    order: list[int]
    results: list[PanelResult]
    blind: bool
    key: str = field(default_factory=lambda: uuid.uuid4().hex)  # the vote's idempotency key
    voted: bool = False
    #: the prompt as the panels were generated from it (a judge scores the panels against it)
    prompt: Any = None
    #: a judge's score of each stored panel, in stored order (Compare's "Judge score per panel"): (judge, scores)
    judge_scores: tuple[str, list[float | None]] | None = None

    @property
    def swapped(self) -> bool:
        return self.order[:2] == [1, 0]

    @staticmethod
    def display_order(n: int, blind: bool, rng: random.Random | None = None) -> list[int]:
        """Blind mode shows A and B in a random order (a coin flip); otherwise as generated."""
        order = list(range(n))
        if blind and n >= 2 and (rng or random).random() < 0.5:
            order[0], order[1] = 1, 0
        return order

    @property
    def votable(self) -> bool:
        """Whether the page offers the vote buttons: two panels or more, not voted yet."""
        return not self.voted and len(self.results) >= 2

    def hidden(self) -> bool:
        """Whether the sides must not be told apart now."""
        return self.blind and not self.voted

    def voted_copy(self) -> "Pair":
        return replace(self, voted=True)

    def panel_label(self, i: int) -> str:
        from .records import setting_name

        return setting_name(self.settings[self.order[i]], self.beta)

    def panel_result(self, i: int) -> PanelResult:
        return self.results[self.order[i]]
