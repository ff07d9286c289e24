"""The shared trunk: LoRA ARMs on the top layers reuse the base's bottom layers, with the same numbers."""

from __future__ import annotations

import pytest

from genarm_core.models.config import DecodingConfig
from genarm_core.decoding.engine import GenARMEngine, RowSpec

from .conftest import assert_same_decoding, write_layered_set as _write_set


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def layered(request, tmp_path_factory, tiny_tokenizer):
    from genarm_core.models.loading import load_model_set

    return load_model_set(_write_set(tmp_path_factory.mktemp(f"trunk_{request.param}"), tiny_tokenizer, request.param))


ROWS = [RowSpec("How do I bake bread?", {"helpfulness": 1.0, "harmlessness": 0.5, "honesty": -0.5}),
        RowSpec("How do I bake bread?", method="base"),
        RowSpec("Tell me a joke about a very lazy dog, please.", {"harmlessness": 2.0}, "best_of_n", n=3),
        RowSpec("Hi", {"helpfulness": 1.5})]


def test_adapter_starts_and_layer_rows(layered):
    from genarm_core.decoding.trunk import adapter_starts

    assert adapter_starts(layered.base.model) == {"helpfulness": 4, "harmlessness": 2, "honesty": 0}
    engine = GenARMEngine(layered)
    engine.generate(ROWS[:2], DecodingConfig(max_new_tokens=2))
    # GenARM row: layers 0-1 trunk + honesty, 2-3 + harmlessness, 4-5 + helpfulness = 2·2 + 3·2 + 4·2;
    # the base-only row: its trunk through all 6 layers. Stacked: 4 + 1 rows × 6 layers.
    assert engine.last_decode["layer_rows_per_step"] == 18 + 6
    assert engine.last_decode["stacked_layer_rows_per_step"] == 30


@pytest.mark.parametrize("temperature", [0.9, 0.0])
def test_the_trunk_gives_the_stacked_rows_numbers(layered, temperature):
    """Same tokens, same per-token log-probs (within 1e-5, float32) as one stacked row per member,
    with rows of different prompt lengths (left padding), Best-of-N, and ARMs beside some rows only."""
    cfg = DecodingConfig(temperature=temperature, top_p=0.95, max_new_tokens=12, seed=3, trace=True, stop_at_eos=False)
    trunk, stacked = GenARMEngine(layered), GenARMEngine(layered, shared_trunk=False)
    a, b = trunk.generate(ROWS, cfg), stacked.generate(ROWS, cfg)
    assert trunk.last_decode["layer_rows_per_step"] < stacked.last_decode["layer_rows_per_step"]
    assert stacked.last_decode["layer_rows_per_step"] == stacked.last_decode["stacked_layer_rows_per_step"]
    assert_same_decoding(a, b, 1e-5)
    for ra, rb in zip(a, b):
        assert ra.scores == pytest.approx(rb.scores, abs=1e-5)


def test_no_trunk_where_nothing_is_shared(tmp_path, tiny_tokenizer, tiny_models):
    """LoRA on the head, members reading the prompt differently, or a model whose forward is not
    reproduced: the stacked rows, and still the same results."""
    from genarm_core.models.loading import load_model_set
    from genarm_core.decoding.runner import TrunkForwardGroup
    from genarm_core.decoding.trunk import adapter_starts, decoder_of, trunk_plan

    head = load_model_set(_write_set(tmp_path / "head", tiny_tokenizer, "llama", extra_modules=("lm_head",)))
    assert adapter_starts(head.base.model) is None
    template = load_model_set(_write_set(tmp_path / "fmt", tiny_tokenizer, "llama",
                                         formats={"helpfulness": {"template": "Human: {prompt} Assistant:"}}))
    members = template.members()
    ids = {m.name: [m.encode_prompt("Hi")] for m in members}
    rows = {m.name: [0] for m in members}
    assert trunk_plan(members, ids, rows, 1) is None  # helpfulness reads another prompt
    assert trunk_plan([m for m in members if m.name != "helpfulness"],
                      {n: v for n, v in ids.items() if n != "helpfulness"}, rows, 1) is not None
    assert decoder_of(tiny_models.base.model) is None  # separate models: no PeftModel
    seen = []
    init = TrunkForwardGroup.__init__

    def spy(self, *a, **kw):
        seen.append(True)
        init(self, *a, **kw)

    TrunkForwardGroup.__init__ = spy
    try:
        GenARMEngine(head).generate(ROWS[:1], DecodingConfig(max_new_tokens=2))
    finally:
        TrunkForwardGroup.__init__ = init
    assert not seen


