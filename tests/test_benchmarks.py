"""The benchmark scripts run: the GPU suite on the CPU as a dry run (a GPU lease is minutes: the
script must not meet its first bug there), the demo benchmarks against the current service layer;
and static cache lengths come in buckets."""

import math

from benchmarks.gpu import run_gpu_suite
from genarm_core.decoding.runner import cache_bucket


def test_cache_bucket_rounds_up_within_the_context():
    assert cache_bucket(40, 2048) == 256 and cache_bucket(256, 2048) == 256 and cache_bucket(257, 2048) == 512
    assert cache_bucket(200, 128 + 100) == 228  # never past the context...
    assert cache_bucket(300, 200) == 300  # ...unless what is needed already is


def test_gpu_suite_dry_run_checks_agreement_and_respects_its_budget():
    report = run_gpu_suite(quick=True, budget_s=2.0, device="cpu")
    rows = {r.name: r for r in report.rows}
    agreement = [r for name, r in rows.items() if name.startswith("smoke model") and "identical greedy tokens" in name]
    assert len(agreement) == 6  # separate models and a LoRA-shared group, each against 3 references
    assert all(r.value == 100 for r in agreement), [(r.name, r.value) for r in agreement]
    assert rows["smoke base + 2 ARMs, batch 16: engine static"].value > 0
    skipped = [r for r in report.rows if "skipped: time budget" in r.detail]
    assert skipped and all(math.isnan(r.value) for r in skipped)
    assert not [r for r in report.rows if r.detail.startswith("failed")]
    assert rows["target: 1B + 2 x 1B ARMs, batch 1, static"].detail == "not measured"


def test_demo_benchmarks_run_against_the_current_service(small_demo, monkeypatch):
    """Benchmarks 6 and 7 drive the engine and the dashboard's service layer: they must follow
    its API (they once fell behind a rename and crashed at the end of a 13-minute suite). Benchmark 7
    times the first text of each pair's stream: it stops reading there, and reports milliseconds."""
    import statistics
    import time

    from app.service import AppContext
    from benchmarks.demo_bench import demo_benchmarks

    generate_pair = AppContext.generate_pair
    streams = []  # per pair: the updates read, whether it was closed, seconds from the call to its first text

    def spy(self, *args, **kwargs):
        t0 = time.perf_counter()
        seen = {"updates": [], "closed": False, "first_text_s": None}
        streams.append(seen)

        def stream():
            try:
                for update in generate_pair(self, *args, **kwargs):
                    if seen["first_text_s"] is None and any(update.texts):
                        seen["first_text_s"] = time.perf_counter() - t0
                    seen["updates"].append(update)
                    yield update
            except GeneratorExit:
                seen["closed"] = True
                raise
        return stream()

    monkeypatch.setattr(AppContext, "generate_pair", spy)
    sweep, ttft = demo_benchmarks(str(small_demo), quick=True)
    assert sweep.value > 0 and "speedup" in sweep.detail
    assert len(streams) == 3  # the quick run's three pairs
    for seen in streams:  # each read up to its first text, then let go: the first token, not the whole pair
        texts = [any(u.texts) for u in seen["updates"]]
        assert texts and texts[-1] and not any(texts[:-1]) and seen["closed"]
    # The median of the pairs after the first, in ms: at least what the stream itself took to its first text.
    assert ttft.unit == "ms" and math.isfinite(ttft.value)
    assert ttft.value >= statistics.median([seen["first_text_s"] for seen in streams[1:]]) * 1e3 > 0
