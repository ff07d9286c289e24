"""Loading model sets: schema, families, vocabularies, and every bad input's message."""

import gc
import weakref

import pytest
import yaml

from genarm_core.models.config import ConfigError, ModelSetConfig
from genarm_core.decoding.engine import GenARMEngine
from genarm_core.models.config import DecodingConfig, RowSpec
from genarm_core.models.loading import ModelSetError, load_model_set
from genarm_core.models.tiny import make_model, save, train_bpe_tokenizer, write_model_set

from .conftest import assert_same_decoding, write_lora_set


def write(tmp_path, text, name="m.yaml"):
    f = tmp_path / name
    f.write_text(text)
    return f


def test_minimal_schema_loads_with_relative_paths(tiny_models):
    assert tiny_models.objectives == ["helpfulness", "harmlessness"]
    assert tiny_models.vocab_size == len(tiny_models.tokenizer)
    # The harmlessness ARM is smaller than the base (weak-to-strong works).
    assert tiny_models.arms["harmlessness"].model.config.hidden_size < tiny_models.base.model.config.hidden_size


def test_optional_keys_are_parsed(tmp_path, tiny_set):
    root = tiny_set.parent
    f = write(tmp_path, f"""
name: demo
base: {{path: {root/'base'}, dtype: float32, device: cpu, template: "Q: {{prompt}} A:"}}
objectives:
  helpfulness: {{path: {root/'help'}, default_weight: 0.5, min_weight: -1, max_weight: 3, description: be useful}}
defaults: {{temperature: 0.7, max_new_tokens: 32}}
max_new_tokens_cap: 100
""")
    cfg = ModelSetConfig.from_file(f)
    assert cfg.name == "demo" and cfg.base.template == "Q: {prompt} A:"
    assert cfg.objectives[0].default_weight == 0.5 and cfg.objectives[0].max_weight == 3
    assert cfg.defaults.temperature == 0.7 and cfg.max_new_tokens_cap == 100


@pytest.mark.parametrize("text, message", [
    ("base: [unclosed", "malformed YAML"),
    ("base: {path: x}\nobjectives: {}\nextra: 1\n", "unknown key"),
    ("objectives: {}\n", "missing 'base'"),
    ("base: {path: x}\nobjectives:\n  helpfulness:\n", "objective 'helpfulness' has no path"),
    ("base: {path: x}\nobjectives:\n  helpfulness: {weight: 1}\n", "unknown key(s) ['weight'] in 'objectives.helpfulness'"),
    ("base: {path: x, dtype: float8}\n", "dtype"),
    ("base: {path: x}\nobjectives:\n  h: {path: y, default_weight: 5, max_weight: 2}\n", "default_weight"),
    ("base: {path: x, template: 'no placeholder'}\n", "{prompt}"),
    ("base: {path: x}\ndefaults: {temperature: -1}\n", "temperature"),
])
def test_bad_files_name_the_field_and_the_file(tmp_path, text, message):
    f = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        ModelSetConfig.from_file(f)
    assert message in str(err.value) and str(f) in str(err.value)


