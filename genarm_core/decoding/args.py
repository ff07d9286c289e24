"""ARGS (Khanov et al. 2024): reward-guided search with trajectory-level reward models, as a decoding method.

At each step a row takes the base's top-k next tokens (after the engine's token rules) and scores
each candidate by

    s(v) = log π_base(v | x, y_<t) + Σ_i w_i · r_i(x, y_<t ∘ v)

with one trajectory reward model r_i per objective (``reward_models:`` in the model-set file).
ARGS-greedy takes the best candidate (temperature 0); ARGS-stochastic samples from softmax(s / T)
over the k candidates (the ARGS code's ``method="greedy"`` and ``method="topk"``); the decoding's
top-k / top-p do not apply on top.

The fast way, as the ARGS paper describes it: each reward model keeps a KV cache of every row's
prefix (prompt in the reward model's own format + the tokens so far); a step expands it to the
row's k candidates (each row its own k), runs **one** batched forward of those one-token
extensions, reads each candidate's reward at its last position, and keeps the chosen candidate's
cache for the next step: k one-token forwards per row and step, never k re-encodings of the
prefix. ``tests/test_args.py`` checks it picks the tokens of a loop that re-encodes every candidate
from scratch.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache

from genarm_core.models.loading import LoadedModel
from genarm_core.models.reward_models import rm_parts
from genarm_core.decoding.runner import cache_kwarg
from genarm_core.models.scoring import pad_id_of, pad_left


class _RewardCache:
    """One reward model's KV cache over the ARGS rows' prefixes."""

    def __init__(self, rm: LoadedModel, prompts: list[list[int]]):
        self.backbone, self.head = rm_parts(rm.model)
        self.device = rm.device
        self.kwarg = cache_kwarg(self.backbone)
        ids, mask = pad_left(prompts, pad_id_of(rm.tokenizer))
        self.ids, self.mask = ids.to(self.device), mask.to(self.device)
        self.cache = DynamicCache(config=self.backbone.config)
        self.next_pos = self.mask.sum(-1)  # (R,) position of the next token

    def prefill(self) -> None:
        pos = (self.mask.cumsum(-1) - 1).clamp_min(0)
        self.backbone(input_ids=self.ids, attention_mask=self.mask, position_ids=pos, use_cache=True,
                      **{self.kwarg: self.cache})

    def score(self, candidates: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
        """Rewards of one-token extensions: ``candidates`` (C,) token ids, ``owner`` (C,) the row each extends."""
        owner = owner.to(self.device)
        self.cache.batch_select_indices(owner)  # each row's prefix, once per candidate of that row
        mask = torch.cat([self.mask[owner], torch.ones((owner.shape[0], 1), dtype=self.mask.dtype, device=self.device)], -1)
        hidden = self.backbone(input_ids=candidates.to(self.device).unsqueeze(-1), attention_mask=mask,
                               position_ids=self.next_pos[owner].unsqueeze(-1), use_cache=True,
                               **{self.kwarg: self.cache}).last_hidden_state
        self._mask = mask  # the candidates' masks, for ``keep``
        return self.head(hidden[:, -1]).squeeze(-1).float()

    def keep(self, chosen: torch.Tensor) -> None:
        """Keep candidate ``chosen[r]`` (an index into the last ``score`` call's candidates) for row r."""
        chosen = chosen.to(self.device)
        self.cache.batch_select_indices(chosen)
        self.mask = self._mask[chosen]
        self.next_pos = self.next_pos + 1

    def read(self, new: list[list[int]], pad_id: int) -> torch.Tensor:
        """Extend every row's prefix by its ``new`` tokens (rows may add different numbers, none
        included) in one forward from the cache; returns (R,) each row's reward at its last real
        token (unchanged for a row that added none). Blockwise search reads a block this way."""
        if not hasattr(self, "last"):
            self.last = torch.zeros(self.mask.shape[0], device=self.device)
        width = max(len(t) for t in new)
        if width == 0:
            return self.last
        ids = torch.tensor([t + [pad_id] * (width - len(t)) for t in new], device=self.device)
        real = torch.tensor([[1] * len(t) + [0] * (width - len(t)) for t in new], dtype=self.mask.dtype, device=self.device)
        self.mask = torch.cat([self.mask, real], -1)
        pos = self.next_pos.unsqueeze(-1) + torch.arange(width, device=self.device)
        hidden = self.backbone(input_ids=ids, attention_mask=self.mask, position_ids=pos, use_cache=True,
                               **{self.kwarg: self.cache}).last_hidden_state
        n = real.sum(-1)
        rows = torch.arange(len(new), device=self.device)
        scores = self.head(hidden[rows, (n - 1).clamp_min(0)]).squeeze(-1).float()
        self.last = torch.where(n > 0, scores, self.last)
        self.next_pos = self.next_pos + n
        return self.last

    def reorder(self, source: torch.Tensor) -> None:
        """Row r continues from row ``source[r]``'s prefix."""
        source = source.to(self.device)
        self.cache.batch_select_indices(source)
        self.mask, self.next_pos = self.mask[source], self.next_pos[source]
        if hasattr(self, "last"):
            self.last = self.last[source]


class ArgsScorer:
    """The ARGS part of a decoding step for the rows of a batch whose method is ``args``.

    Args:
        rows: batch indices of the ARGS rows. k: each row's number of candidates.
        weights: per reward-model objective, each row's w_i (a (R,) list).
        reward_models: objective -> loaded reward model. prompts: objective -> each row's prompt ids
            in that reward model's format.
    """

    def __init__(self, rows: list[int], k: list[int], weights: dict[str, list[float]],
                 reward_models: dict[str, LoadedModel], prompts: dict[str, list[list[int]]]):
        self.rows = rows
        self.kmax = max(k)
        self.names = [n for n, w in weights.items() if any(x != 0 for x in w)]
        self.caches = {n: _RewardCache(reward_models[n], prompts[n]) for n in self.names}
        self.weights = {n: torch.tensor(weights[n], dtype=torch.float32) for n in self.names}
        self._owner = torch.repeat_interleave(torch.arange(len(rows)), torch.as_tensor(k))  # candidate -> its row
        self._slot = torch.cat([torch.arange(n) for n in k])  # candidate's rank within its row

    def prefill(self) -> None:
        for c in self.caches.values():
            c.prefill()

    def candidate_scores(self, base_lp: torch.Tensor) -> torch.Tensor:
        """(B, V) restricted base log-probs -> (R, V) ARGS scores s(v) for each ARGS row: the row's
        top-k candidates carry log π_base(v) + Σ w_i r_i, every other token -inf."""
        device = base_lp.device
        rows = torch.as_tensor(self.rows, device=device)
        lp = base_lp[rows]  # (R, V)
        top = lp.topk(self.kmax, dim=-1)  # ranks beyond a row's own k are dropped below
        owner, slot = self._owner.to(device), self._slot.to(device)
        cand = top.indices[owner, slot]  # (C,) every row's own k candidates
        score = top.values[owner, slot]
        for n in self.names:
            r = self.caches[n].score(cand, owner).to(device)
            score = score + self.weights[n].to(device)[owner] * r
        self._cand, self._owner_dev = cand, owner
        out = torch.full_like(lp, float("-inf"))
        out[owner, cand] = score  # a candidate the token rules exclude has log π_base = -inf, and stays -inf
        return out

    def keep(self, tokens: torch.Tensor) -> None:
        """After the step picked ``tokens`` (B,): keep each ARGS row's chosen candidate's caches."""
        if not self.names:
            return
        device = self._cand.device
        picked = tokens.to(device)[torch.as_tensor(self.rows, device=device)][self._owner_dev]  # (C,)
        hit = (self._cand == picked).nonzero().squeeze(-1)  # the chosen candidate of each row, in row order
        for c in self.caches.values():
            c.keep(hit)
