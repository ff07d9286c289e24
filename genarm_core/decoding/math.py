"""The pure math of GenARM: combining log-probs, sampling filters, sampling, the ARM loss.

Every function here is a small function over tensors, with no model and no I/O, so each can
be tested on hand-made tensors. The formulas follow GENARM.md:

    log π̃(y | ·) = log π_base(y | ·) + Σ_i (α_i / β) · log π_ri(y | ·) − log Z        (decoding)
    p(y) ∝ exp(log π̃(y | ·) / T), truncated by top-k / top-p, renormalised          (sampling)
    L = −log σ(β_r · (Σ_t log π_r(y_w,t) − Σ_t log π_r(y_l,t)))                       (ARM loss)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def combine_logprobs(
    base_logprobs: torch.Tensor,
    arm_logprobs: torch.Tensor | None,
    alphas: torch.Tensor | None,
    beta: float,
) -> torch.Tensor:
    """GenARM's next-token distribution, normalised.

    Args:
        base_logprobs: (B, V) log-softmax of the base model.
        arm_logprobs: (K, B, V) log-softmax of each ARM, or None when K = 0.
        alphas: (B, K) per-row preference weight of each objective, or None when K = 0.
        beta: global alignment strength β > 0.

    Returns:
        (B, V) log π̃ = log_softmax(base + Σ_k (α_k / β) · arm_k). A row whose weights are all
        zero equals ``base_logprobs`` exactly (the ARMs are not touched for it).
    """
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if arm_logprobs is None or arm_logprobs.shape[0] == 0:
        return base_logprobs
    K, B, V = arm_logprobs.shape
    if alphas is None or alphas.shape != (B, K):
        raise ValueError(f"alphas must have shape (B, K) = ({B}, {K}), got {None if alphas is None else tuple(alphas.shape)}")
    if base_logprobs.shape != (B, V):
        raise ValueError(f"base_logprobs must have shape ({B}, {V}), got {tuple(base_logprobs.shape)}")
    scale = (alphas / beta).to(base_logprobs.dtype).T.unsqueeze(-1)  # (K, B, 1)
    # where(): a zero weight contributes exactly 0 even where an ARM gives -inf (0 · -inf = nan).
    steer = torch.where(scale != 0, scale * arm_logprobs, torch.zeros((), dtype=base_logprobs.dtype)).sum(0)
    active = (alphas != 0).any(dim=1, keepdim=True)  # (B, 1)
    combined = torch.log_softmax(base_logprobs + steer, dim=-1)
    # Rows with no active weight keep the base log-probs bit for bit (no renormalisation noise).
    return torch.where(active, combined, base_logprobs)


def restrict_logprobs(logprobs: torch.Tensor, excluded: torch.Tensor) -> torch.Tensor:
    """A distribution with some tokens ruled out, renormalised over the rest.

    Args:
        logprobs: (B, V) log-probabilities. excluded: (B, V) bool, True for tokens that may not be
            sampled (special tokens, bytes that would break a character).
    Returns:
        (B, V) log-probabilities, -inf where excluded.
    """
    return torch.log_softmax(logprobs.masked_fill(excluded, float("-inf")), dim=-1)


def top_k_mask(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Mask all but the ``top_k`` largest entries of each row with -inf.

    Args:
        logits: (B, V) scores. top_k: 0 disables the filter. Ties at the k-th value are kept.
    Returns:
        (B, V) new tensor.
    """
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    if top_k == 0 or top_k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]  # (B, 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_mask(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens whose mass reaches ``top_p``.

    Args:
        logits: (B, V) scores (temperature already applied). top_p in (0, 1]; 1 disables it.
    Returns:
        (B, V) new tensor with the dropped entries at -inf. The most likely token is always kept.
    """
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if top_p >= 1.0:
        return logits
    if logits.device.type == "cpu" and logits.shape[-1] > NUCLEUS_CANDIDATES:
        # Sorting the whole vocabulary is most of this filter's time on the CPU (about 4 ms for two
        # rows of 49,152); the nucleus almost always lies among the most likely few hundred tokens.
        top, order = torch.topk(logits, NUCLEUS_CANDIDATES, dim=-1)  # sorted, most likely first
        probs = torch.exp(top - torch.logsumexp(logits, dim=-1, keepdim=True))
        mass_before = torch.cumsum(probs, dim=-1) - probs
        if bool((mass_before[:, -1] + probs[:, -1] >= top_p).all()):  # every row's nucleus is inside
            keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, order, mass_before < top_p)
            return logits.masked_fill(~keep, float("-inf"))
    return _top_p_mask_sorted(logits, top_p)


#: on the CPU, ``top_p_mask`` first looks for the nucleus among this many most likely tokens, and
#: sorts the whole row only when they hold less than ``top_p`` of its mass (a reading from the host,
#: so CUDA, whose steps may be captured as graphs, always sorts)
NUCLEUS_CANDIDATES = 1024


def _top_p_mask_sorted(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """``top_p_mask`` by a sort of the whole row."""
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = torch.cumsum(probs, dim=-1) - probs  # mass of strictly more likely tokens
    drop_sorted = mass_before >= top_p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def sampling_logprobs(combined: torch.Tensor, temperature: float, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """The final sampling distribution: temperature, then top-k, then top-p, renormalised.

    Args:
        combined: (B, V) log π̃. temperature: T > 0 (greedy decoding does not call this).
    Returns:
        (B, V) log-probabilities; filtered entries are -inf.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 here, got {temperature}")
    if temperature == 1.0 and top_k == 0 and top_p >= 1.0:
        return combined  # already normalised: nothing to change, and one pass over V saved per step
    scores = combined / temperature if temperature != 1.0 else combined
    scores = top_p_mask(top_k_mask(scores, top_k), top_p)
    return torch.log_softmax(scores, dim=-1)


