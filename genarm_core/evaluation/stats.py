"""The statistics a results table reports: percentile-bootstrap intervals of a mean, and paired
win / tie / lose counts with the win rate's interval (GENARM.md §6: win / (win + tie + lose) and
(win + ½ tie) / n). Resampling is seeded, so a table is the same every time it is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A point estimate with its (level) bootstrap interval over ``n`` values."""

    value: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        if self.n == 0:
            return "–"
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"


def bootstrap_mean(values: Sequence[float | None], rounds: int = 1000, seed: int = 0, level: float = 0.95) -> Interval:
    """The mean of ``values`` (None and NaN left out) with a percentile-bootstrap interval."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    x = np.array([v for v in values if v is not None], dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(rounds, x.size))].mean(axis=1)  # (rounds,)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(float(x.mean()), float(low), float(high), int(x.size))


def paired_difference(a: Sequence[float | None], b: Sequence[float | None], rounds: int = 1000, seed: int = 0,
                      level: float = 0.95) -> Interval:
    """The mean of ``b − a`` over paired items (same prompt and sample; items where either is missing
    left out), with a percentile-bootstrap interval: how far a change of setting moved a judge."""
    if len(a) != len(b):
        raise ValueError(f"paired scores need equal lengths, got {len(a)} and {len(b)}")
    return bootstrap_mean([y - x for x, y in zip(a, b) if x is not None and y is not None], rounds, seed, level)


def ratio_of_differences(num: tuple[Sequence[float], Sequence[float]], den: tuple[Sequence[float], Sequence[float]],
                         rounds: int = 1000, seed: int = 0, level: float = 0.95) -> Interval:
    """mean(num[1] − num[0]) / mean(den[1] − den[0]), each a paired difference over its own items (NaN
    left out), with a percentile-bootstrap interval resampling both sets of items. A round whose
    denominator is not above 0 counts as +∞ (the ratio is unbounded there); the value is NaN when the
    denominator itself is not above 0."""
    def diffs(pair):
        d = np.array(pair[1], dtype=float) - np.array(pair[0], dtype=float)
        return d[~np.isnan(d)]

    x, y = diffs(num), diffs(den)
    if x.size == 0 or y.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    top = x[rng.integers(0, x.size, size=(rounds, x.size))].mean(axis=1)
    bottom = y[rng.integers(0, y.size, size=(rounds, y.size))].mean(axis=1)
    ratios = np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1.0), np.inf)
    tail = (1 - level) / 2
    low, high = np.quantile(ratios, [tail, 1 - tail], method="inverted_cdf")
    value = float(x.mean() / y.mean()) if y.mean() > 0 else float("nan")
    return Interval(value, float(low), float(high), int(min(x.size, y.size)))


@dataclass(frozen=True)
class WinRate:
    wins: int
    ties: int
    losses: int
    win_rate: Interval  # win / (win + tie + lose)
    win_rate_half_ties: Interval  # (win + ½ tie) / n


def paired_win_rate(a: Sequence[float | None], b: Sequence[float | None], tolerance: float = 0.0, rounds: int = 1000,
                    seed: int = 0, level: float = 0.95) -> WinRate:
    """A against B on the same items (same prompt and sample): a win when a > b + tolerance, a loss
    when b > a + tolerance, else a tie; items where either is missing are left out."""
    if len(a) != len(b):
        raise ValueError(f"paired scores need equal lengths, got {len(a)} and {len(b)}")
    outcome = [1.0 if x > y + tolerance else 0.0 if y > x + tolerance else 0.5
               for x, y in zip(a, b) if x is not None and y is not None and not (np.isnan(x) or np.isnan(y))]
    wins, losses = outcome.count(1.0), outcome.count(0.0)
    return WinRate(wins, len(outcome) - wins - losses, losses,
                   bootstrap_mean([float(o == 1.0) for o in outcome], rounds, seed, level),
                   bootstrap_mean(outcome, rounds, seed, level))


def cohen_kappa(a: Sequence[object], b: Sequence[object]) -> tuple[float | None, float | None, int]:
    """Agreement of two raters on the same items: (share of equal labels, Cohen's κ, n).

    κ = (p_o − p_e) / (1 − p_e), p_e from each rater's own label shares; None when n = 0, and κ
    None when chance agreement is already 1 (both raters always give the same one label)."""
    if len(a) != len(b):
        raise ValueError(f"two raters need the same items, got {len(a)} and {len(b)}")
    n = len(a)
    if n == 0:
        return None, None, 0
    observed = sum(x == y for x, y in zip(a, b)) / n
    labels = set(a) | set(b)
    expected = sum((list(a).count(c) / n) * (list(b).count(c) / n) for c in labels)
    kappa = None if expected >= 1 else (observed - expected) / (1 - expected)
    return observed, kappa, n
