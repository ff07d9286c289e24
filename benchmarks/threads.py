"""``python -m benchmarks.threads``: 1 thread vs every core, on an idle machine and with one core busy.

Prints, for each condition, the best time of ``genarm_core.threads.measure_threads``' matrix
product per thread count (pairs taken in turn, so both see the same machine) and the count that
``choose_threads`` picks there. "One core busy" starts another Python process that spins on one
core for the duration, as a second job on a shared machine would.

Optional: ``--build demo|smollm2`` also times a full build into a temporary cache folder under
both conditions (minutes each), which is how the README's build times were taken.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from contextlib import contextmanager

from genarm_core.threads import choose_threads, measure_threads


def _spin(stop) -> None:  # pragma: no cover - runs in the child
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


@contextmanager
def one_core_busy(busy: bool):
    """Keep one core busy in another process while the block runs (or do nothing)."""
    if not busy:
        yield
        return
    stop = mp.Event()
    proc = mp.Process(target=_spin, args=(stop,), daemon=True)
    proc.start()
    time.sleep(0.5)
    try:
        yield
    finally:
        stop.set()
        proc.join(5)


def _build(which: str) -> float:
    with tempfile.TemporaryDirectory(prefix="genarm-threads-") as cache:
        t0 = time.perf_counter()
        if which == "demo":
            from genarm_core.demo.build import ensure_demo

            ensure_demo(cache_dir=cache, progress=False)
        else:
            from genarm_core.smollm2.build import ensure_smollm2

            ensure_smollm2(cache_dir=cache, progress=False)
        return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.threads", description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=5, help="rounds of the paired measurement")
    p.add_argument("--build", choices=["demo", "smollm2"], help="also time a full build in each condition")
    args = p.parse_args()
    cores = os.cpu_count() or 1
    print(f"{cores} cores; best seconds of the matrix product (lower is better), pairs taken in turn")
    for busy in (False, True):
        label = "one core busy" if busy else "idle"
        with one_core_busy(busy):
            times = measure_threads(reps=args.reps)
            picked = choose_threads()
            row = ", ".join(f"{n} thread{'s' if n > 1 else ''}: {t * 1000:.1f} ms" for n, t in times.items())
            print(f"{label:>14}: {row}; choose_threads picks {picked}")
            if args.build:
                print(f"{'':>14}  {args.build} build: {_build(args.build):.0f} s")


if __name__ == "__main__":
    main()
