"""The base model alone (the unaligned reference every comparison starts from)."""

from __future__ import annotations

from .core import Method, Weights


class BaseOnly(Method):
    name = "base"
    label = "Base only"
    summary = "the base alone"
    cost = "1"
    uses_weights = False

    def canonical_weights(self, weights: Weights) -> Weights:
        return ()  # weights do nothing here: a base setting has none, so base settings compare equal

    def setting_label(self, weights, n, options) -> str:
        return self.label


METHOD = BaseOnly()
