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


def test_demo_benchmarks_run_against_the_current_service(small_demo):
    """Benchmarks 6 and 7 drive the engine and the dashboard's service layer: they must follow
    its API (they once fell behind a rename and crashed at the end of a 13-minute suite)."""
    from benchmarks.demo_bench import demo_benchmarks

    sweep, ttft = demo_benchmarks(str(small_demo), quick=True)
    assert sweep.value > 0 and "speedup" in sweep.detail
    assert 0 < ttft.value < 10_000  # milliseconds
