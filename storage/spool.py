"""The generation spool: generations the database refused, kept on disk until it takes them.

When a write fails (the database unreachable, locked past its timeout, full), the dashboard
appends the generations to a JSON-lines file in its data folder and fsyncs it before it answers,
so a pair the page showed survives a crash of the server. The spool is written back (``drain``)
before the next generation is stored, when the server starts and when it stops. Each record
carries a ``uid`` made before its first write attempt, and ``Store.add_generations`` stores a uid
once: a record that reached the database after all (its answer lost) is not stored twice, even
when the spool is written back again after a crash between the store and the spool's truncation.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

ENV_VAR = "GENARM_DATA_DIR"


def data_dir() -> Path:
    """``$GENARM_DATA_DIR``, else the user data folder (where the default SQLite database lives)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("genarm", appauthor=False))


def spool_path(db_url: str, folder: Path | None = None) -> Path:
    """One spool per database (a hash of its URL, password hidden), so two databases never mix."""
    digest = hashlib.sha256(db_url.encode()).hexdigest()[:16]
    return (folder or data_dir()) / "spool" / f"generations-{digest}.jsonl"


class Spool:
    """A JSON-lines file of ``{"record": ..., "scores": {...}}`` entries; thread-safe within a process."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, records: Sequence[dict[str, Any]], scores: Sequence[dict[str, Any]]) -> None:
        """Add entries and make them durable (fsync of the file, and of its folder when the file is new)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            new = not self.path.exists()
            with self.path.open("a", encoding="utf-8") as fh:
                for rec, sc in zip(records, scores):
                    fh.write(json.dumps({"record": rec, "scores": sc}, ensure_ascii=False, default=str) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            if new:
                _fsync_dir(self.path.parent)

    def entries(self) -> list[dict[str, Any]]:
        """What is waiting; a torn last line (the process died mid-write) is ignored."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def __len__(self) -> int:
        return len(self.entries())

    def drain(self, store_fn: Callable[[list[dict[str, Any]], list[dict[str, Any]]], list[int]]) -> int:
        """Write every waiting entry with ``store_fn(records, scores)`` (one transaction), then empty
        the spool; returns how many were written. ``store_fn``'s error propagates and keeps the spool."""
        with self._lock:
            entries = self.entries()
            if not entries:
                return 0
            store_fn([e["record"] for e in entries], [e.get("scores") or {} for e in entries])
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text("", encoding="utf-8")
            os.replace(tmp, self.path)  # emptied in one step; uids make a repeat harmless if we die before this
            return len(entries)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
