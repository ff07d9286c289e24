"""Behaviour does not change by accident: every method's tokens for fixed prompts and seeds equal the
recorded ones (``tests/golden.py``), on the tiny models and, in the slow tier, on the real set."""

from __future__ import annotations

import json
import os

import pytest

from . import golden


def test_every_method_gives_the_recorded_tokens_on_the_tiny_models(rm_models):
    from genarm_core.decoding.engine import GenARMEngine

    cases = golden.record(GenARMEngine(rm_models), golden.TINY_PROMPTS)
    if os.environ.get("GENARM_RECORD_GOLDEN"):
        golden.TINY_FILE.write_text(golden.dump(cases) + "\n")
    recorded = json.loads(golden.TINY_FILE.read_text())
    assert len(cases) == len(recorded) == len(golden.DECODINGS) * len(golden.SETTINGS) * len(golden.TINY_PROMPTS)
    for got, want in zip(cases, recorded):
        assert got == want, f"{want['method']} {want['weights']} {want['decoding']}: tokens changed"
    assert len({json.dumps(c["tokens"]) for c in cases}) > len(cases) // 3  # the cases really differ


@pytest.mark.slow
def test_every_method_gives_the_recorded_tokens_on_the_real_set(smollm2_set):
    from genarm_core.decoding.engine import GenARMEngine
    from genarm_core.models.loading import load_model_set
    from genarm_core.smollm2.build import SmolSettings

    recorded = json.loads(golden.SMOLLM2_FILE.read_text())
    assert recorded["build_key"] == SmolSettings().key(), (
        "the smollm2 build changed (new ARMs): re-record its golden tokens with `python -m tests.golden --smollm2`")
    cases = golden.record(GenARMEngine(load_model_set(smollm2_set)), golden.SMOLLM2_PROMPTS, golden.SMOLLM2_SETTINGS)
    for got, want in zip(cases, recorded["cases"]):
        assert got == want, f"{want['method']} {want['weights']} {want['decoding']}: tokens changed"
    assert len(cases) == len(recorded["cases"])


def test_the_readme_lists_every_method_of_the_registry():
    """The README's table of methods is the registry's own (``python -m genarm_core.decoding.methods``)."""
    from pathlib import Path

    from genarm_core.decoding.methods import METHODS, markdown_table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme
    assert all(f"| `{name}` |" in markdown_table() for name in METHODS)


def test_the_readmes_python_api_example_runs(tiny_set, capsys):
    """The README's Python API section, run as written (its model-set file swapped for the tiny set's)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Python API"):readme.index("## Training an ARM")]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1).replace('"models.yaml"', repr(str(tiny_set)))
    scope: dict = {}
    exec(compile(code, "README.md (Python API)", "exec"), scope)  # noqa: S102 - the project's own documentation
    assert len(scope["results"]) == 2 and scope["results"][0].trace and capsys.readouterr().out
