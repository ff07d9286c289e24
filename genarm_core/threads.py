"""How many threads torch should use for a build or a training run: chosen by measurement.

On a small machine another busy process makes extra threads a loss, not a gain: on the 2-core
development machine with one core kept busy by another process, a matrix product ran slower on 2
threads than on 1 (``python -m benchmarks.threads`` measures it). The load average cannot tell:
it still counts processes that ended a minute ago, this one's own earlier stages included. So a
build times the same small matrix product on 1 thread and on every core, a few times in turn
(about 0.3 s), and keeps the faster; ``$GENARM_THREADS`` overrides the measurement.
"""

from __future__ import annotations

import os
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
