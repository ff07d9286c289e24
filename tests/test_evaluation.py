"""Model-free metrics and the statistics of a results table, on hand-made data and the tiny engine."""

import dataclasses
import math

import numpy as np
import pytest

from genarm_core.decoding.methods import METHODS
from genarm_core.evaluation.metrics import completion_metrics, distinct_n, kl_along_path, rep_n
from genarm_core.evaluation.stats import bootstrap_mean, paired_difference, paired_win_rate, ratio_of_differences


def test_distinct_and_rep_count_ngrams_within_a_completion():
    text = "the cat sat the cat sat"
    assert distinct_n(text, 1) == 3 / 6 and distinct_n(text, 2) == 3 / 5  # (the cat) (cat sat) (sat the)
    assert rep_n(text, 3) == pytest.approx(1 - 3 / 4) and rep_n("all different words here", 2) == 0.0
    assert distinct_n("one", 2) is None and rep_n("", 1) is None
    with pytest.raises(ValueError, match="n must be >= 1"):
        distinct_n("a b", 0)


def test_completion_metrics_and_the_best_of_n_bound():
    m = completion_metrics("a b a b", 4, "eos", 2.0, [{"combined_logprob": -1.0, "base_logprob": -1.5}] * 4)
    assert m["ended_eos"] == 1.0 and m["seconds_per_token"] == 0.5 and m["kl_to_base"] == pytest.approx(2.0)
    assert completion_metrics("x", 0, "length", 1.0)["kl_to_base"] is None
    bound = METHODS["best_of_n"].kl_bound
    assert bound(1) == 0.0 and bound(4) == pytest.approx(math.log(4) - 0.75)
    assert METHODS["bon_rm"].kl_bound(4) == bound(4) and METHODS["genarm"].kl_bound(4) is None


def test_kl_along_the_path_is_zero_for_zero_weights_and_positive_when_steering(tiny_set):
    from genarm_core.models.config import DecodingConfig, RowSpec
    from genarm_core.decoding.engine import GenARMEngine
    from genarm_core.models.loading import load_model_set

    engine = GenARMEngine(load_model_set(tiny_set))
    rows = [RowSpec(f"Human: prompt {i} Assistant:", {"helpfulness": 0.0, "harmlessness": 0.0}) for i in range(4)]
    steered = [RowSpec(f"Human: prompt {i} Assistant:", {"helpfulness": 2.0}) for i in range(16)]
    cfg = DecodingConfig(temperature=1.0, max_new_tokens=12, seed=3, trace=True, stop_at_eos=False)
    assert all(kl_along_path(r.trace) == 0.0 for r in engine.generate(rows, cfg))
    results = engine.generate(steered, cfg)
    kls = [kl_along_path(r.trace) for r in results]
    # Recomputed from the trace's own per-token values: the same sum.
    assert kls[0] == pytest.approx(sum(t["combined_logprob"] - t["base_logprob"] for t in results[0].trace))
    assert np.mean(kls) > 0  # an unbiased estimate of KL(π̃ ‖ π_base) ≥ 0 at temperature 1
    # The engine's running sum (no trace needed) is the same number, and the same tokens come out.
    untraced = engine.generate(steered, dataclasses.replace(cfg, trace=False))
    assert [r.token_ids for r in untraced] == [r.token_ids for r in results]
    assert [r.kl_to_base for r in untraced] == pytest.approx(kls, abs=1e-9)
    assert all(r.forwards_per_token == 2.0 for r in untraced)  # the base and one ARM per token
    bon = engine.generate([RowSpec("Human: hi Assistant:", {"helpfulness": 1.0}, method="best_of_n", n=4)],
                          dataclasses.replace(cfg, trace=False))[0]
    assert bon.kl_to_base == 0.0  # its samples are the base's own
    assert bon.forwards_per_token == pytest.approx(2 * sum(len(c["token_ids"]) for c in bon.candidates) / bon.n_tokens)


def test_bootstrap_interval_of_a_known_case():
    const = bootstrap_mean([2.0] * 10)
    assert (const.value, const.low, const.high, const.n) == (2.0, 2.0, 2.0, 10)
    iv = bootstrap_mean([0.0, 1.0] * 50, rounds=2000, seed=1)
    assert iv.value == 0.5 and iv.low < 0.5 < iv.high
    # Normal approximation: the mean of 100 fair coins has sd 0.05, so the 95% interval is about ±0.098.
    assert iv.high - iv.low == pytest.approx(2 * 1.96 * 0.05, rel=0.15)
    assert bootstrap_mean([None, float("nan")]).n == 0 and str(bootstrap_mean([])) == "–"
    assert bootstrap_mean([1.0, 3.0], seed=5) == bootstrap_mean([1.0, 3.0], seed=5)  # seeded


