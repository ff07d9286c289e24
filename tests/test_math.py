"""The pure math, checked against hand computations on small tensors."""

import math

import pytest
import torch

from genarm_core.decoding.math import (arm_loss, combine_logprobs, masked_sum, sample_from_logprobs, sampling_logprobs,
                              selective_log_softmax, top_k_mask, top_p_mask)


def lsm(x):
    return torch.log_softmax(torch.tensor(x, dtype=torch.float32), -1)


def test_combine_matches_hand_computation():
    base = lsm([[1.0, 2.0, 3.0]])
    arm1 = lsm([[3.0, 1.0, 0.0]])
    arm2 = lsm([[0.0, 0.0, 5.0]])
    alphas = torch.tensor([[1.0, -0.5]])
    beta = 2.0
    out = combine_logprobs(base, torch.stack([arm1, arm2]), alphas, beta)
    # By hand: base + (1/2)·arm1 + (-0.5/2)·arm2, then normalise.
    raw = [base[0, i].item() + 0.5 * arm1[0, i].item() - 0.25 * arm2[0, i].item() for i in range(3)]
    z = math.log(sum(math.exp(r) for r in raw))
    assert out[0].tolist() == pytest.approx([r - z for r in raw], abs=1e-6)
    assert out.exp().sum().item() == pytest.approx(1.0, abs=1e-6)


def test_zero_weights_return_base_exactly_even_with_inf():
    base = lsm([[0.1, 0.2, 0.3, 0.4], [1.0, 0.0, 0.0, 0.0]])
    arms = torch.stack([torch.tensor([[float("-inf"), 0.0, -1.0, -2.0]] * 2)])
    alphas = torch.tensor([[0.0], [1.0]])
    out = combine_logprobs(base, arms, alphas, 1.0)
    assert torch.equal(out[0], base[0])  # bit for bit
    assert out[1, 0].item() == float("-inf")  # the active row is steered


def test_combine_validates_shapes_and_beta():
    base = lsm([[0.0, 0.0]])
    with pytest.raises(ValueError, match="beta"):
        combine_logprobs(base, None, None, 0.0)
    with pytest.raises(ValueError, match="alphas"):
        combine_logprobs(base, torch.stack([base]), torch.zeros(1, 2), 1.0)
    assert torch.equal(combine_logprobs(base, None, None, 1.0), base)


def test_top_k_keeps_exactly_k_and_returns_new_tensor():
    x = torch.tensor([[0.5, 3.0, 1.0, 2.0, -1.0]])
    out = top_k_mask(x, 2)
    assert torch.isfinite(out).tolist() == [[False, True, False, True, False]]
    assert torch.isfinite(x).all()  # input untouched
    assert torch.equal(top_k_mask(x, 0), x)
    with pytest.raises(ValueError):
        top_k_mask(x, -1)


def test_top_p_keeps_smallest_set_reaching_mass():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    x = probs.log()
    assert torch.isfinite(top_p_mask(x, 0.5)).tolist() == [[True, False, False, False]]
    assert torch.isfinite(top_p_mask(x, 0.8)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(top_p_mask(x, 0.81)).tolist() == [[True, True, True, False]]
    assert torch.isfinite(top_p_mask(x, 1.0)).all()
    # Order in the vocabulary does not matter.
    perm = torch.tensor([2, 0, 3, 1])
    assert torch.isfinite(top_p_mask(x[:, perm], 0.8)).tolist() == [[False, True, False, True]]
    with pytest.raises(ValueError):
        top_p_mask(x, 0.0)


@pytest.mark.parametrize("scale,sorted_calls", [(0.3, 3), (12.0, 0)])
def test_top_p_among_candidates_is_the_full_sort(scale, sorted_calls, monkeypatch):
    """The CPU's shortcut (the nucleus among the ``NUCLEUS_CANDIDATES`` most likely tokens) gives what
    sorting the whole row gives; flat rows (nucleus outside the candidates) take the sort. Excluded
    (-inf) tokens and a row of another shape beside the others included."""
    from genarm_core.decoding import math as gm

    torch.manual_seed(int(scale * 10))
    x = torch.randn(4, 5000) * scale
    x[1, :4000] = float("-inf")
    x[2] *= 0.5
    calls = []
    full = gm._top_p_mask_sorted
    monkeypatch.setattr(gm, "_top_p_mask_sorted", lambda *a: calls.append(1) or full(*a))
    for p in (0.5, 0.9, 0.95):
        assert torch.equal(top_p_mask(x, p), full(x, p))
    assert len(calls) == sorted_calls

def test_sampling_logprobs_applies_temperature_then_filters():
    combined = lsm([[2.0, 1.0, 0.0, -1.0]])
    out = sampling_logprobs(combined, temperature=0.5, top_k=3, top_p=1.0)
    expected = torch.log_softmax(torch.tensor([[4.0, 2.0, 0.0]]), -1)
    assert out[0, :3].tolist() == pytest.approx(expected[0].tolist(), abs=1e-6)
    assert out[0, 3].item() == float("-inf")


def test_inverse_cdf_sampling_is_exact_and_respects_masks():
    lp = torch.tensor([[0.25, 0.25, 0.5, 0.0]]).log()
    picks = [sample_from_logprobs(lp, torch.tensor([u])).item() for u in (0.0, 0.24, 0.26, 0.49, 0.51, 0.999999)]
    assert picks == [0, 0, 1, 1, 2, 2]
    g = torch.Generator().manual_seed(0)
    lp = torch.log(torch.tensor([[0.1, 0.6, 0.3]]))
    draws = torch.stack([sample_from_logprobs(lp, torch.rand(1, generator=g)) for _ in range(4000)]).flatten()
    freq = torch.bincount(draws, minlength=3).float() / 4000
    assert freq.tolist() == pytest.approx([0.1, 0.6, 0.3], abs=0.03)


def test_selective_log_softmax_and_masked_sum():
    logits = torch.randn(2, 3, 7)
    idx = torch.randint(0, 7, (2, 3))
    ref = torch.log_softmax(logits, -1).gather(-1, idx.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(selective_log_softmax(logits, idx), ref, atol=1e-6)
    v = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    m = torch.tensor([[0, 1, 1], [1, 0, 0]])
    assert masked_sum(v, m).tolist() == [5.0, 4.0]
    assert masked_sum(v, m, length_normalize=True).tolist() == [2.5, 4.0]


def test_arm_loss_hand_numbers():
    chosen = torch.tensor([-10.0, -3.0])
    rejected = torch.tensor([-12.0, -1.0])
    beta_r = 0.5
    # -log σ(0.5·2) and -log σ(0.5·-2), averaged.
    expected = (math.log(1 + math.exp(-1.0)) + math.log(1 + math.exp(1.0))) / 2
    assert arm_loss(chosen, rejected, beta_r).item() == pytest.approx(expected, abs=1e-6)
    assert arm_loss(torch.tensor([0.0]), torch.tensor([0.0]), 1.0).item() == pytest.approx(math.log(2), abs=1e-6)
    with pytest.raises(ValueError):
        arm_loss(chosen, rejected, 0.0)
