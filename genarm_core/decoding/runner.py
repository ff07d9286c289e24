"""Forward groups: the models of a batch, each with its KV cache, one forward per step.

A group is one model, or several members that share one PeftModel (LoRA ARMs of the base):
their rows are stacked into one batch and each row runs with its member's adapter, so the base
weights are read once per step for all of them. The engine runs one group per distinct model;
the benchmarks time the same groups.

Two kinds of cache:

- ``ForwardGroup``: transformers' ``DynamicCache``, which grows by one position per step (the
  attention mask and positions are new tensors each step);
- ``StaticForwardGroup``: a ``StaticCache`` allocated once for the prompt plus ``max_new_tokens``,
  and decode steps of fixed shape that update their inputs in place (the next token, its position,
  its cache slot and the mask). Nothing in a step reads a value back to the host, so on CUDA the
  step can be captured as a graph and replayed (``engine``); on the CPU it gives the same numbers
  as the dynamic cache (tested).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from transformers import DynamicCache, StaticCache
from transformers.cache_utils import DynamicLayer

from genarm_core.models.loading import BASE, LoadedModel
from genarm_core.decoding.prompt_cache import PromptCache
from genarm_core.models.scoring import pad_id_of, pad_left
from genarm_core.decoding.trunk import TRUNK, TrunkPlan, lora_modules_by_layer, trunk_forward, trunk_plan


class ForwardGroup:
    """One group's KV cache over a batch of left-padded prompts.

    ``prefill()`` runs the prompts and ``step(tokens)`` feeds one new token per row; both return
    each member's (B, V) log-probs of the next token, sliced to the shared vocabulary ``V``.
    """

    def __init__(self, members: list[LoadedModel], prompt_ids: dict[str, list[list[int]]], vocab_size: int,
                 rows: dict[str, list[int]] | None = None, batch: int | None = None,
                 prompt_cache: PromptCache | None = None):
        """``prompt_ids[name]``: the prompts member ``name`` is fed, one per row it runs; ``rows[name]``:
        which of the ``batch`` rows those are (default: every row, ``batch`` = the first member's
        count). A member that runs only some rows returns zeros for the others (the engine gives
        such a row weight 0 for that member, and fills in its values after decoding).
        ``prompt_cache``: where the prefill finds the prompts' KV caches of earlier requests, and
        leaves its own."""
        self.members = members
        self.prompt_cache = prompt_cache
        self.model = members[0].model
        self.V = vocab_size
        self.device = members[0].device
        if rows is None:
            rows = {m.name: list(range(len(prompt_ids[m.name]))) for m in members}
        self.rows = rows
        self.B = batch if batch is not None else len(prompt_ids[members[0].name])
        #: the batch row of each stacked row (member-major), to feed each its own token
        order = [i for m in members for i in rows[m.name]]
        self.feed_index = None if order == list(range(self.B)) * len(members) else torch.as_tensor(order, device=self.device)
        self._row_index = {m.name: torch.as_tensor(rows[m.name], device=self.device) for m in members
                           if rows[m.name] != list(range(self.B))}
        shared = members[0].adapter_name is not None
        self.adapter_names = [m.adapter_name for m in members for _ in rows[m.name]] if shared else None
        #: (member, batch row) of each stacked row, and the prompt ids each reads
        self.stacked = [(m.name, b) for m in members for b in rows[m.name]]
        self.ids_of = {(m.name, b): list(p) for m in members for b, p in zip(rows[m.name], prompt_ids[m.name])}
        self._pad(prompt_ids)
        self.cache = DynamicCache(config=self.model.config)
        self.cache_kwarg = cache_kwarg(self.model)
        self.prompt_cache_hit: bool | None = None  # after the prefill: whether it came from ``prompt_cache``

    def _tokens_in(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B,) chosen tokens -> (rows, 1) the stacked batch's inputs."""
        tokens = tokens.to(self.device)
        stacked = tokens.repeat(len(self.members)) if self.feed_index is None else tokens[self.feed_index]
        return stacked.unsqueeze(-1)

    def _pad(self, prompt_ids: dict[str, list[list[int]]]) -> None:
        """Left-pad the stacked prompts (member-major: each member's rows in turn) into ``ids`` and ``mask``; ``next_pos`` per row."""
        rows = [p for m in self.members for p in prompt_ids[m.name]]
        ids, mask = pad_left(rows, pad_id_of(self.members[0].tokenizer))
        self.ids = ids.to(self.device)
        self.mask = mask.to(self.device)
        self.next_pos = self.mask.sum(-1, keepdim=True)  # (R, 1) position of the next token, R stacked rows

    def forward(self, **kwargs: Any) -> torch.Tensor:
        """One forward through the group's model with its cache: (R, V) log-probs of the last position."""
        if self.adapter_names is not None:
            kwargs["adapter_names"] = self.adapter_names
        kwargs[self.cache_kwarg] = self.cache
        logits = self.model(use_cache=True, logits_to_keep=1, **kwargs).logits
        return torch.log_softmax(logits[:, -1, : self.V].float(), dim=-1)

    def _split(self, lp: torch.Tensor) -> dict[str, torch.Tensor]:
        """The stacked (rows, V) log-probs -> each member's (B, V); zeros where a member did not run."""
        out, start = {}, 0
        for m in self.members:
            n = len(self.rows[m.name])
            part = lp[start:start + n]
            start += n
            index = self._row_index.get(m.name)
            out[m.name] = part if index is None else part.new_zeros((self.B, part.shape[-1])).index_copy_(0, index, part)
        return out

    def prefill(self) -> dict[str, torch.Tensor]:
        if self.prompt_cache is not None:
            held = self._prefill_from_cache()
            self.prompt_cache_hit = held is not None
            if held is not None:
                return self._split(held)
        pos = (self.mask.cumsum(-1) - 1).clamp_min(0)
        out = self.forward(input_ids=self.ids, attention_mask=self.mask, position_ids=pos)
        if self.prompt_cache is not None:
            self._store_prompts(out)
        return self._split(out)

    # ------------------------------------------------------------ prompt KV caches between requests

    def cache_rows(self, layer: int) -> list[tuple[str, int]]:
        """(member, batch row) of each row of layer ``layer``'s KV cache."""
        return self.stacked

    def _n_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    def _store_prompts(self, out: torch.Tensor) -> None:
        """Keep each (member, prompt)'s KV cache and first log-probs (``out``: stacked rows) in ``prompt_cache``."""
        if not all(type(layer) is DynamicLayer for layer in self.cache.layers):
            return  # sliding-window or other layers: their contents are not the plain prompt
        n = self._n_layers()
        per: dict[tuple[str, int], list] = {}
        for index, layer in enumerate(self.cache.layers[:n]):
            for j, (name, b) in enumerate(self.cache_rows(index)):
                T = len(self.ids_of[(name, b)])
                per.setdefault((name, b), [None] * n)[index] = (layer.keys[j:j + 1, :, -T:].clone(),
                                                                layer.values[j:j + 1, :, -T:].clone())
        done = set()
        for j, (name, b) in enumerate(self.stacked):
            key = PromptCache.key(self.model, name, self.ids_of[(name, b)])
            if key not in done:
                done.add(key)
                self.prompt_cache.put(key, per.get((name, b), [None] * n), out[j].clone())

    def _prefill_from_cache(self) -> torch.Tensor | None:
        """The prefill from ``prompt_cache`` (the stacked rows' first log-probs; the KV cache filled), or None."""
        found: dict[tuple[str, int], Any] = {}

        def entry(name: str, b: int):
            if (name, b) not in found:
                ids = self.ids_of.get((name, b))
                found[(name, b)] = None if ids is None else self.prompt_cache.get(PromptCache.key(self.model, name, ids))
            return found[(name, b)]

        n, L = self._n_layers(), self.ids.shape[1]
        layers = []
        for index in range(n):
            ks, vs = [], []
            for name, b in self.cache_rows(index):
                mine = entry(name, b)
                kv = mine.layers[index] if mine is not None else None
                if kv is None and mine is not None and entry(BASE, b) is not None:
                    kv = entry(BASE, b).layers[index]  # a layer a trunk computed as the base
                if kv is None:
                    self.prompt_cache.misses += 1
                    return None
                pad = L - kv[0].shape[-2]
                ks.append(F.pad(kv[0], (0, 0, pad, 0)) if pad else kv[0])
                vs.append(F.pad(kv[1], (0, 0, pad, 0)) if pad else kv[1])
            layers.append((torch.cat(ks), torch.cat(vs)))
        firsts = [entry(name, b) for name, b in self.stacked]
        if any(e is None for e in firsts):
            self.prompt_cache.misses += 1
            return None
        for index, (k, v) in enumerate(layers):
            self.cache.update(k, v, index)
        self.prompt_cache.hits += 1
        return torch.stack([e.logprobs for e in firsts])

    def mask_rows(self) -> list[tuple[str, int]]:
        """(member, batch row) of each row of ``mask`` and ``next_pos``."""
        return self.stacked

    def reorder(self, source: list[int]) -> None:
        """Batch row b continues from row ``source[b]``: its KV cache, mask and position, for every
        member that runs it (a member must run both rows). Blockwise search copies the chosen
        candidate to its siblings this way, as beam search reorders its beams."""
        def perm(keys: list[tuple[str, int]]) -> torch.Tensor:
            where = {key: j for j, key in enumerate(keys)}
            return torch.as_tensor([where[(name, source[b])] for name, b in keys], device=self.device)

        for index, layer in enumerate(self.cache.layers[:self._n_layers()]):
            p = perm(self.cache_rows(index))
            layer.keys, layer.values = layer.keys[p], layer.values[p]
        p = perm(self.mask_rows())
        self.mask, self.next_pos = self.mask[p], self.next_pos[p]

    def advance_inputs(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """The inputs of one decode step for (B,) new tokens; grows the mask and position."""
        tokens = self._tokens_in(tokens)
        self.mask = torch.cat([self.mask, torch.ones_like(tokens)], dim=-1)
        inputs = {"input_ids": tokens, "attention_mask": self.mask, "position_ids": self.next_pos}
        self.next_pos = self.next_pos + 1
        return inputs

    def step(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """tokens: (B,) the ids just chosen. Returns each member's (B, V) log-probs for the next position."""
        return self._split(self.forward(**self.advance_inputs(tokens)))


class TrunkForwardGroup(ForwardGroup):
    """A ``ForwardGroup`` of LoRA members on one PeftModel that computes the layers below each
    adapter once per batch row (``trunk``): the same log-probs from fewer layer-rows."""

    def __init__(self, members: list[LoadedModel], prompt_ids: dict[str, list[list[int]]], vocab_size: int,
                 plan: TrunkPlan, rows: dict[str, list[int]] | None = None, batch: int | None = None,
                 prompt_cache: PromptCache | None = None):
        self.plan = plan
        super().__init__(members, prompt_ids, vocab_size, rows, batch, prompt_cache)
        self._lora = lora_modules_by_layer(self.model)
        self._segment_of = [seg for seg in plan.segments for _ in seg.layers]

    def cache_rows(self, layer: int) -> list[tuple[str, int]]:
        """The streams of the layer's segment: a trunk stream holds the base's values."""
        return [(BASE if name == TRUNK else name, b) for name, b in self._segment_of[layer].keys]

    def _pad(self, prompt_ids: dict[str, list[list[int]]]) -> None:
        """One row per batch row (its members read the same ids): ``ids``, ``mask`` and ``next_pos`` are (B, ·)."""
        per_row: list[list[int]] = [[] for _ in range(self.B)]
        for m in self.members:
            for b, ids in zip(self.rows[m.name], prompt_ids[m.name]):
                per_row[b] = ids
        ids, mask = pad_left(per_row, pad_id_of(self.members[0].tokenizer))
        self.ids, self.mask = ids.to(self.device), mask.to(self.device)
        self.next_pos = self.mask.sum(-1, keepdim=True)

    def _tokens_in(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens.to(self.device).unsqueeze(-1)

    def mask_rows(self) -> list[tuple[str, int]]:
        return [(BASE, b) for b in range(self.B)]  # one mask row per batch row, whatever its members

    def forward(self, **kwargs: Any) -> torch.Tensor:
        logits = trunk_forward(self.model, self.plan, self._lora, self.cache, **kwargs)
        return torch.log_softmax(logits[:, : self.V].float(), dim=-1)


def dynamic_group(members: list[LoadedModel], prompt_ids: dict[str, list[list[int]]], vocab_size: int,
                  rows: dict[str, list[int]], batch: int, trunk: bool = True,
                  prompt_cache: PromptCache | None = None) -> ForwardGroup:
    """The dynamic-cache group for these members: with a shared trunk where ``trunk_plan`` finds one."""
    plan = trunk_plan(members, prompt_ids, rows, batch) if trunk else None
    if plan is not None:
        return TrunkForwardGroup(members, prompt_ids, vocab_size, plan, rows, batch, prompt_cache)
    return ForwardGroup(members, prompt_ids, vocab_size, rows, batch, prompt_cache)


class StaticForwardGroup(ForwardGroup):
    """A ``ForwardGroup`` over a preallocated ``StaticCache`` with fixed-shape, in-place decode steps.

    Buffers (all on the group's device, all (R, ...), R stacked rows): ``tokens`` (R, 1) the token fed next;
    ``positions`` (R, 1) its position id; ``slot`` (1,) its cache position (prompts are left-padded
    to one length ``L``, so every row writes slot ``L + t`` at step t); ``full_mask`` (R, C)
    1 where a row has a real token, C = ``cache_len``.

    ``load(prompt_ids)`` starts a new generation of the same batch size in the same buffers and
    cache (reset in place, so their addresses, which a captured CUDA graph reads, never change).
    Any prompt of length L with L + max_new_tokens <= ``cache_len`` fits.
    """

    def __init__(self, members: list[LoadedModel], prompt_ids: dict[str, list[list[int]]], vocab_size: int,
                 cache_len: int, rows: dict[str, list[int]] | None = None, batch: int | None = None):
        super().__init__(members, prompt_ids, vocab_size, rows, batch)
        rows = self.ids.shape[0]
        self.cache_len = cache_len
        self.cache = StaticCache(config=self.model.config, max_cache_len=cache_len)
        self.full_mask = torch.zeros((rows, cache_len), dtype=torch.long, device=self.device)
        self.tokens = torch.zeros((rows, 1), dtype=torch.long, device=self.device)
        self.positions = torch.zeros((rows, 1), dtype=torch.long, device=self.device)
        self.slot = torch.zeros(1, dtype=torch.long, device=self.device)
        self._reset()

    def load(self, prompt_ids: dict[str, list[list[int]]]) -> None:
        """New prompts for the next generation (same members, same number of rows)."""
        self._pad(prompt_ids)
        self._reset()

    def _reset(self) -> None:
        L = self.ids.shape[1]
        if L > self.cache_len:
            raise ValueError(f"padded prompt of {L} tokens does not fit a cache of {self.cache_len}")
        self.cache.reset()
        self.full_mask.zero_()
        self.full_mask[:, :L] = self.mask
        self.positions.copy_(self.next_pos)
        self.slot.fill_(L)

    def prefill(self) -> dict[str, torch.Tensor]:
        L = self.ids.shape[1]
        pos = (self.mask.cumsum(-1) - 1).clamp_min(0)
        return self._split(self.forward(input_ids=self.ids, attention_mask=self.full_mask[:, :L], position_ids=pos,
                                        cache_position=torch.arange(L, device=self.device)))

    def step(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """Feed (B,) tokens at the next slot; every input is updated in place (graph-safe)."""
        self.tokens.copy_(self._tokens_in(tokens))
        self.full_mask.index_fill_(1, self.slot, 1)
        out = self.forward(input_ids=self.tokens, attention_mask=self.full_mask, position_ids=self.positions,
                           cache_position=self.slot)
        self.positions.add_(1)
        self.slot.add_(1)
        return self._split(out)


def cache_bucket(needed: int, context: int, step: int = 256) -> int:
    """The static cache length for ``needed`` positions: rounded up to a multiple of ``step`` (so that
    generations of similar length reuse one cache and one captured graph), never past the model's
    context unless ``needed`` itself is."""
    return max(needed, min(-(-needed // step) * step, context))


def cache_kwarg(model: Any) -> str:
    """The name a model's forward takes its KV cache by: ``cache`` in newer transformers,
    ``past_key_values`` before (the lent GPUs run an older release than this machine)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(inner.forward).parameters else "past_key_values"


def forward_groups(members: list[LoadedModel]) -> list[list[LoadedModel]]:
    """Members sharing one model object run as one group; the others alone."""
    groups: dict[int, list[LoadedModel]] = {}
    for m in members:
        key = id(m.model) if m.adapter_name is not None else id(m)
        groups.setdefault(key, []).append(m)
    return list(groups.values())


def path_logprobs(group: list[LoadedModel], paths: dict[str, list[tuple[list[int], list[int]]]], vocab_size: int,
                  max_floats: int = 1 << 27) -> dict[str, list[list[float]]]:
    """Each member's log-probs of given completions, teacher-forced: one forward over prompt + completion.

    ``paths[name]``: (prompt ids, completion ids) pairs member ``name`` reads. Returns, per member
    and pair, log π(y_t | x, y_<t) for every completion token: the values the decode loop would
    have read had the member run beside the row (the same slice to ``vocab_size``, the same float32
    ``log_softmax``). The members of one group (LoRA ARMs of one PeftModel) run as one batch; rows
    go in chunks so that no more than ``max_floats`` logits are held at once.
    """
    model = group[0].model
    device = group[0].device
    pad = pad_id_of(group[0].tokenizer)
    shared = group[0].adapter_name is not None
    jobs = [(m, k, p, c) for m in group for k, (p, c) in enumerate(paths.get(m.name, [])) if c]
    out = {m.name: [[] for _ in paths.get(m.name, [])] for m in group}
    jobs.sort(key=lambda j: len(j[2]) + len(j[3]))  # similar lengths together: less padding
    start = 0
    while start < len(jobs):
        n = 1
        while start + n < len(jobs):
            longest = max(len(j[3]) for j in jobs[start:start + n + 1]) + 1
            if (n + 1) * longest * vocab_size > max_floats:
                break
            n += 1
        chunk = jobs[start:start + n]
        start += n
        keep = max(len(c) for _, _, _, c in chunk) + 1
        ids, mask = pad_left([p + c for _, _, p, c in chunk], pad)
        ids, mask = ids.to(device), mask.to(device)
        kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "position_ids": (mask.cumsum(-1) - 1).clamp_min(0)}
        if shared:
            kwargs["adapter_names"] = [m.adapter_name for m, _, _, _ in chunk]
        logits = model(use_cache=False, logits_to_keep=keep, **kwargs).logits  # (n, keep, ·): positions L-keep .. L-1
        for i, (m, k, _, c) in enumerate(chunk):
            T = len(c)
            rows = logits[i, keep - T - 1:keep - 1, :vocab_size].float()
            lp = torch.log_softmax(rows, dim=-1).gather(-1, torch.as_tensor(c, device=device).unsqueeze(-1)).squeeze(-1)
            out[m.name][k] = lp.tolist()
    return out