def test_missing_file_and_missing_model_path(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        ModelSetConfig.from_file(tmp_path / "nope.yaml")
    f = write(tmp_path, "base: {path: ./nowhere}\nobjectives: {}\n")
    with pytest.raises(ModelSetError, match="does not exist"):
        load_model_set(f)


def test_non_causal_model_is_refused(tmp_path, tiny_set):
    from transformers import T5Config, T5ForConditionalGeneration

    t5 = T5ForConditionalGeneration(T5Config(vocab_size=64, d_model=16, d_ff=32, num_layers=1, num_heads=2, d_kv=8))
    t5.save_pretrained(tmp_path / "t5")
    tok = load_model_set(tiny_set).tokenizer
    tok.save_pretrained(tmp_path / "t5")
    f = write_model_set(tmp_path / "m.yaml", tiny_set.parent / "base", {"helpfulness": tmp_path / "t5"})
    with pytest.raises(ModelSetError, match="not a causal language model"):
        load_model_set(f)


def test_mismatched_tokenizers_are_refused_naming_a_token(tmp_path, tiny_set):
    other_tok = train_bpe_tokenizer(["completely different text zzz qqq"] * 5, vocab_size=300)
    save(make_model(other_tok, hidden=16, layers=1), other_tok, tmp_path / "other")
    f = write_model_set(tmp_path / "m.yaml", tiny_set.parent / "base", {"helpfulness": tmp_path / "other"})
    with pytest.raises(ModelSetError, match=r"token '.+' (has id|\(id)"):
        load_model_set(f)


def test_padding_rows_and_an_added_pad_token_are_sliced(tmp_path, tiny_set, tiny_tokenizer):
    V = len(tiny_tokenizer)
    # ARM 1: embedding padded to a multiple of 64 rows. ARM 2: tokenizer with one extra added token.
    save(make_model(tiny_tokenizer, hidden=16, layers=1, vocab_rows=V + 64 - V % 64), tiny_tokenizer, tmp_path / "padded")
    tok2 = train_bpe_tokenizer(__import__("tests.conftest", fromlist=["CORPUS"]).CORPUS, vocab_size=320)
    tok2.add_special_tokens({"additional_special_tokens": ["<|extra|>"]})
    save(make_model(tok2, hidden=16, layers=1), tok2, tmp_path / "extra")
    f = write_model_set(tmp_path / "m.yaml", tiny_set.parent / "base", {"a": tmp_path / "padded", "b": tmp_path / "extra"})
    ms = load_model_set(f)
    assert ms.vocab_size == V
    res = GenARMEngine(ms).generate([RowSpec("Hello", {"a": 1.0, "b": 1.0})], DecodingConfig(max_new_tokens=5, trace=True))[0]
    assert all(t < V for t in res.token_ids)


def full_logprobs(lm, ids, V):
    """log_softmax of the last position, from a full forward of one unpadded row (no cache)."""
    import torch

    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0, -1, :V]
    return torch.log_softmax(logits.float(), -1)


@pytest.mark.parametrize("arch", ["gpt2", "qwen2"])
def test_other_families_decode(tmp_path, tiny_tokenizer, arch):
    """Each family decodes its own numbers: rows of two prompt lengths in one batch (left padding,
    GPT-2's learned positions) give, token by token, what one unpadded full forward per step gives,
    and greedy picks the top token of GenARM's distribution."""
    import torch

    from genarm_core.decoding.math import combine_logprobs, restrict_logprobs
    from genarm_core.decoding.tokens import TokenRules

    base = save(make_model(tiny_tokenizer, arch=arch, hidden=32, layers=1), tiny_tokenizer, tmp_path / "b")
    arm = save(make_model(tiny_tokenizer, arch=arch, hidden=32, layers=1, seed=3), tiny_tokenizer, tmp_path / "a")
    ms = load_model_set(write_model_set(tmp_path / "m.yaml", base, {"helpfulness": arm}))
    engine = GenARMEngine(ms)
    rows = [RowSpec("Hello there", {"helpfulness": 1.0}), RowSpec("Hi")]
    res = engine.generate(rows, DecodingConfig(temperature=0, max_new_tokens=6, trace=True, stop_at_eos=False))
    assert [len(r.token_ids) for r in res] == [6, 6]
    V = ms.vocab_size
    rules = TokenRules.for_tokenizer(ms.tokenizer, V, engine.eos_ids)
    arm_lm = ms.arms["helpfulness"]
    for spec, r in zip(rows, res):
        assert [step["id"] for step in r.trace] == r.token_ids
        base_ids, arm_ids = ms.base.encode_prompt(spec.prompt), arm_lm.encode_prompt(spec.prompt)
        state = torch.zeros(1, dtype=torch.long)
        for t, (tok, step) in enumerate(zip(r.token_ids, r.trace)):
            prefix = r.token_ids[:t]
            lp_base = restrict_logprobs(full_logprobs(ms.base, base_ids + prefix, V).unsqueeze(0), rules.mask(state))
            lp_arm = full_logprobs(arm_lm, arm_ids + prefix, V)
            combined = combine_logprobs(lp_base, lp_arm.reshape(1, 1, V),
                                        torch.tensor([[spec.weights.get("helpfulness", 0.0)]]), 1.0)[0]
            where = f"{arch}, {spec.prompt!r}, step {t}"
            assert step["base_logprob"] == pytest.approx(lp_base[0, tok].item(), abs=1e-4), where
            assert step["combined_logprob"] == pytest.approx(combined[tok].item(), abs=1e-4), where
            if "helpfulness" in step["arm_logprobs"]:
                assert step["arm_logprobs"]["helpfulness"] == pytest.approx(lp_arm[tok].item(), abs=1e-4), where
            assert combined[tok].item() >= combined.max().item() - 1e-4, where  # greedy: the top token
            state = rules.advance(state, torch.tensor([tok]))
    assert "helpfulness" in res[0].trace[0]["arm_logprobs"]  # the steering ARM's numbers were checked too


