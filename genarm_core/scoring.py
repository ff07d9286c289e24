"""Sequence-level scores: r(x, y) = Σ_t log π(y_t | x, y_<t), batched.

The ARM trainer and the engine's scorer share ``response_logps`` so that training and
evaluation compute the reward the same way.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from transformers import PreTrainedModel

from .loading import ModelSet
from .math import masked_sum, selective_log_softmax


def pad_right(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token lists. Returns (ids, mask), each (B, T_max)."""
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def response_logps(
    model: PreTrainedModel | Callable[..., Any],
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    response_mask: torch.Tensor,
    length_normalize: bool = False,
    vocab_size: int | None = None,
) -> torch.Tensor:
    """Sum (or mean) of log π(y_t | ·) over the response tokens of each row.

    Args:
        input_ids, attention_mask: (B, T) prompt + response, right-padded.
        response_mask: (B, T), 1 where the token is a response token (prompt and padding are 0).
        vocab_size: slice logits to the shared vocabulary first (as decoding does).
    Returns:
        (B,) float32.
    """
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits  # (B, T, V')
    if vocab_size is not None:
        logits = logits[..., :vocab_size]
    # The logits at position t predict token t+1.
    token_logps = selective_log_softmax(logits[:, :-1], input_ids[:, 1:])  # (B, T-1)
    return masked_sum(token_logps, response_mask[:, 1:], length_normalize)


@torch.inference_mode()
def score_sequences(
    model_set: ModelSet,
    prompts: Sequence[str | Sequence[dict[str, str]]],
    completions: Sequence[Sequence[int]],
    objectives: Sequence[str] | None = None,
    batch_size: int = 16,
    include_base: bool = False,
) -> dict[str, list[float]]:
    """r_i(x, y) for every (prompt, completion token ids) pair and every requested objective.

    Each model sees the prompt through its own template; the completion ids are shared.

    Returns:
        objective name (and ``"base"`` when ``include_base``) -> list of B floats.
    """
    if len(prompts) != len(completions):
        raise ValueError("prompts and completions must have the same length")
    names = list(objectives) if objectives is not None else model_set.objectives
    unknown = set(names) - set(model_set.arms)
    if unknown:
        raise ValueError(f"unknown objective(s): {sorted(unknown)}; the model set has {model_set.objectives}")
    members = ([model_set.base] if include_base else []) + [model_set.arms[n] for n in names]
    out: dict[str, list[float]] = {}
    for lm in members:
        scores: list[float] = []
        pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
        for start in range(0, len(prompts), batch_size):
            chunk = range(start, min(start + batch_size, len(prompts)))
            prompt_ids = [lm.encode_prompt(prompts[i]) for i in chunk]
            seqs = [p + list(completions[i]) for p, i in zip(prompt_ids, chunk)]
            ids, mask = pad_right(seqs, pad)
            resp = mask.clone()
            for row, p in enumerate(prompt_ids):
                resp[row, : len(p)] = 0
            dev = lm.device
            s = response_logps(lm, ids.to(dev), mask.to(dev), resp.to(dev), vocab_size=model_set.vocab_size)
            scores.extend(s.float().cpu().tolist())
        out[lm.name] = scores
    return out