def test_paired_differences_and_their_ratio():
    # b − a on the items both have: +1, +1, 0 (the fourth item has no b)
    d = paired_difference([0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, None], rounds=500)
    assert d.value == pytest.approx(2 / 3) and d.n == 3 and d.low <= d.value <= d.high
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference([1.0], [1.0, 2.0])
    # numerator: borderline answered rises by 0.5 on average; denominator: (after, before) of harmful refused,
    # so its difference is before − after: refusals fall by 0.25
    up = ([0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 1.0, 1.0])
    r = ratio_of_differences(up, ([0.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]), rounds=2000, seed=3)
    assert r.value == pytest.approx(0.5 / 0.25) and r.n == 4
    assert r.low <= r.value and r.high == float("inf")  # some rounds resample no fall at all: unbounded above
    # no fall at all: the ratio is undefined, not a number
    assert np.isnan(ratio_of_differences(up, ([1.0] * 4, [1.0] * 4)).value)


def test_bootstrap_interval_covers_the_truth_at_about_the_nominal_rate():
    rng = np.random.default_rng(0)
    hits = 0
    trials = 300
    for t in range(trials):
        iv = bootstrap_mean(rng.normal(1.0, 2.0, size=60).tolist(), rounds=400, seed=t)
        hits += iv.low <= 1.0 <= iv.high
    assert 0.89 <= hits / trials <= 0.99  # nominal 0.95; the percentile bootstrap runs a little narrow at n = 60


def test_paired_win_rate_counts_and_interval():
    wr = paired_win_rate([3.0, 2.0, 1.0, 5.0, None], [1.0, 2.0, 4.0, 4.5, 0.0], tolerance=0.0)
    assert (wr.wins, wr.ties, wr.losses) == (2, 1, 1)
    assert wr.win_rate.value == 0.5 and wr.win_rate_half_ties.value == pytest.approx(2.5 / 4) and wr.win_rate.n == 4
    assert paired_win_rate([1.0], [1.2], tolerance=0.5).ties == 1
    with pytest.raises(ValueError, match="equal lengths"):
        paired_win_rate([1.0], [])


def test_bradley_terry_matches_a_known_answer():
    from genarm_core.evaluation.ratings import bradley_terry

    # A beats B 3 times in 4: the MLE gives P(A beats B) = 3/4, i.e. 400·log10(3) Elo points apart.
    r = bradley_terry([("A", "B", 1)] * 3 + [("A", "B", 0)], anchor="B")
    assert r["B"] == 1000.0 and r["A"] - r["B"] == pytest.approx(400 * math.log10(3), abs=0.5)
    # Ties count as half a win for each side: two ties and one win each way leave them level.
    level = bradley_terry([("A", "B", 0.5), ("A", "B", 0.5), ("A", "B", 1), ("B", "A", 1)], anchor="A")
    assert level["B"] == pytest.approx(1000.0, abs=0.01)
    with pytest.raises(ValueError, match="anchor 'Z' has no battles"):
        bradley_terry([("A", "B", 1)], anchor="Z")
    with pytest.raises(ValueError, match="an outcome must be"):
        bradley_terry([("A", "B", 2)])


def test_bootstrap_rating_intervals_cover_the_truth_on_simulated_votes():
    from genarm_core.evaluation.ratings import SCALE, bootstrap_ratings

    truth = {"base": 1000.0, "genarm": 1100.0, "bon": 950.0}
    names = list(truth)
    rng = np.random.default_rng(0)
    covered = total = 0
    for trial in range(30):
        battles = []
        for _ in range(240):
            i, j = rng.choice(3, size=2, replace=False)
            a, b = names[i], names[j]
            p = 1 / (1 + math.exp(-(truth[a] - truth[b]) / SCALE))
            battles.append((a, b, float(rng.random() < p)))
        ivs = bootstrap_ratings(battles, anchor="base", rounds=100, seed=trial)
        for n in ("genarm", "bon"):
            total += 1
            covered += ivs[n].low <= truth[n] <= ivs[n].high
    assert 0.85 <= covered / total <= 1.0  # nominal 0.95 over 60 intervals
