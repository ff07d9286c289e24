"""Sequence-level scores: r(x, y) = Σ_t log π(y_t | x, y_<t), batched.

The ARM trainer and the engine's scorer share ``response_logps`` so that training and
evaluation compute the reward the same way.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch.utils.checkpoint import checkpoint
from transformers import PreTrainedModel

from genarm_core.models.loading import ModelSet
from genarm_core.decoding.math import masked_sum, selective_log_softmax


def pad_right(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token lists. Returns (ids, mask), each (B, T_max)."""
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def pad_left(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists (decoding: every row's last token in the last column). Returns (ids, mask)."""
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        if len(s):
            ids[i, T - len(s):] = torch.as_tensor(list(s), dtype=torch.long)
            mask[i, T - len(s):] = 1
    return ids, mask


def pad_id_of(tokenizer: Any) -> int:
    """The id to pad with: the pad token, else EOS, else 0."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)


#: Bytes of float32 logits computed at once when scoring responses (one chunk of positions);
#: under autograd, logits beyond ``LOGITS_KEEP_BYTES`` in all are recomputed in the backward pass
#: instead of kept (below it, keeping them is cheaper than computing the output layer twice).
LOGITS_CHUNK_BYTES = 64 * 2**20
LOGITS_KEEP_BYTES = 256 * 2**20


def _head_logps(head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor, vocab_size: int | None) -> torch.Tensor:
    """log_softmax(head(hidden))[target] for one chunk: (N, H), (N,) -> (N,) float32."""
    logits = head(hidden).float()
    if vocab_size is not None:
        logits = logits[:, :vocab_size]
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def _plain_head(model: Any) -> torch.nn.Module | None:
    """The output layer, when logits are exactly ``head(last hidden state)`` (no soft-capping or
    scaling after it); None otherwise."""
    inner = model.model if hasattr(model, "adapter_name") else model  # a LoadedModel wraps the real one
    cfg = getattr(inner, "config", None)
    get = getattr(inner, "get_output_embeddings", None)
    if cfg is None or get is None or getattr(cfg, "final_logit_softcapping", None) or getattr(cfg, "logit_scale", None):
        return None
    return get()


def response_logps(
    model: PreTrainedModel | Callable[..., Any],
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    response_mask: torch.Tensor,
    length_normalize: bool = False,
    vocab_size: int | None = None,
) -> torch.Tensor:
    """Sum (or mean) of log π(y_t | ·) over the response tokens of each row.

    Memory: the full (B, T, V) log-softmax is never built. The model returns its last hidden
    state; the output layer runs only at the positions that predict a response token, a chunk of
    positions at a time (``LOGITS_CHUNK_BYTES``), and under autograd, when they would be large,
    each chunk's logits are recomputed in the backward pass instead of being kept (as TRL's
    selective log-softmax and chunked cross-entropy do). Models whose logits are not a plain output layer (soft-capping)
    take the full-logits path.

    Args:
        input_ids, attention_mask: (B, T) prompt + response, right-padded.
        response_mask: (B, T), 1 where the token is a response token (prompt and padding are 0).
        vocab_size: slice logits to the shared vocabulary first (as decoding does).
    Returns:
        (B,) float32.
    """
    mask = response_mask[:, 1:].bool()  # position t predicts token t+1
    targets = input_ids[:, 1:][mask]  # (N,)
    head = _plain_head(model)
    if head is None:
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits  # (B, T, V')
        if vocab_size is not None:
            logits = logits[..., :vocab_size]
        token_logps = selective_log_softmax(logits[:, :-1], input_ids[:, 1:])  # (B, T-1)
        return masked_sum(token_logps, response_mask[:, 1:], length_normalize)
    out = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, logits_to_keep=1)
    hidden = out.hidden_states[-1][:, :-1][mask]  # (N, H) the states that predict response tokens
    V = vocab_size or head.weight.shape[0]
    chunk = max(1, LOGITS_CHUNK_BYTES // (4 * V))
    recompute = torch.is_grad_enabled() and hidden.requires_grad and hidden.shape[0] * V * 4 > LOGITS_KEEP_BYTES
    pieces = []
    for start in range(0, hidden.shape[0], chunk):
        h, t = hidden[start:start + chunk], targets[start:start + chunk]
        if recompute:
            pieces.append(checkpoint(_head_logps, head, h, t, vocab_size, use_reentrant=False))
        else:
            pieces.append(_head_logps(head, h, t, vocab_size))
    logps = torch.cat(pieces) if pieces else hidden.new_zeros(0, dtype=torch.float32)
    rows = mask.nonzero()[:, 0]  # (N,) the row of each response token
    sums = torch.zeros(input_ids.shape[0], dtype=torch.float32, device=logps.device).index_add(0, rows, logps)
    if length_normalize:
        sums = sums / mask.sum(-1).clamp_min(1).to(sums.dtype)
    return sums


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
