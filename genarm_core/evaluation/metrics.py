"""Metrics that need no model: diversity and repetition within a completion, the KL to the base
along the sampled path, and the decoding cost.

- ``distinct_n``: unique n-grams / n-grams of one completion (words split on white space).
- ``rep_n``: 1 − distinct-n, the share of repeated n-grams (ARGS's ``metrics.py`` reports it × 100).
- ``kl_along_path``: Σ_t [log π̃(y_t | ·) − log π_base(y_t | ·)] over the sampled tokens, from the
  engine's per-token trace (``combined_logprob``: the GenARM distribution before temperature and
  truncation; ``base_logprob``). For tokens drawn from π̃ itself (temperature 1, no top-k / top-p)
  its expectation is KL(π̃ ‖ π_base) of the completion; at other temperatures it is the same sum
  along a path drawn from the tempered distribution (still 0 when every weight is 0). Best-of-N
  has no such per-token distribution: its KL is bounded by log N − (N − 1) / N instead.
"""

from __future__ import annotations

from typing import Any, Sequence


def words(text: str) -> list[str]:
    return text.split()


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(text: str, n: int) -> float | None:
    """Unique n-grams / n-grams of ``text``; None when it has no n-gram (shorter than n words)."""
    grams = ngrams(words(text), n)
    return len(set(grams)) / len(grams) if grams else None


def rep_n(text: str, n: int) -> float | None:
    """The share of ``text``'s n-grams that repeat an earlier one: 1 − distinct-n (None: no n-gram)."""
    d = distinct_n(text, n)
    return None if d is None else 1.0 - d


def kl_along_path(trace: Sequence[dict[str, Any]] | None) -> float | None:
    """Σ_t (combined_logprob − base_logprob) over a completion's trace; None without a trace."""
    if not trace:
        return None
    return float(sum(t["combined_logprob"] - t["base_logprob"] for t in trace))


def completion_metrics(text: str, n_tokens: int, finish_reason: str, latency_s: float,
                       trace: Sequence[dict[str, Any]] | None = None, kl: float | None = None,
                       forwards_per_token: float | None = None) -> dict[str, float | None]:
    """Every model-free metric of one completion, by name (None where one does not apply).

    ``kl``: the engine's running sum (``RowResult.kl_to_base``), used when there is no trace."""
    return {"length_tokens": float(n_tokens), "ended_eos": float(finish_reason == "eos"),
            "distinct_1": distinct_n(text, 1), "distinct_2": distinct_n(text, 2),
            "rep_2": rep_n(text, 2), "rep_3": rep_n(text, 3), "rep_4": rep_n(text, 4),
            "kl_to_base": kl_along_path(trace) if trace else kl,
            "seconds_per_token": latency_s / n_tokens if n_tokens else None,
            "forwards_per_token": forwards_per_token}

#: The names ``completion_metrics`` returns, in table order.
METRICS = ("length_tokens", "ended_eos", "distinct_1", "distinct_2", "rep_2", "rep_3", "rep_4", "kl_to_base",
           "seconds_per_token", "forwards_per_token")


def cost_metrics(text: str, n_tokens: int, finish_reason: str, latency_s: float, kl: float | None = None,
                 forwards_per_token: float | None = None, trace: list | None = None) -> dict[str, float | None]:
    """A completion's metrics ({metric judge: value}, every name of ``METRICS``): the one builder the
    dashboard's generations and a study's cells are scored with."""
    m = completion_metrics(text, n_tokens, finish_reason, latency_s, trace=trace, kl=kl,
                           forwards_per_token=forwards_per_token)
    return {name: m[name] for name in METRICS}
