"""Bradley–Terry ratings from pairwise verdicts, as Chatbot Arena computes them (FastChat's
``elo_analysis.py``): maximum likelihood with a tie counted as half a win for each side, on the
Elo scale (P(i beats j) = 1 / (1 + 10^((R_j − R_i) / 400))), one setting anchored at a fixed
rating, and percentile-bootstrap intervals from refits on resampled battles.

A battle is (first, second, outcome) with outcome 1 (first won), 0 (second won) or 0.5 (tie).
The fit is ``scipy.optimize.minimize`` (L-BFGS) on the log-likelihood with a very small ridge, so
that a setting that won every battle gets a large finite rating instead of no answer.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.optimize import minimize

from .stats import Interval

SCALE = 400 / math.log(10)  # Elo points per unit of the logistic's log-odds


def bradley_terry(battles: Sequence[tuple[str, str, float]], anchor: str | None = None, anchor_rating: float = 1000.0,
                  ridge: float = 1e-4) -> dict[str, float]:
    """Ratings by name; ``anchor`` (default: the first name seen) is fixed at ``anchor_rating``.

    Raises:
        ValueError: no battles, an outcome other than 0, 0.5 or 1, or an anchor that never played.
    """
    if not battles:
        raise ValueError("no battles to rate")
    names = list(dict.fromkeys(n for a, b, _ in battles for n in (a, b)))
    anchor = names[0] if anchor is None else anchor
    if anchor not in names:
        raise ValueError(f"the anchor {anchor!r} has no battles; settings with battles: {names}")
    index = {n: i for i, n in enumerate(names)}
    first = np.array([index[a] for a, _, _ in battles])
    second = np.array([index[b] for _, b, _ in battles])
    y = np.array([float(o) for _, _, o in battles])
    if not np.isin(y, (0.0, 0.5, 1.0)).all():
        raise ValueError("an outcome must be 1 (first won), 0 (second won) or 0.5 (tie)")
    free = [i for i in range(len(names)) if i != index[anchor]]

    def full(theta_free: np.ndarray) -> np.ndarray:
        theta = np.zeros(len(names))
        theta[free] = theta_free
        return theta

    def loss(theta_free: np.ndarray) -> tuple[float, np.ndarray]:
        theta = full(theta_free)
        d = theta[first] - theta[second]  # (battles,)
        p = 1 / (1 + np.exp(-d))
        nll = -(y * np.log(p + 1e-300) + (1 - y) * np.log(1 - p + 1e-300)).sum() + ridge * (theta_free ** 2).sum()
        g_d = p - y  # d nll / d d
        grad = np.zeros(len(names))
        np.add.at(grad, first, g_d)
        np.add.at(grad, second, -g_d)
        return float(nll), grad[free] + 2 * ridge * theta_free

    res = minimize(loss, np.zeros(len(free)), jac=True, method="L-BFGS-B")
    theta = full(res.x)
    return {n: anchor_rating + SCALE * theta[i] for n, i in index.items()}


def bootstrap_ratings(battles: Sequence[tuple[str, str, float]], anchor: str | None = None, rounds: int = 200,
                      seed: int = 0, level: float = 0.95, anchor_rating: float = 1000.0) -> dict[str, Interval]:
    """Each setting's rating (fitted on every battle) with a bootstrap interval over resampled battles.
    ``Interval.n`` is the number of battles the setting played."""
    point = bradley_terry(battles, anchor, anchor_rating)
    anchor = anchor or next(iter(point))
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {n: [] for n in point}
    battles = list(battles)
    for _ in range(rounds):
        pick = [battles[i] for i in rng.integers(0, len(battles), size=len(battles))]
        if not any(anchor in (a, b) for a, b, _ in pick):
            continue  # a resample without the anchor has no scale to report on
        for n, r in bradley_terry(pick, anchor, anchor_rating).items():
            samples[n].append(r)
    tail = (1 - level) / 2 * 100
    played = {n: sum(n in (a, b) for a, b, _ in battles) for n in point}
    out = {}
    for n, r in point.items():
        low, high = np.percentile(samples[n], [tail, 100 - tail]) if samples[n] else (float("nan"), float("nan"))
        out[n] = Interval(r, float(low), float(high), played[n])
    return out