def sample_from_logprobs(logprobs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF sampling: one token per row from a uniform draw per row.

    Drawing the uniforms from one generator per row (not one for the batch) is what makes a
    row's tokens independent of its batch-mates, and lets A/B rows share random numbers.

    Args:
        logprobs: (B, V) normalised log-probabilities. uniforms: (B,) in [0, 1).
    Returns:
        (B,) token ids (int64).
    """
    probs = logprobs.exp()
    cdf = torch.cumsum(probs, dim=-1)  # (B, V)
    target = uniforms.to(cdf.dtype).unsqueeze(-1) * cdf[:, -1:]  # scale by the total against rounding
    idx = torch.searchsorted(cdf, target, right=True).squeeze(-1)
    idx = idx.clamp_max(logprobs.shape[-1] - 1)
    # A zero-probability token can only be hit through float ties at its cdf step; move to the argmax then.
    bad = probs.gather(-1, idx.unsqueeze(-1)).squeeze(-1) <= 0
    return torch.where(bad, logprobs.argmax(-1), idx)


def selective_log_softmax(logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """log_softmax(logits)[..., index] without keeping the full (.., V) log-prob tensor around.

    Args:
        logits: (B, T, V). index: (B, T) token ids.
    Returns:
        (B, T) float32 log-probs.
    """
    logits = logits.float()
    picked = logits.gather(-1, index.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def masked_sum(values: torch.Tensor, mask: torch.Tensor, length_normalize: bool = False) -> torch.Tensor:
    """Σ_t values[b, t] · mask[b, t] per row, or the mean over the masked positions.

    Args:
        values: (B, T). mask: (B, T), 1 on response tokens.
    Returns:
        (B,).
    """
    mask = mask.to(values.dtype)
    total = (values * mask).sum(-1)
    if length_normalize:
        total = total / mask.sum(-1).clamp_min(1.0)
    return total


def arm_loss(chosen_logps: torch.Tensor, rejected_logps: torch.Tensor, beta_r: float) -> torch.Tensor:
    """The GenARM reward-model loss, averaged over the batch.

        L = −log σ(β_r · (Σ_t log π_r(y_w,t | ·) − Σ_t log π_r(y_l,t | ·)))

    No reference model appears: this is what separates it from DPO.

    Args:
        chosen_logps, rejected_logps: (B,) response log-prob sums (or means, if length-normalised).
        beta_r: β_r > 0.
    Returns:
        Scalar loss.
    """
    if beta_r <= 0:
        raise ValueError(f"beta_r must be > 0, got {beta_r}")
    return -F.logsigmoid(beta_r * (chosen_logps - rejected_logps)).mean()
