"""Studies as jobs: queued in the database, claimed by workers (never twice), cancelled from any page by
their owner or an admin, handed back at shutdown, and taken over (resumed, no cell twice) when a worker
dies mid-study."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.service import AppContext, UserError
from app.service.access import Access
from app.worker import Worker
from storage.store import Store

from .storage_helpers import PG_ENV, new_postgres_db
from .conftest import run_cancelled_after_the_first_batch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "postgresql":
        if not os.environ.get(PG_ENV):
            pytest.skip(f"${PG_ENV} is not set")
        url, drop = new_postgres_db()
        yield url
        drop()
    else:
        yield str(tmp_path / "jobs.sqlite")


def _claimer(url, name, out):
    store = Store(url)
    while (job := store.claim_job(name)) is not None:
        out.put(job["id"])
        store.finish_job(job["id"], name, "done")
    store.close()


def test_workers_at_once_claim_every_job_exactly_once(db_url):
    store = Store(db_url)
    ids = [store.enqueue_job("study", f"s{i}", "rita", {"study": {}}) for i in range(12)]
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(db_url, f"w{i}", q)) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    claimed = []
    while not q.empty():
        claimed.append(q.get())
    assert sorted(claimed) == ids  # every job once, none twice
    assert set(store.jobs_frame()["status"]) == {"done"}
    store.close()


def test_cancel_release_and_take_over_in_the_store(db_url):
    store = Store(db_url)
    queued = store.enqueue_job("study", "q", "rita", {})
    assert store.cancel_job(queued) == "cancelled" and store.claim_job("w") is None
    job = store.enqueue_job("study", "r", "rita", {})
    assert store.claim_job("w1")["id"] == job
    assert store.claim_job("w2") is None  # running, with a fresh heartbeat
    assert store.beat(job, "w1", 0.3, "a third") is False
    store.release_job(job, "w1", "stopping")
    assert store.job(job)["status"] == "queued" and store.claim_job("w2")["id"] == job
    assert store.beat(job, "w1") is True  # w1 lost it: told to stop
    time.sleep(0.3)
    taken = store.claim_job("w3", stale_s=0.1)  # w2 stopped beating: w3 takes it over
    assert taken["id"] == job and taken["attempts"] == 3 and "taken over" in taken["message"]
    store.finish_job(job, "w2", "done")  # w2's late outcome is not written over w3's job
    assert store.job(job)["status"] == "running"
    assert store.cancel_job(job) == "running" and store.beat(job, "w3") is True  # a cancel reaches the worker
    store.close()


@pytest.fixture
def ctx(tiny_set, tmp_path):
    access = Access.from_logins(["alice", "rita", "ron", "bob"], roles={"alice": "admin", "rita": "researcher",
                                                                        "ron": "researcher", "bob": "annotator"})
    c = AppContext({"tiny": tiny_set}, Store(str(tmp_path / "db.sqlite")), access=access)
    yield c
    c.close()


def _settings(ctx):
    from app.tabs import studies

    return studies.study_settings(ctx, "helpfulness: 0, 2; harmlessness: 1", "")


def test_a_dashboard_study_is_queued_run_by_a_worker_and_reported(ctx):
    cfg = ctx.decoding(1, 1, 0, 1, 4, 0, trace=False)
    job = ctx.submit_study(["Hello", "Tell me a joke."], _settings(ctx), cfg, samples=2, owner="rita")
    assert ctx.job(job)["status"] == "queued" and ctx.store.counts()["generations"] == 0  # nothing ran in the server
    assert Worker(ctx.store, "test-worker").run_once()
    done = ctx.job(job)
    assert done["status"] == "done" and done["progress"] == 1.0 and done["study_id"]
    report = ctx.study_report(done["study_id"])
    assert report.reference == "Base only" and len(report.completions) == 2 * 2 * 3
    assert list(ctx.jobs("rita")["id"]) == [job] and ctx.jobs("ron").empty and list(ctx.jobs("alice")["id"]) == [job]
    with pytest.raises(UserError, match="studies need the researcher role"):
        ctx.submit_study(["Hello"], _settings(ctx), cfg, owner="bob")
    with pytest.raises(UserError, match="more than the 20,000 your role may run"):
        ctx.submit_study(["Hello"] * 2000, _settings(ctx), cfg, samples=4, owner="rita")


def test_a_job_is_cancelled_by_its_owner_or_an_admin_only(ctx):
    cfg = ctx.decoding(1, 1, 0, 1, 4, 0, trace=False)
    job = ctx.submit_study(["Hello"], _settings(ctx), cfg, owner="rita")
    with pytest.raises(UserError, match="is 'rita''s; only they or an admin can cancel it"):
        ctx.cancel_job(job, "ron")
    assert "cancelled before it ran" in ctx.cancel_job(job, "alice")
    other = ctx.submit_study(["Hello"], _settings(ctx), cfg, owner="rita")
    assert "cancelled before it ran" in ctx.cancel_job(str(other), "rita")
    assert not Worker(ctx.store, "w").run_once()  # nothing left to run
    with pytest.raises(UserError, match="job must be a job number"):
        ctx.cancel_job("seven", "alice")


def test_a_running_job_stops_after_its_batch_when_cancelled(ctx):
    """A cancel from another page reaches the worker through the job's row: the runner stops between
    batches; what it stored stays and a new job of the same study resumes it."""
    cfg = ctx.decoding(1, 1, 0, 1, 4, 0, trace=False)
    job = ctx.submit_study(["Hello", "Tell me a joke."], _settings(ctx), cfg, samples=4, owner="rita")
    worker = Worker(ctx.store, "w", beat_s=0.01)
    run_cancelled_after_the_first_batch(worker, ctx.store, lambda: ctx.store.cancel_job(job))
    stopped = ctx.job(job)
    assert stopped["status"] == "cancelled" and "run the same study again to resume" in stopped["message"]
    stored = ctx.store.counts()["generations"]
    assert 0 < stored < 2 * 4 * 3
    again = ctx.submit_study(["Hello", "Tell me a joke."], _settings(ctx), cfg, samples=4, owner="rita")
    worker.run_once()
    assert ctx.job(again)["study_id"] == stopped["study_id"] and ctx.store.counts()["generations"] == 2 * 4 * 3
    assert ctx.store.generations_frame(study_id=stopped["study_id"])["cell"].is_unique


def test_a_worker_killed_mid_study_is_taken_over_and_no_cell_is_stored_twice(tiny_set, tmp_path):
    """``genarm worker`` in its own process, SIGKILLed once its first batch is stored: the job stays running
    with an old heartbeat; the next worker takes it over and resumes from the stored cells."""
    from app.service.studies import job_spec

    db = tmp_path / "db.sqlite"
    study = tmp_path / "study.yaml"
    study.write_text(f"name: killed\nmodel_set: {tiny_set}\nprompts: [Hello, Tell me a joke, Hi there, Bread please]\n"
                     "samples: 3\ndecoding: {max_new_tokens: 24}\nbatch_rows: 4\n"
                     "settings: [base, {method: genarm, weights: {helpfulness: 1}}]\n")
    store = Store(str(db))
    spec, name = job_spec(str(study))
    job = store.enqueue_job("study", name, "rita", spec)
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "worker", "--db", str(db), "--once", "--threads", "1"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while store.counts()["generations"] == 0:  # the first batch is stored: kill it now
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert store.job(job)["status"] == "running"
    stored = store.counts()["generations"]
    assert 0 < stored < 4 * 3 * 2
    time.sleep(0.3)
    assert Worker(store, "second", stale_s=0.2).run_once()
    done = store.job(job)
    assert done["status"] == "done" and done["attempts"] == 2
    cells = store.generations_frame(study_id=done["study_id"])["cell"]
    assert len(cells) == 4 * 3 * 2 and cells.is_unique
    store.close()


def test_study_run_queue_puts_a_study_file_in_the_queue(tiny_set, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("Hello\nHi\n")
    study = tmp_path / "s.yaml"
    study.write_text(f"name: from-cli\nmodel_set: {tiny_set}\nprompts: p.txt\nsettings: [base]\n")
    db = tmp_path / "db.sqlite"
    out = subprocess.run([sys.executable, "-m", "app.cli", "study", "run", str(study), "--queue", "--db", str(db),
                          "--owner", "rita"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "as job #1" in out.stdout, out.stderr[-2000:]
    job = Store(str(db)).job(1)
    assert job["owner"] == "rita" and job["spec"]["study"]["prompts"] == [{"prompt": "Hello"}, {"prompt": "Hi"}]
    bad = subprocess.run([sys.executable, "-m", "app.cli", "study", "run", str(tmp_path / "missing.yaml"), "--queue",
                          "--db", str(db)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "not found" in bad.stderr and "Traceback" not in bad.stderr
