"""A shared trunk: LoRA ARMs whose adapters leave the bottom layers alone compute those layers once.

GenARM feeds the base and every ARM the same tokens. When the ARMs are LoRA adapters on the base's
own weights (one PeftModel), an adapter that starts at layer s changes nothing below s: there the
ARM's hidden states and KV cache *are* the base's. ``TrunkForwardGroup`` therefore computes each
layer once per **stream** instead of once per stacked row: one trunk stream per batch row, carrying
every member whose adapter has not started yet, and one stream per (member, row) from the layer
where that member's adapter starts, branching off the trunk's hidden state there. The KV cache of
each layer holds that layer's streams (transformers' ``DynamicCache`` keeps one tensor per layer,
so layers may hold different numbers of rows).

For the smollm2 set (harmlessness on layers 14–29, helpfulness on 22–29 of 30) a GenARM row with both
ARMs costs 14·1 + 8·2 + 8·3 = 54 layer-rows per step instead of 3·30 = 90.

Exact: each stream runs the same layer calls the stacked rows ran (the same weights, the same adapter
per row, the same mask and positions), on fewer rows. What it needs, else the engine keeps the
stacked rows (``trunk_plan`` returns None):

- a decoder of the Llama family (``SUPPORTED``: ``embed_tokens``, ``layers``, ``norm``, ``rotary_emb``,
  full attention in every layer) and a transformers release whose layers take ``cache=``;
- LoRA only inside decoder layers (an adapter on the embeddings or the head shares nothing);
- every member of a batch row fed the same prompt ids (the same prompt format);
- at least one layer-row saved.

Only the dynamic cache has a trunk; static caches and CUDA graphs keep the stacked rows.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Iterator

import torch

from genarm_core.models.loading import BASE, LoadedModel

#: model types whose decoder forward this module reproduces (checked against transformers' code, tested)
SUPPORTED = ("llama", "qwen2")
TRUNK = ""  # the member name of a trunk stream


def decoder_of(model: Any) -> Any | None:
    """The decoder stack (e.g. ``LlamaModel``) of a PeftModel whose forward ``TrunkForwardGroup`` can run
    layer by layer; None for any other model."""
    if not hasattr(model, "get_base_model"):
        return None
    lm = model.get_base_model()
    dec = getattr(lm, "model", None)
    cfg = getattr(lm, "config", None)
    if cfg is None or getattr(cfg, "model_type", None) not in SUPPORTED or not hasattr(lm, "lm_head"):
        return None
    if not all(hasattr(dec, a) for a in ("embed_tokens", "layers", "norm", "rotary_emb")):
        return None
    types = getattr(cfg, "layer_types", None)
    if types is not None and any(t != "full_attention" for t in types[: cfg.num_hidden_layers]):
        return None
    if types is None and getattr(cfg, "sliding_window", None) is not None and getattr(cfg, "use_sliding_window", True):
        return None
    from transformers.masking_utils import create_causal_mask

    if "cache" not in inspect.signature(create_causal_mask).parameters or \
            "cache" not in inspect.signature(dec.layers[0].forward).parameters:
        return None  # older releases take past_key_values= and cache_position=: not reproduced here
    return dec


def adapter_starts(model: Any) -> dict[str, int] | None:
    """The first decoder layer each LoRA adapter of ``model`` touches (an adapter that touches none is
    absent). None when some LoRA module lies outside the decoder layers, or the model is not supported."""
    from peft.tuners.lora import LoraLayer

    dec = decoder_of(model)
    if dec is None:
        return None
    inside: set[int] = set()
    starts: dict[str, int] = {}
    for index, layer in enumerate(dec.layers[: model.config.num_hidden_layers]):
        for mod in layer.modules():
            if isinstance(mod, LoraLayer):
                inside.add(id(mod))
                for name in [*mod.lora_A.keys(), *mod.lora_embedding_A.keys()]:
                    starts.setdefault(name, index)
    if any(isinstance(mod, LoraLayer) and id(mod) not in inside for mod in model.modules()):
        return None
    return starts


@dataclass
class Segment:
    """Consecutive layers that run the same streams."""

    layers: range
    keys: list[tuple[str, int]]  # (member name or TRUNK, batch row) per stream
    src: torch.Tensor  # (S,) each stream's row in the previous segment's streams (the first: batch rows)
    rows: torch.Tensor  # (S,) each stream's batch row
    adapters: list[str]  # each stream's adapter ("__base__" for the trunk)


@dataclass
class TrunkPlan:
    segments: list[Segment]
    out: torch.Tensor  # (R,) the last segment's stream of each stacked row (member-major)
    layer_rows: int  # per step, with the trunk
    stacked_layer_rows: int  # per step, one row per member and batch row in every layer


def trunk_plan(members: list[LoadedModel], prompt_ids: dict[str, list[list[int]]], rows: dict[str, list[int]],
               batch: int) -> TrunkPlan | None:
    """How ``members`` (one shared PeftModel) compute ``rows`` with a trunk; None where they cannot, or it saves nothing."""
    model = members[0].model
    if members[0].adapter_name is None or len(members) < 2 or BASE not in {m.name for m in members}:
        return None
    starts = adapter_starts(model)
    if starts is None:
        return None
    per_row: dict[int, list[int]] = {}
    for m in members:
        for b, ids in zip(rows[m.name], prompt_ids[m.name]):
            if per_row.setdefault(b, ids) != ids:
                return None  # members read this row's prompt differently: no common trunk
    n_layers = model.config.num_hidden_layers
    start = {m.name: starts.get(m.adapter_name, n_layers) for m in members}
    device = members[0].device
    cuts = sorted({0} | {s for s in start.values() if s < n_layers})
    segments: list[Segment] = []
    for i, cut in enumerate(cuts):
        end = cuts[i + 1] if i + 1 < len(cuts) else n_layers
        keys = [(TRUNK, b) for b in range(batch) if any(b in rows[m.name] and start[m.name] > cut for m in members)]
        keys += [(m.name, b) for m in members if start[m.name] <= cut for b in rows[m.name]]
        if segments:
            prev = {k: j for j, k in enumerate(segments[-1].keys)}
            src = [prev[k] if k in prev else prev[(TRUNK, k[1])] for k in keys]
        else:
            src = [b for _, b in keys]
        names = {m.name: m.adapter_name for m in members}
        segments.append(Segment(range(cut, end), keys, torch.as_tensor(src, device=device),
                                torch.as_tensor([b for _, b in keys], device=device),
                                [names[n] if n != TRUNK else "__base__" for n, _ in keys]))
    last = {k: j for j, k in enumerate(segments[-1].keys)}
    out = [last[(m.name, b) if start[m.name] < n_layers else (TRUNK, b)] for m in members for b in rows[m.name]]
    layer_rows = sum(len(s.keys) * len(s.layers) for s in segments)
    stacked = len(out) * n_layers
    if layer_rows >= stacked:
        return None
    return TrunkPlan(segments, torch.as_tensor(out, device=device), layer_rows, stacked)


def _adapter_names_hook(module: Any, args: tuple, kwargs: dict, adapter_names: list[str]):
    kwargs["adapter_names"] = adapter_names
    return args, kwargs


@contextmanager
def segment_adapters(lora_modules: list[list[Any]], plan: TrunkPlan) -> Iterator[None]:
    """Each LoRA module of a segment's layers runs each stream with its adapter (peft's mixed batches)."""
    handles = []
    try:
        for seg in plan.segments:
            hook = partial(_adapter_names_hook, adapter_names=seg.adapters)
            for index in seg.layers:
                handles += [mod.register_forward_pre_hook(hook, with_kwargs=True) for mod in lora_modules[index]]
        yield
    finally:
        for h in handles:
            h.remove()


def trunk_forward(model: Any, plan: TrunkPlan, lora_modules: list[list[Any]], cache: Any, input_ids: torch.Tensor,
                  attention_mask: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
    """The decoder's forward over (B, T) batch rows, as streams: (R, vocab) logits of the last position,
    one per stacked row (member-major), as the PeftModel's forward with ``logits_to_keep=1`` gives them."""
    from transformers.masking_utils import create_causal_mask

    lm = model.get_base_model()
    dec = lm.model
    hidden = dec.embed_tokens(input_ids)  # (B, T, H)
    cos, sin = dec.rotary_emb(hidden, position_ids=position_ids)
    # Every segment's mask before any layer runs: the mask reads the cache's length, which layer 0 grows.
    prepared = []
    for seg in plan.segments:
        shape = (len(seg.keys), *hidden.shape[1:])
        mask = create_causal_mask(config=lm.config, inputs_embeds=hidden.new_empty(shape),
                                  attention_mask=attention_mask.index_select(0, seg.rows), cache=cache,
                                  position_ids=position_ids.index_select(0, seg.rows))
        prepared.append((mask, position_ids.index_select(0, seg.rows), (cos.index_select(0, seg.rows), sin.index_select(0, seg.rows))))
    with segment_adapters(lora_modules, plan):
        for seg, (mask, pos, rope) in zip(plan.segments, prepared):
            hidden = hidden.index_select(0, seg.src)
            for index in seg.layers:
                hidden = dec.layers[index](hidden, attention_mask=mask, position_ids=pos, cache=cache, use_cache=True,
                                           position_embeddings=rope)
    hidden = dec.norm(hidden[:, -1, :].index_select(0, plan.out))  # (R, H)
    return lm.lm_head(hidden)


def lora_modules_by_layer(model: Any) -> list[list[Any]]:
    """The LoRA modules of each decoder layer (where a segment's adapter names are injected)."""
    from peft.tuners.lora import LoraLayer

    dec = decoder_of(model)
    return [[m for m in layer.modules() if isinstance(m, LoraLayer)] for layer in dec.layers]
