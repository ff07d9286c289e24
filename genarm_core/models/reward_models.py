"""Trajectory-level reward models: r(x, y), one number per (prompt, response), read at the last token.

A reward model here is an ``AutoModelForSequenceClassification`` with one output (a LoRA adapter
on it, or a full model). ``sequence_rewards`` runs its backbone once over the batch and applies
the score head only at each row's last real token: no full-vocabulary work, and it does not rely
on the model's own pooling, which finds "the last token" by looking for the pad id and so misreads
a response that ends in EOS when pad and EOS are one token (as in SmolLM2).

Used by ``genarm train-rm`` (training and held-out accuracy), by ARGS decoding (``args.py``: the
reward of each candidate continuation, from a KV cache of the prefix) and by Best-of-N ranked by a
reward model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from genarm_core.models.scoring import pad_id_of, pad_left


def rm_parts(model: Any) -> tuple[nn.Module, nn.Module]:
    """(backbone, score head) of a sequence-classification model, through a PEFT wrapper."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    backbone = getattr(inner, inner.base_model_prefix, None)
    head = getattr(inner, "score", None) or getattr(inner, "classifier", None)
    if backbone is None or head is None:
        raise ValueError(f"{type(inner).__name__} is not a sequence-classification model with a score head")
    return backbone, head


def sequence_rewards(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     position_ids: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) rewards: the score head at each row's last real token (rows right- or left-padded)."""
    backbone, head = rm_parts(model)
    if position_ids is None:
        position_ids = (attention_mask.cumsum(-1) - 1).clamp_min(0)
    hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                      use_cache=False).last_hidden_state
    # the last position whose mask is 1 (right padding: the row's end; left padding: the last column)
    last = (attention_mask * torch.arange(1, attention_mask.shape[1] + 1, device=attention_mask.device)).argmax(-1)
    picked = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    return head(picked).squeeze(-1).float()


@torch.no_grad()
def reward_of(model: Any, tokenizer: Any, sequences: list[list[int]], device: torch.device | str | None = None,
              max_tokens: int = 8192) -> list[float]:
    """Rewards of token sequences (prompt + response, as the model was trained to read them), batched
    by padded tokens."""
    if not sequences:
        return []
    device = device or next(model.parameters()).device
    pad = pad_id_of(tokenizer)
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    out = [0.0] * len(sequences)
    start = 0
    while start < len(order):
        n = 1
        while start + n < len(order) and (n + 1) * len(sequences[order[start + n]]) <= max_tokens:
            n += 1
        idx = order[start:start + n]
        start += n
        ids, mask = pad_left([sequences[i] for i in idx], pad)
        values = sequence_rewards(model, ids.to(device), mask.to(device)).cpu().tolist()
        for i, v in zip(idx, values):
            out[i] = v
    return out
