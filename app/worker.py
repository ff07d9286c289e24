"""A worker: a separate process that runs queued studies (``genarm worker --db URL``).

Studies are jobs in the database (``storage.jobs``), put there by the Studies tab, ``genarm study run
--queue`` or the API. A worker claims one (several workers, on several machines or GPUs, can point at
one PostgreSQL database: a claim is ``SELECT ... FOR UPDATE SKIP LOCKED``), loads its model set (kept
for the next job of the same set), runs it with the resumable study runner, and reports progress and
a heartbeat while it runs. The job's owner or an admin can cancel it from any page: the runner stops
after the batch in flight. A worker killed mid-study leaves its job running with an old heartbeat; the
next worker takes it over and resumes from the stored cells (no cell is stored twice).

``python app.py`` starts one worker as a child process by default (``--workers``), on fewer threads
than the machine has and at a lower scheduling priority, so a page's Compare pair keeps its share of
the cores while a study runs.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

#: A running job whose heartbeat is older than this is taken over by another worker.
STALE_S = 60.0
BEAT_S = 5.0


class Worker:
    """Claims jobs from ``store`` and runs them, one at a time."""

    def __init__(self, store: Any, name: str | None = None, cache_dir: str | None = None, log=print,
                 stale_s: float = STALE_S, beat_s: float = BEAT_S):
        self.store, self.cache_dir, self.log = store, cache_dir, log
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.stale_s, self.beat_s = stale_s, beat_s
        self._engines: dict[str, Any] = {}  # model-set file -> its engine, kept between jobs
        #: set to stop (SIGTERM): the job in flight stops after its batch and goes back to the queue
        self.shutdown = threading.Event()
        self.current_cancel: threading.Event | None = None  # the job in flight's stop signal

    def run_once(self) -> bool:
        """Claim and run one job; False when there was none."""
        job = self.store.claim_job(self.name, self.stale_s)
        if job is None:
            return False
        self.run_job(job)
        return True

    def serve(self, poll_s: float = 2.0, stop: threading.Event | None = None) -> None:
        """Run jobs until ``stop`` is set (or forever), polling the queue every ``poll_s`` seconds when idle."""
        while not self.shutdown.is_set() and (stop is None or not stop.is_set()):
            if not self.run_once():
                (stop.wait if stop is not None else self.shutdown.wait)(poll_s)

    def engine(self, models_yaml: Path) -> Any:
        from genarm_core.decoding.engine import GenARMEngine
        from genarm_core.models.loading import load_model_set

        key = str(models_yaml)
        if key not in self._engines:
            for old in self._engines.values():  # one set in memory at a time
                old.models.close()
            self._engines = {key: GenARMEngine(load_model_set(models_yaml))}
        return self._engines[key]

    def run_job(self, job: dict[str, Any]) -> None:
        from genarm_core.evaluation.study import parse_study
        from genarm_core.models.builtin import resolve_model_set

        from .service.errors import Cancelled
        from .service.studies import StudyRun, StudyRunner

        job_id, spec = job["id"], job["spec"]
        cancel = self.current_cancel = threading.Event()  # set by a cancel (read at each heartbeat) or a shutdown
        beating = threading.Event()
        state = {"progress": job["progress"], "message": "loading the model set"}

        def beat() -> None:  # alive, how far, and whether to stop: every few seconds, whatever a batch takes
            while not beating.wait(self.beat_s):
                if self.store.beat(job_id, self.name, state["progress"], state["message"]) or self.shutdown.is_set():
                    cancel.set()

        beater = threading.Thread(target=beat, name=f"job-{job_id}-heartbeat", daemon=True)
        beater.start()
        runner = None
        try:
            study = parse_study(spec["study"], f"job #{job_id}", Path(spec.get("root") or "."))
            models_yaml = resolve_model_set(study.model_set, self.cache_dir, progress=False)
            runner = StudyRunner(study, self.store, self.engine(models_yaml), models_yaml, progress=False,
                                 log=lambda msg: None, set_judges=spec.get("set_judges", True))
            self.store.set_job_study(job_id, runner.study_id)
            state["message"] = f"study #{runner.study_id}: decoding"
            outcome = None
            for step in runner.steps(cancel):
                if isinstance(step, StudyRun):
                    outcome = step
                else:
                    state["progress"] = 0.95 * step
                    state["message"] = f"study #{runner.study_id}: {step:.0%} of its rows decoded"
            self.store.finish_job(job_id, self.name, "done", f"study #{outcome.study_id}: {outcome.cells} cells, "
                                  f"{outcome.generated} decoded by this run, {outcome.seconds:.0f} s", outcome.study_id)
            self.log(f"job #{job_id} done (study #{outcome.study_id})")
        except Cancelled as exc:
            if self.shutdown.is_set() and not (self.store.job(job_id) or {}).get("cancel_requested"):
                self.store.release_job(job_id, self.name, f"worker {self.name} stopped; the next worker resumes it")
                self.log(f"job #{job_id} handed back to the queue")
            else:
                self.store.finish_job(job_id, self.name, "cancelled", str(exc))
                self.log(f"job #{job_id} cancelled")
        except Exception as exc:  # noqa: BLE001 - any failure is the job's, recorded for its owner; the worker goes on
            self.store.finish_job(job_id, self.name, "failed", f"{type(exc).__name__}: {exc}")
            self.log(f"job #{job_id} failed: {type(exc).__name__}: {exc}")
        finally:
            beating.set()
            beater.join()
            if runner is not None:
                runner.close()


def worker_threads(cores: int | None = None) -> int:
    """Torch threads for a worker beside a dashboard on one machine: half the cores (one on two)."""
    return max(1, (cores or os.cpu_count() or 2) // 2)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="genarm worker", description=__doc__.split("\n\n")[0])
    p.add_argument("--db", help="SQLAlchemy URL or SQLite file of the dashboard's database (one PostgreSQL URL for "
                                "workers on several machines)")
    p.add_argument("--cache-dir", help="where built-in model sets are cached")
    p.add_argument("--threads", type=int, help="torch threads (default: $GENARM_THREADS, else measured)")
    p.add_argument("--nice", type=int, default=0, help="lower this process's scheduling priority by this much (0-19)")
    p.add_argument("--once", action="store_true", help="run at most one job, then exit")
    p.add_argument("--poll", type=float, default=2.0, help="seconds between looks at the queue when it is empty")
    p.add_argument("--name", help="how this worker is named in the jobs table (default host:pid)")
    args = p.parse_args(argv)
    if args.nice:
        os.nice(max(0, min(19, args.nice)))
    import torch

    from genarm_core.threads import apply_threads
    from storage.db import StorageError
    from storage.store import Store

    if args.threads:
        torch.set_num_threads(args.threads)
    else:
        apply_threads()
    try:
        store = Store(args.db)
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    worker = Worker(store, args.name, args.cache_dir, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(f"worker {worker.name} on {store.url}: waiting for jobs", file=sys.stderr, flush=True)
    import signal

    signal.signal(signal.SIGTERM, lambda *_: worker.shutdown.set())
    try:
        if args.once:
            worker.run_once()
        else:
            worker.serve(args.poll)
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
