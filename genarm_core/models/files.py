"""The leaf every config reader stands on: ``ConfigError``, checked numbers, YAML files and the
paths written in them. Imports nothing of the project, so the model-set file, study files and
judge entries can all use it without importing each other."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A setting is invalid. The message names the field (and the file, for model-set files)."""


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


def _finite_number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    return float(value)


def read_yaml_file(path: Path, what: str) -> Any:
    """A YAML file's data; ``ConfigError`` naming the file when it is missing or malformed."""
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: malformed YAML: {exc}") from None


def resolve_path(p: str | None, root: Path | None) -> str | None:
    """A path written in a file, against the file's folder: local relative folders resolve there;
    anything else (a hub id) is kept as written."""
    if p is None or root is None:
        return p
    candidate = (root / p).expanduser()
    return str(candidate.resolve()) if (p.startswith((".", "/", "~")) or candidate.exists()) else p

