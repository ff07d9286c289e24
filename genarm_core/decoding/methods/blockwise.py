"""Blockwise Best-of-N by the reward models: the blockwise variant of controlled decoding (Mudgal et
al. 2024, "Controlled Decoding from Language Models").

Every B tokens (a block), each of N rows has sampled a continuation from the base; the set's
trajectory reward models (``reward_models:``) rate each row's whole prefix, Σ_i w_i · r_i(x, y_≤t),
and every row continues from the best one. At the end the best row's completion is returned. With
B at least the completion's length this is Best-of-N by the reward models (``bon_rm``) with the same
samples; with N = 1 it is the base's own sample (candidate 0 shares the base's random stream).

As ARGS keeps it, each reward model keeps a KV cache of every row's prefix (``decoding.args``): a
block costs one forward of its B new tokens per row, never a re-encoding of the prefix; the base's
rows (and the reward caches) are reordered in place, as beam search reorders its beams.
CARDS's uncertainty-based block boundaries (Li et al. 2024) are not implemented: blocks are fixed.
"""

from __future__ import annotations

from typing import Any

import torch

from .best_of_n import BestOfNByRewardModel
from .core import Option, Row


class BlockwiseBestOfN(BestOfNByRewardModel):
    name = "blockwise"
    label = "Blockwise Best-of-N (RM)"
    summary = ("N base samples of a block of B tokens (option `block`), the best prefix by Σ w_i · r_i(x, y) of the "
               "`reward_models:` kept and continued by all N, block after block (controlled decoding, blockwise)")
    cost = "N × (1 + the reward models it ranks by)"
    options = {"block": Option(default=8, low=1, high=512, help="tokens per block")}
    needs_dynamic_cache = True  # its rows are reordered in place, and its reward caches grow with them

    def kl_bound(self, n: int) -> float | None:
        return None  # the bound grows with the number of blocks of each completion (Beirami et al., 2024)

    def short_name(self, n, options) -> str:
        return f"Blockwise Best-of-{n} (B={options.get('block', self.options['block'].default)}) by RM"

    def block_hook(self, models, specs, rows: list[Row], batch_rows: list[int]) -> "BlockSearch":
        return BlockSearch(models, specs, rows, batch_rows)

    def after_decoding(self, models, specs, rows: list[Row]) -> None:
        """The rewards are the block search's own (``BlockSearch.finish``), read from its caches."""


class BlockSearch:
    """The engine's hook for a batch's blockwise rows (one per batch row of them, ``specs`` in step).

    ``prefill()`` reads the prompts into each reward model's cache; ``after_step(step, rows, last)`` returns,
    at a block's end, for every batch row the row it continues from (None: no block ended), having
    reordered the reward caches to match; ``finish(rows)`` reads what is left and sets each row's
    ``rm_rewards``, by which the best completion is chosen."""

    def __init__(self, models: Any, specs: list[Any], rows: list[Row], batch_rows: list[int]):
        self.batch_rows, self.specs = batch_rows, specs
        self.B = None  # the batch size, known at the first step
        self.names = [n for n in models.reward_models if any(spec.weights.get(n) for spec in specs)]
        self.caches = {}
        from genarm_core.decoding.args import _RewardCache
        from genarm_core.models.scoring import pad_id_of

        for n in self.names:
            rm = models.reward_models[n]
            self.caches[n] = _RewardCache(rm, [rm.encode_prompt(spec.prompt) for spec in specs])
        self.pads = {n: pad_id_of(models.reward_models[n].tokenizer) for n in self.names}
        self.weights = {n: torch.tensor([float(spec.weights.get(n, 0.0)) for spec in specs]) for n in self.names}
        self.read_upto = [0] * len(batch_rows)  # tokens of each row its reward caches have read
        self.groups: dict[int, list[int]] = {}  # spec index -> positions (into batch_rows) of its rows
        #: every block's choice: the step it ended at, the spec, its candidates' values, the chosen one
        self.decisions: list[dict[str, Any]] = []
        for pos, b in enumerate(batch_rows):
            self.groups.setdefault(rows[pos].spec_index, []).append(pos)

    @staticmethod
    def block(spec: Any) -> int:
        return int(spec.options.get("block", BlockwiseBestOfN.options["block"].default))

    def prefill(self) -> None:
        for c in self.caches.values():
            c.prefill()

    def _values(self, rows: list[Row]) -> torch.Tensor:
        """(R,) Σ w_i r_i of each row's prefix, after reading its tokens not read yet."""
        new = [rows[pos].tokens[self.read_upto[pos]:] for pos in range(len(self.batch_rows))]
        total = torch.zeros(len(self.batch_rows))
        for n, cache in self.caches.items():
            r = cache.read(new, self.pads[n]).cpu()
            for pos, row in enumerate(rows):
                row.rm_rewards[n] = float(r[pos])
            total += self.weights[n] * r
        self.read_upto = [len(rows[pos].tokens) for pos in range(len(self.batch_rows))]
        return total

    def after_step(self, step: int, internal: list[Row], last: bool = False) -> list[int] | None:
        """At the end of a spec's block (``step + 1`` tokens, a multiple of its ``block``): every row of
        the spec continues from its best one. Returns the batch's source rows (identity elsewhere).
        Nothing continues after the ``last`` step: the final choice is ``choose``'s, among the N rows."""
        if last:
            return None
        mine = [internal[b] for b in self.batch_rows]
        ended = [s for s, positions in self.groups.items()
                 if (step + 1) % self.block(self.specs[positions[0]]) == 0 and not all(mine[p].done for p in positions)]
        if not ended:
            return None
        values = self._values(mine)
        source = list(range(len(internal)))
        local = list(range(len(self.batch_rows)))
        for s in ended:
            positions = self.groups[s]
            best = max(positions, key=lambda p: (float(values[p]), -p))
            for p in positions:
                source[self.batch_rows[p]] = self.batch_rows[best]
                local[p] = best
        self.decisions += [{"step": step + 1, "spec": s, "values": [float(values[p]) for p in self.groups[s]],
                            "chosen": self.groups[s].index(local[self.groups[s][0]])} for s in ended]
        if local == list(range(len(self.batch_rows))):
            return None
        index = torch.as_tensor(local)
        for c in self.caches.values():
            c.reorder(index)
        self.read_upto = [self.read_upto[p] for p in local]
        return source

    def finish(self, internal: list[Row]) -> None:
        self._values([internal[b] for b in self.batch_rows])


METHOD = BlockwiseBestOfN()
