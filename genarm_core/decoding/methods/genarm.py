"""GenARM (Xu et al., ICLR 2025): the base combined with the ARMs of the non-zero weights, every token.

    log π̃(y_t | ·) = log π_base(y_t | ·) + Σ_i (α_i / β) · log π_ri(y_t | ·) − log Z

(the formula itself is ``decoding.math.combine_logprobs``; the engine computes it for these rows).
"""

from __future__ import annotations

from typing import Mapping, Sequence

from .core import Method, Row, row_seed


class GenARM(Method):
    name = "genarm"
    label = "GenARM"
    summary = "the base combined with the ARMs of the non-zero weights, every token (the formula above)"
    cost = "1 + the ARMs it steers by"

    def arms(self, weights: Mapping[str, float], objectives: Sequence[str]) -> tuple[str, ...]:
        return tuple(n for n in objectives if weights.get(n, 0.0) != 0)

    def expand(self, index, spec, seed, active) -> list[Row]:
        mine = self.arms(spec.weights, active)
        return [Row(index, [spec.weights.get(n, 0.0) for n in active], row_seed(seed, spec.prompt), mine)]


METHOD = GenARM()
