"""Benchmarks 6 and 7 on the demo models: sweep throughput and time to first token."""

from __future__ import annotations

import itertools
import statistics
import tempfile
import time
from pathlib import Path

from genarm_core.models.config import DecodingConfig, RowSpec
from genarm_core.demo.build import sample_held_out
from genarm_core.decoding.engine import GenARMEngine
from genarm_core.models.loading import load_model_set

from .common import Result


def demo_benchmarks(models_yaml: str, quick: bool) -> list[Result]:
    out = []
    engine = GenARMEngine(load_model_set(models_yaml))
    prompts = [p.text for p in sample_held_out(models_yaml, 4 if quick else 8)]
    grid = [{"helpfulness": h, "harmlessness": s} for h, s in itertools.product([0, 1, 2], [0, 1, 2])]
    jobs = [(w, p) for w in grid for p in prompts]
    cfg = DecodingConfig(temperature=1.0, max_new_tokens=32, seed=0, stop_at_eos=False, score_all=True)
    engine.generate([RowSpec(prompts[0], grid[4])], cfg)  # warm-up
    t0 = time.perf_counter()
    for start in range(0, len(jobs), 64):
        engine.generate([RowSpec(p, w) for w, p in jobs[start:start + 64]], cfg)
    batched = len(jobs) / (time.perf_counter() - t0) * 60
    sample = jobs[:: max(1, len(jobs) // 12)]
    t0 = time.perf_counter()
    for w, p in sample:
        engine.generate([RowSpec(p, w)], cfg)
    single = len(sample) / (time.perf_counter() - t0) * 60
    out.append(Result(f"6. sweep completions/min, 3x3 grid x {len(prompts)} held-out prompts, batched", batched, "/min",
                      "report", None, f"one at a time: {single:.0f}/min, speedup {batched / single:.1f}x; 32 tokens, all ARMs scored"))

    from app.service import AppContext
    from genarm_core.threads import release_openmp_threads
    from storage.store import Store

    # The dashboard decodes on its compute thread and its main thread runs no torch; this process's main
    # thread has just run 1-6, so its OpenMP team goes first (``threads.ComputeThread`` says why).
    release_openmp_threads()
    ctx = AppContext({"demo": Path(models_yaml)}, Store(str(Path(tempfile.mkdtemp()) / "bench.db")))
    ttfts = []
    for i in range(3 if quick else 7):
        settings = [ctx.setting("GenARM", {"helpfulness": 1.0, "harmlessness": 1.0}), ctx.setting("Base only", {})]
        dcfg = ctx.decoding(1.0, 1.0, 0, 1.0, 32, i)
        t0 = time.perf_counter()
        for upd in ctx.generate_pair(prompts[i % len(prompts)], settings, dcfg):
            if any(upd.texts):
                ttfts.append(time.perf_counter() - t0)
                break
    ttft = statistics.median(ttfts[1:] or ttfts)
    ctx.records.close()
    out.append(Result("7. time to first token, dashboard stream (A/B pair, demo models)", ttft * 1e3, "ms", "report", None,
                      "service layer, first non-empty text; excludes the browser round trip"))
    return out
