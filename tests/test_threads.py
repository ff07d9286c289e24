"""One thread for a server's model work, and letting a thread's OpenMP workers go."""

from __future__ import annotations

import threading

import pytest
import torch

from genarm_core.threads import ComputeThread, release_openmp_threads


def test_call_and_iterate_run_on_the_one_thread():
    compute = ComputeThread()
    try:
        here = threading.get_ident()
        where = compute.call(threading.get_ident)
        assert where != here and compute.call(threading.get_ident) == where
        assert compute.call(lambda: compute.call(threading.get_ident)) == where  # a call from the thread itself: no deadlock
        with pytest.raises(ValueError, match="field x"):
            compute.call(lambda: (_ for _ in ()).throw(ValueError("field x")))

        made = []

        def items():
            for i in range(5):
                made.append(i)
                yield i, threading.get_ident()

        it = compute.iterate(items)
        first = next(it)
        assert first == (0, where) and made == [0]  # lazy: nothing computed ahead of the reader
        assert [i for i, _ in it] == [1, 2, 3, 4]
    finally:
        compute.close()


def test_an_early_stop_closes_the_generator_on_the_thread():
    compute = ComputeThread()
    closed = []

    def items():
        try:
            yield 1
            yield 2
        finally:
            closed.append(threading.get_ident())

    try:
        for item in compute.iterate(items):
            break
        assert closed == [compute.call(threading.get_ident)]
    finally:
        compute.close()


def test_release_openmp_threads_leaves_torch_working():
    from genarm_core import threads

    a = torch.randn(64, 64)
    before = a @ a
    released = release_openmp_threads()
    # True exactly where torch ships a libgomp with omp_pause_resource_all and the pause worked
    assert released is (threads._gomp() is not None)
    if "OpenMP" in torch.__config__.parallel_info():
        assert released is True  # torch's GNU OpenMP offers omp_pause_resource_all
    assert torch.equal(a @ a, before)  # the next parallel region starts new workers


class _FakeGomp:
    """A libgomp whose ``omp_pause_resource_all`` answers ``rc`` and records its argument."""

    def __init__(self, rc):
        self.rc, self.calls = rc, []

    def omp_pause_resource_all(self, kind):
        self.calls.append(kind)
        return self.rc


def test_release_openmp_threads_asks_for_a_hard_pause_and_reports_its_outcome(monkeypatch):
    from genarm_core import threads

    ok, refused = _FakeGomp(0), _FakeGomp(-1)
    monkeypatch.setattr(threads, "_gomp", lambda: ok)
    assert release_openmp_threads() is True and ok.calls == [2]  # omp_pause_hard: the workers go
    monkeypatch.setattr(threads, "_gomp", lambda: refused)
    assert release_openmp_threads() is False and refused.calls == [2]  # the runtime refused: not released
    monkeypatch.setattr(threads, "_gomp", lambda: None)
    assert release_openmp_threads() is False  # another runtime, or no pause call: nothing happens


def test_the_dashboard_decodes_on_its_compute_thread(tiny_set, tmp_path):
    """Loading and a Compare pair run on ``ModelSets.compute``, not on the request's thread."""
    from app.service import AppContext
    from storage.store import Store

    ctx = AppContext({"tiny": tiny_set}, Store(str(tmp_path / "db.sqlite")))
    compute = ctx.sets.compute.call(threading.get_ident)
    seen = []
    stream = ctx.engine.stream

    def spy(*args, **kwargs):
        for event in stream(*args, **kwargs):
            seen.append(threading.get_ident())
            yield event

    ctx.sets.engine.stream = spy
    settings = [ctx.setting("genarm", {o: 1.0 for o in ctx.objectives}), ctx.setting("base", {})]
    updates = list(ctx.generate_pair("Hello there", settings, ctx.decoding(1.0, 0.8, 0, 1.0, 6, 1)))
    assert updates[-1].done and updates[-1].pair is not None
    assert seen and set(seen) == {compute} != {threading.get_ident()}
