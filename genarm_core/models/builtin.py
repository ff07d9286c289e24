"""Built-in model sets, named beside model-set files: ``--models smollm2``, ``--models demo``.

- ``smollm2``: SmolLM2-135M-Instruct, a real pretrained chat model (Apache-2.0), with a
  helpfulness and a harmlessness LoRA ARM trained on its own answers (``genarm_core.smollm2``).
- ``demo``: the toy world, a 1M-parameter model and two ARMs built from generated dialogues
  (``genarm_core.demo``): seconds to load, no network at all.

Each is built on first use and cached in the user cache folder.
"""

from __future__ import annotations

from pathlib import Path

from genarm_core.models.config import ConfigError

BUILTIN = {
    "smollm2": "SmolLM2-135M-Instruct with helpfulness and harmlessness ARMs (a real model; about 11 min to build once on 2 CPU cores, its reward model included)",
    "demo": "the toy world: a tiny model and two ARMs trained on generated dialogues (about 1 min to build once)",
}
#: What ``python app.py`` and ``genarm generate`` use without ``--models``.
DEFAULT = "smollm2"


def is_builtin(name: str) -> bool:
    return name in BUILTIN


def builtin_path(name: str, cache_dir: str | Path | None = None, progress: bool = True) -> Path:
    """The model-set file of a built-in set, built first if it is not cached."""
    if name == "smollm2":
        from genarm_core.smollm2.build import ensure_smollm2

        return ensure_smollm2(cache_dir=cache_dir, progress=progress)
    if name == "demo":
        from genarm_core.demo.build import ensure_demo

        return ensure_demo(cache_dir=cache_dir, progress=progress)
    raise ConfigError(f"no built-in model set {name!r}; built-in: {', '.join(BUILTIN)}")


def resolve_model_set(name_or_path: str | Path, cache_dir: str | Path | None = None, progress: bool = True) -> Path:
    """A model-set file from a built-in name or a path.

    Raises:
        ConfigError: neither a built-in name nor an existing file (the message lists the names).
    """
    text = str(name_or_path)
    if is_builtin(text):
        return builtin_path(text, cache_dir, progress)
    path = Path(text).expanduser()
    if not path.is_file():
        raise ConfigError(f"model set not found: {text!r} is neither a model-set file nor a built-in name "
                          f"({', '.join(BUILTIN)})")
    return path


def evaluation_prompts(models_yaml: str | Path, n: int, seed: int = 0) -> list[str] | None:
    """Up to ``n`` held-out prompts (half benign, half harmful) when the set is a built-in one that
    ships them (the demo's held-out families, smollm2's hand-written prompts); None otherwise."""
    records = evaluation_records(models_yaml, n, seed)
    return None if records is None else [r["prompt"] for r in records]


def evaluation_records(models_yaml: str | Path, n: int, seed: int = 0) -> list[dict] | None:
    """The same prompts as records with their fields (``kind``, ``subject``, ...), which the set's
    rule judges read."""
    from genarm_core.models.prompts import sample_per_kind

    folder = Path(models_yaml).parent
    if (folder / "heldout.json").exists():
        from genarm_core.demo.build import sample_held_out

        return [{"prompt": p.text, "kind": p.kind, "family": p.family, "task": p.task, "subject": p.subject}
                for p in sample_held_out(models_yaml, max(1, n // 2), seed)]
    if (folder / "openings.json").exists():  # the smollm2 build
        from genarm_core.smollm2.heldout import eval_prompts

        records = [p.record() for p in eval_prompts()]
        return sample_per_kind(records, max(1, n // len({r["kind"] for r in records})), seed)
    return None