@pytest.fixture
def loaded_refs(monkeypatch):
    """Weak references to every model the loader creates (to check a failed load frees them)."""
    import genarm_core.models.loading as loading

    refs = []
    real = loading._load_one

    def spy(name, spec, where):
        lm = real(name, spec, where)
        refs.append(weakref.ref(lm.model))
        return lm

    monkeypatch.setattr(loading, "_load_one", spy)
    return refs


def test_failed_load_keeps_nothing_in_memory(tmp_path, tiny_set, loaded_refs):
    import genarm_core.models.loading as loading

    f = write(tmp_path, f"base: {{path: {tiny_set.parent / 'base'}}}\nobjectives:\n  h: {{path: {tmp_path / 'missing'}}}\n")
    with pytest.raises(ModelSetError):
        loading.load_model_set(f)
    gc.collect()
    assert loaded_refs and all(r() is None for r in loaded_refs)


def test_yaml_roundtrip_to_dict_is_json(tiny_models):
    import json

    json.dumps(tiny_models.config.to_dict())
    assert yaml.safe_load(yaml.safe_dump(tiny_models.config.to_dict()))["objectives"]["helpfulness"]["default_weight"] == 1.0


def test_lora_arms_share_one_base_and_match_merged_copies(tmp_path, tiny_set):
    """The paper's setting: every ARM a LoRA adapter of the base. One copy of the weights, rows
    batched with per-row adapters, and the same numbers as merging each adapter into its own copy."""
    qv = {"target_modules": ["q_proj", "v_proj"]}
    f = write_lora_set(tmp_path, tiny_set.parent / "base", {"helpfulness": qv, "harmlessness": qv}, name="m.yaml")
    shared, merged = load_model_set(f), load_model_set(f, share_lora_base=False)
    assert shared.arms["helpfulness"].model is shared.base.model is shared.arms["harmlessness"].model
    assert merged.arms["helpfulness"].model is not merged.base.model
    cfg = DecodingConfig(temperature=0.8, max_new_tokens=10, seed=1, trace=True, stop_at_eos=False)
    rows = [RowSpec("Hello there", {"helpfulness": 1.0, "harmlessness": -0.5}), RowSpec("Tell me a joke.", method="base")]
    a, b = GenARMEngine(shared).generate(rows, cfg), GenARMEngine(merged).generate(rows, cfg)
    assert_same_decoding(a, b, 1e-4)
    from genarm_core.models.scoring import score_sequences
    s1 = score_sequences(shared, ["Hello there"], [a[0].token_ids], include_base=True)
    s2 = score_sequences(merged, ["Hello there"], [a[0].token_ids], include_base=True)
    assert s1["base"][0] == pytest.approx(s2["base"][0], abs=1e-3)
    assert s1["helpfulness"][0] == pytest.approx(s2["helpfulness"][0], abs=1e-3)


def test_failed_shared_lora_load_keeps_nothing(tmp_path, tiny_set, loaded_refs):
    import genarm_core.models.loading as loading

    base = tiny_set.parent / "base"
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "adapter_config.json").write_text("{not json")
    f = write_model_set(tmp_path / "m.yaml", base, {"h": {"path": str(base), "adapter": str(tmp_path / "broken")}})
    with pytest.raises(ModelSetError, match="LoRA adapters"):
        loading.load_model_set(f)
    gc.collect()
    assert loaded_refs and all(r() is None for r in loaded_refs)
