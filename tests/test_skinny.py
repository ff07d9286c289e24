"""Skinny products: few-row linear layers as W @ x^T on the CPU give F.linear's values."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genarm_core.decoding import skinny
from genarm_core.models.config import DecodingConfig, RowSpec
from genarm_core.decoding.engine import GenARMEngine
from genarm_core.decoding.skinny import SkinnyLinear, skinny_linear, use_skinny_products

from .conftest import assert_same_decoding


@pytest.mark.parametrize("rows", [1, 2, 3, 5, skinny.ROWS, skinny.ROWS + 1, 40])
@pytest.mark.parametrize("bias", [False, True])
def test_the_same_values_as_f_linear(rows, bias):
    """Any number of rows, 2-D and 3-D inputs, a column-major input: F.linear's values to float32
    rounding, its shape, and a row-major result."""
    torch.manual_seed(rows)
    weight = torch.randn(512, 256)  # 131,072 weights: above MIN_WEIGHT, so the fast path is taken
    b = torch.randn(512) if bias else None
    for x in (torch.randn(rows, 256), torch.randn(rows, 1, 256), torch.randn(256, rows).t()):
        out, ref = skinny_linear(x, weight, b), F.linear(x, weight, b)
        assert out.shape == ref.shape and out.is_contiguous()
        assert torch.allclose(out, ref, atol=1e-4, rtol=1e-5)
        if rows > skinny.ROWS:
            assert torch.equal(out, ref)  # F.linear itself


def test_what_keeps_f_linear():
    """Small matrices (a LoRA adapter's), other dtypes and empty inputs take F.linear unchanged."""
    torch.manual_seed(0)
    x = torch.randn(2, 64)
    small = torch.randn(16, 64)
    assert torch.equal(skinny_linear(x, small), F.linear(x, small))
    big = torch.randn(512, 256)
    xb = torch.randn(2, 256, dtype=torch.bfloat16)
    assert torch.equal(skinny_linear(xb, big.bfloat16()), F.linear(xb, big.bfloat16()))
    assert skinny_linear(torch.randn(0, 256), big).shape == (0, 512)


def test_gradients_flow():
    """A model swapped to SkinnyLinear still trains: the same gradients as nn.Linear."""
    torch.manual_seed(1)
    layer = nn.Linear(256, 512)
    x = torch.randn(3, 256, requires_grad=True)
    layer(x).square().sum().backward()
    ref = layer.weight.grad.clone(), x.grad.clone()
    layer.weight.grad, x.grad = None, None
    use_skinny_products(layer)
    layer(x).square().sum().backward()
    assert torch.allclose(layer.weight.grad, ref[0], atol=1e-4) and torch.allclose(x.grad, ref[1], atol=1e-4)


def test_swapping_keeps_weights_and_peft_layers():
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2))
    model = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"]))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plain = sum(type(m) is nn.Linear for m in model.modules())
    assert use_skinny_products(model) == plain > 0
    assert not any(type(m) is nn.Linear for m in model.modules())
    assert all(isinstance(m, nn.Linear) for m in model.modules() if type(m) is SkinnyLinear)
    lora = [m for m in model.modules() if type(m).__module__.startswith("peft.")]
    assert lora and not any(isinstance(m, SkinnyLinear) for m in lora)  # peft's own layers keep their class
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert use_skinny_products(model, on=False) == plain
    assert sum(type(m) is nn.Linear for m in model.modules()) == plain


def test_a_loaded_set_decodes_the_same(tiny_models, monkeypatch):
    """With every model swapped (as ``load_model_set`` does where the path pays), the engine gives the same
    tokens and per-token values (within 1e-5) as with nn.Linear. The tiny models' matrices are small, so
    the size floor is lowered."""
    models = {id(m.model): m.model for m in tiny_models.members()}.values()
    swapped = [model for model in models if any(type(m) is SkinnyLinear for m in model.modules())]
    monkeypatch.setattr(skinny, "MIN_WEIGHT", 0)
    rows = [RowSpec("How do I bake bread?", {"helpfulness": 1.0, "harmlessness": 0.5}),
            RowSpec("How do I bake bread?", method="base"),
            RowSpec("Tell me a joke", {"harmlessness": 2.0}, "best_of_n", n=3)]
    cfg = DecodingConfig(temperature=0.9, top_p=0.95, max_new_tokens=10, seed=4, trace=True, stop_at_eos=False)
    try:
        for model in models:
            use_skinny_products(model)
        fast = GenARMEngine(tiny_models, prompt_cache_mb=0).generate(rows, cfg)
        for model in models:
            use_skinny_products(model, on=False)
        plain = GenARMEngine(tiny_models, prompt_cache_mb=0).generate(rows, cfg)
    finally:
        for model in swapped:  # as the fixture loaded them
            use_skinny_products(model)
    assert_same_decoding(fast, plain, 1e-5)


def test_the_path_is_taken_only_where_it_pays(tiny_set, monkeypatch):
    """``load_model_set`` swaps a set's models only where W @ x^T pays, measured once per process
    (F.linear's time ÷ its), unless $GENARM_SKINNY forces it either way."""
    from genarm_core.models.loading import load_model_set

    gain = skinny.measured_gain()
    assert gain > 0 and skinny.measured_gain() == gain  # measured once
    monkeypatch.delenv("GENARM_SKINNY", raising=False)
    assert skinny.pays() == (gain > 1.1)
    for forced, swapped in (("0", False), ("1", True)):
        monkeypatch.setenv("GENARM_SKINNY", forced)
        assert skinny.pays() == swapped
        members = load_model_set(tiny_set).members()
        assert all(any(type(m) is SkinnyLinear for m in x.model.modules()) == swapped for x in members)