@pytest.mark.parametrize("which", ["shared LoRA base", "separate models"])
def test_a_regenerated_prompt_reuses_its_kv_cache(which, layered, tiny_models):
    """Moving a slider regenerates the same prompt: its prefill comes from the kept KV caches, by
    (model, member, prompt ids), whatever else the batch holds, with the same numbers as a cold run."""
    models = layered if which == "shared LoRA base" else tiny_models
    names = models.objectives
    prompt = "How do I bake bread?"
    cfg = DecodingConfig(temperature=0.8, max_new_tokens=8, seed=2, trace=True, stop_at_eos=False)
    warm, cold = GenARMEngine(models), GenARMEngine(models, prompt_cache_mb=0)
    warm.generate([RowSpec(prompt, {names[0]: 1.0, names[1]: 0.5}), RowSpec(prompt, method="base")], cfg)
    assert warm.last_decode["prompt_cache_hits"] == 0 and len(warm.prompt_cache) > 0
    moved = [RowSpec(prompt, {names[0]: 0.3, names[1]: 1.5}), RowSpec(prompt, method="base")]
    assert_same_decoding(warm.generate(moved, cfg), cold.generate(moved, cfg), 1e-5)
    assert warm.last_decode["prompt_cache_hits"] == warm.prompt_cache.hits >= 1
    alone = [RowSpec(prompt, {names[0]: 2.0})]  # another layout of what is held
    assert_same_decoding(warm.generate(alone, cfg), cold.generate(alone, cfg), 1e-5)
    assert warm.last_decode["prompt_cache_hits"] >= 1
    warm.shared_trunk = False  # stacked rows read what a trunk left (a layer below an adapter: the base's)
    assert_same_decoding(warm.generate(moved, cfg), cold.generate(moved, cfg), 1e-5)
    assert warm.last_decode["prompt_cache_hits"] >= 1
    other = [RowSpec("Tell me a joke.", {names[0]: 1.0}), RowSpec(prompt, method="base")]
    assert_same_decoding(warm.generate(other, cfg), cold.generate(other, cfg), 1e-5)  # one new prompt in the group: a prefill
    assert warm.last_decode["prompt_cache_hits"] == 0
    warm.shared_trunk = True
    again = [RowSpec("Tell me a joke.", {names[0]: -1.0}), RowSpec(prompt, method="base")]  # prompts of two lengths
    assert_same_decoding(warm.generate(again, cfg), cold.generate(again, cfg), 1e-5)
    assert warm.last_decode["prompt_cache_hits"] >= 1
    warm.release_static()
    assert len(warm.prompt_cache) == 0 and warm.prompt_cache.bytes == 0


def test_the_prompt_cache_is_bounded(layered):
    engine = GenARMEngine(layered, prompt_cache_mb=0.05)
    limit = engine.prompt_cache.max_bytes
    for i in range(6):
        engine.generate([RowSpec(f"Prompt number {i} asks about bread", {"helpfulness": 1.0})], DecodingConfig(max_new_tokens=2))
        assert 0 < engine.prompt_cache.bytes <= limit
    assert len(engine.prompt_cache) < 12  # 6 prompts × (base, helpfulness): the oldest went
