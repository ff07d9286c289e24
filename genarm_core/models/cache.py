"""The user cache: where built-in model sets are built once and found again.

``$GENARM_CACHE_DIR`` overrides the platform's user cache folder. A build runs in a temporary
folder beside its final place and is renamed into place only when complete (a ``COMPLETE``
marker inside), so an interrupted build never leaves a half-built set where a later run would
take it for a finished one; a lock file beside it makes a second process wait for the first
build instead of building the same thing again.
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

CACHE_ENV = "GENARM_CACHE_DIR"


def cache_root(cache_dir: str | Path | None = None) -> Path:
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("genarm", appauthor=False))


def is_complete(folder: Path) -> bool:
    return (folder / "COMPLETE").exists()


def build_atomically(final: Path, build: Callable[[Path], object], force: bool = False) -> Path:
    """Run ``build(tmp)`` into a temporary sibling of ``final`` and rename it into place.

    Returns ``final`` at once when it is complete already (unless ``force``).
    """
    if is_complete(final) and not force:
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(final):  # a second process (a worker, a test) waits for the first's build, then uses it
        if is_complete(final) and not force:
            return final
        return _build(final, build)


@contextmanager
def _build_lock(final: Path):
    """An exclusive lock beside ``final`` for the length of a build (released if the process dies)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: builds may race; each still lands atomically
        yield
        return
    with open(final.parent / f"{final.name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build(final: Path, build: Callable[[Path], object]) -> Path:
    tmp = final.parent / f"{final.name}.building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        build(tmp)
        (tmp / "COMPLETE").write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)  # atomic: a half-built folder is never at the final path
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def ensure_judges(models_yaml: Path, judges: dict) -> None:
    """A built-in set's ``judges:`` section, written into its cached model-set file when it differs
    (sets built before the section existed gain it; the rest of the file is unchanged)."""
    import yaml

    data = yaml.safe_load(models_yaml.read_text(encoding="utf-8"))
    if data.get("judges") != judges:
        data["judges"] = judges
        tmp = models_yaml.with_suffix(".yaml.tmp")
        tmp.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        tmp.replace(models_yaml)  # readers see the old file or the new one, never half of one
