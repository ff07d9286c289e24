"""Jobs in the database: studies queued by people (the Studies tab, ``genarm study run --queue``, the
API) and run by worker processes (``genarm worker``). A mixin of ``Store``.

A worker claims the oldest queued job in one transaction (``SELECT ... FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so workers on several machines never take the same job; SQLite's ``BEGIN IMMEDIATE``
serialises claims on one machine), beats a heartbeat while it runs, and marks it done, failed or
cancelled. A running job whose heartbeat is older than ``stale_s`` belongs to a worker that died: the
next claim takes it over, and the study runner resumes from the cells already stored.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pandas as pd
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from .models import JobRow
from .values import clean_json

STATUSES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")


def _job(r: JobRow) -> dict[str, Any]:
    return {"id": r.id, "kind": r.kind, "name": r.name, "owner": r.owner, "spec": dict(r.spec), "status": r.status,
            "progress": r.progress, "message": r.message, "worker": r.worker, "attempts": r.attempts,
            "cancel_requested": r.cancel_requested, "study_id": r.study_id, "created_at": r.created_at,
            "started_at": r.started_at, "heartbeat_at": r.heartbeat_at, "finished_at": r.finished_at}


class JobTables:
    """Job reads and writes; ``Store`` provides ``_session``."""

    def _session(self, write: bool = False) -> Iterator[Session]:  # provided by Store
        raise NotImplementedError

    def enqueue_job(self, kind: str, name: str, owner: str, spec: dict[str, Any]) -> int:
        with self._session(write=True) as s:
            row = JobRow(kind=kind, name=name[:200], owner=owner, spec=clean_json(spec), status="queued", progress=0.0,
                         message="", attempts=0, cancel_requested=False)
            s.add(row)
            s.flush()
            return row.id

    def claim_job(self, worker: str, stale_s: float = 60.0) -> dict[str, Any] | None:
        """The oldest job that is queued (or running with a heartbeat older than ``stale_s``), now this
        worker's; None when there is none."""
        now = datetime.now(timezone.utc)
        cutoff = now - timedelta(seconds=stale_s)
        with self._session(write=True) as s:
            q = (select(JobRow).where(or_(JobRow.status == "queued",
                                          and_(JobRow.status == "running", JobRow.heartbeat_at < cutoff)))
                 .order_by(JobRow.id).limit(1).with_for_update(skip_locked=True))
            row = s.scalar(q)
            if row is None:
                return None
            took_over = row.status == "running"
            row.status, row.worker, row.heartbeat_at = "running", worker[:200], now
            row.started_at = row.started_at or now
            row.attempts += 1
            if took_over:
                row.message = f"taken over by {worker} (the previous worker stopped beating); resuming"
            return _job(row)

    def beat(self, job_id: int, worker: str, progress: float | None = None, message: str | None = None) -> bool:
        """The worker is alive (and how far it is); returns whether the job was asked to stop. A worker
        that lost the job to another (it was too slow to beat) is told to stop too."""
        with self._session(write=True) as s:
            row = s.get(JobRow, job_id)
            if row is None or row.worker != worker or row.status != "running":
                return True
            row.heartbeat_at = datetime.now(timezone.utc)
            if progress is not None:
                row.progress = float(progress)
            if message is not None:
                row.message = message
            return bool(row.cancel_requested)

    def finish_job(self, job_id: int, worker: str, status: str, message: str = "", study_id: int | None = None) -> None:
        if status not in FINISHED:
            raise ValueError(f"a job finishes as one of {FINISHED}, got {status!r}")
        with self._session(write=True) as s:
            row = s.get(JobRow, job_id)
            if row is None or row.worker != worker:
                return  # another worker took it over meanwhile: its outcome is that worker's to write
            row.status, row.message, row.finished_at = status, message, datetime.now(timezone.utc)
            if status == "done":
                row.progress = 1.0
            if study_id is not None:
                row.study_id = study_id

    def release_job(self, job_id: int, worker: str, message: str) -> None:
        """A worker that stops (SIGTERM) hands its running job back to the queue; the next worker resumes it."""
        with self._session(write=True) as s:
            row = s.get(JobRow, job_id)
            if row is not None and row.worker == worker and row.status == "running":
                row.status, row.message, row.heartbeat_at = "queued", message, None

    def set_job_study(self, job_id: int, study_id: int) -> None:
        with self._session(write=True) as s:
            row = s.get(JobRow, job_id)
            if row is not None:
                row.study_id = study_id

    def cancel_job(self, job_id: int) -> str:
        """Ask a job to stop: a queued one is cancelled at once, a running one stops after its batch in
        flight. Returns its status after the request."""
        with self._session(write=True) as s:
            row = s.get(JobRow, job_id)
            if row is None:
                raise ValueError(f"no job #{job_id}")
            if row.status == "queued":
                row.status, row.finished_at, row.message = "cancelled", datetime.now(timezone.utc), "cancelled before it ran"
            elif row.status == "running":
                row.cancel_requested = True
            return row.status

    def job(self, job_id: int) -> dict[str, Any] | None:
        with self._session() as s:
            row = s.get(JobRow, job_id)
            return None if row is None else _job(row)

    def jobs_frame(self, owner: str | None = None, limit: int = 100) -> pd.DataFrame:
        """The newest jobs first (an owner's only, when given): id, name, owner, status, progress, message,
        study_id, created_at, started_at, finished_at, worker, attempts."""
        cols = ["id", "name", "owner", "status", "progress", "message", "study_id", "created_at", "started_at",
                "finished_at", "worker", "attempts"]
        with self._session() as s:
            q = select(JobRow).order_by(JobRow.id.desc()).limit(limit)
            if owner is not None:
                q = q.where(JobRow.owner == owner)
            rows = [{k: v for k, v in _job(r).items() if k in cols} for r in s.scalars(q)]
        return pd.DataFrame(rows, columns=cols)
