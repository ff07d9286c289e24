"""How many threads torch should use for a build or a training run: chosen by measurement.

On a small machine another busy process makes extra threads a loss, not a gain: on the 2-core
development machine with one core kept busy by another process, a matrix product ran slower on 2
threads than on 1 (``python -m benchmarks.threads`` measures it). The load average cannot tell:
it still counts processes that ended a minute ago, this one's own earlier stages included. So a
build times the same small matrix product on 1 thread and on every core, a few times in turn
(about 0.3 s), and keeps the faster; ``$GENARM_THREADS`` overrides the measurement.
"""

from __future__ import annotations

import functools
import os
import threading
import time

THREADS_ENV = "GENARM_THREADS"


def _env_threads() -> int | None:
    env = os.environ.get(THREADS_ENV, "").strip()
    if not env:
        return None
    try:
        n = int(env)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"${THREADS_ENV} must be a positive integer, got {env!r}")
    return n


def measure_threads(candidates: list[int] | None = None, reps: int = 3) -> dict[int, float]:
    """Best seconds of a 256×1024 by 1024×1024 float32 product (×4) per thread count, taken in turn."""
    import torch

    cores = os.cpu_count() or 1
    candidates = candidates or sorted({1, cores})
    a, b = torch.randn(256, 1024), torch.randn(1024, 1024)
    before = torch.get_num_threads()
    best = {n: float("inf") for n in candidates}
    try:
        for _ in range(reps):
            for n in candidates:
                torch.set_num_threads(n)
                t0 = time.perf_counter()
                for _ in range(4):
                    a @ b
                best[n] = min(best[n], time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return best


def choose_threads() -> int:
    """``$GENARM_THREADS`` if set, else the thread count that ran ``measure_threads`` fastest
    (more threads only when they are at least 10% faster)."""
    env = _env_threads()
    if env is not None:
        return env
    times = measure_threads()
    fewest = min(times)
    return min(times, key=lambda n: times[n] * (1.0 if n == fewest else 1.1))


def apply_threads() -> int:
    """Set torch's intra-op thread count by ``choose_threads`` and return it."""
    import torch

    n = choose_threads()
    torch.set_num_threads(n)
    return n


# ------------------------------------------------------------------ one thread for a server's model work

def release_openmp_threads() -> bool:
    """Let the calling thread's OpenMP worker threads go (``omp_pause_resource_all(omp_pause_hard)``
    of torch's GNU OpenMP); the next parallel region starts new ones. False where torch uses another
    runtime or the call is unavailable (nothing happens then).

    Why: every thread that runs torch's parallel regions keeps a team of OpenMP workers for as long
    as it lives, and once the teams of all threads hold more threads than the machine has cores,
    libgomp stops letting idle workers wait spinning and puts them to sleep after each region, so
    every region must wake them. A decode step runs hundreds of small regions: on the 2-core
    development machine a pair decoded in a second thread, after the models were loaded in the main
    thread, took 12.2-14.1 s instead of 6.3-7.0 s with the main thread's team let go first (2026-12-07).
    """
    lib = _gomp()
    if lib is None:
        return False
    return lib.omp_pause_resource_all(2) == 0  # omp_pause_hard


@functools.lru_cache(maxsize=1)
def _gomp():
    """torch's own libgomp with ``omp_pause_resource_all`` typed, or None (looked up once)."""
    import ctypes
    import glob

    import torch

    for path in glob.glob(os.path.join(os.path.dirname(torch.__file__), "lib", "libgomp*.so*")):
        try:
            lib = ctypes.CDLL(path)
            lib.omp_pause_resource_all.restype = ctypes.c_int
            lib.omp_pause_resource_all.argtypes = [ctypes.c_int]
            return lib
        except (OSError, AttributeError):
            continue
    return None


class ComputeThread:
    """One long-lived thread for a server's model work (loading, decoding, studies).

    A web server runs each request on one of many worker threads; if each of them ran torch, each
    would keep its own OpenMP team and the teams together would outnumber the cores (see
    ``release_openmp_threads``). Work sent here runs on this one thread, in the order sent.
    ``call`` runs a function and returns its result (its exception raised in the caller);
    ``iterate`` runs a generator here one item at a time, as lazily as the caller reads it. A call
    from this thread itself runs at once (no deadlock).
    """

    def __init__(self, name: str = "genarm-compute"):
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._ident = self._pool.submit(threading.get_ident).result()

    def call(self, fn, *args, **kwargs):
        if threading.get_ident() == self._ident:
            return fn(*args, **kwargs)
        return self._pool.submit(fn, *args, **kwargs).result()

    def iterate(self, make):
        """The items of the iterator ``make()``, each computed on this thread."""
        it = self.call(lambda: iter(make()))
        done = object()
        try:
            while (item := self.call(next, it, done)) is not done:
                yield item
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                self.call(close)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
