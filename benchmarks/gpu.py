"""GPU suite (``python -m benchmarks --gpu``): CUDA, bf16, random-initialised 1B and 7B bases with 1B ARMs.

Reports tokens/s against the memory-bandwidth floor: at batch 1 every model's weights are read
once per token, so the floor is Σ weight bytes ÷ the device's measured copy bandwidth.
"""

from __future__ import annotations

import gc
import tempfile
from pathlib import Path

import torch

from genarm_core.config import DecodingConfig, RowSpec
from genarm_core.engine import GenARMEngine
from genarm_core.loading import load_model_set

from .common import Report, Result, build_set, median_time, per_token_time, prompt_of


def copy_bandwidth(gib: float = 2.0) -> float:
    """Device-to-device copy bandwidth in bytes/s (read + write counted, as for a weight read)."""
    n = int(gib * 2**30) // 2
    a = torch.empty(n, dtype=torch.bfloat16, device="cuda")
    b = torch.empty_like(a)
    t = median_time(lambda: b.copy_(a), 5)
    return 2 * a.numel() * a.element_size() / t


def run_gpu_suite(quick: bool = False) -> Report:
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run the CPU suite (python -m benchmarks)")
    report = Report()
    bw = copy_bandwidth()
    report.add(Result("device copy bandwidth", bw / 1e9, "GB/s"))
    root = Path(tempfile.mkdtemp(prefix="genarm-gpu-bench-"))
    n = 64 if quick else 128
    for base in ("1B", "7B"):
        f = build_set(root / base, base, ["1B", "1B"], dtype="bfloat16", device="cuda")
        models = load_model_set(f)
        engine = GenARMEngine(models)
        names = models.objectives
        prompt = prompt_of(32)
        for k in (0, 1, 2):
            weights = {names[i]: 1.0 for i in range(k)}
            row = [RowSpec(prompt, weights, method="genarm" if k else "base")]
            per_tok = per_token_time(engine, row, n, 3)
            members = [models.base] + [models.arms[names[i]] for i in range(k)]
            weight_bytes = sum(p.numel() * p.element_size() for m in members for p in m.model.parameters())
            floor = weight_bytes / bw
            report.add(Result(f"{base} base + {k} x 1B ARM: tokens/s (batch 1, bf16)", 1 / per_tok, "tok/s", "",
                              None, f"bandwidth floor {1 / floor:.0f} tok/s; {floor / per_tok:.0%} of it"))
        a = RowSpec(prompt, {names[0]: 1.0, names[1]: 0.5})
        b = RowSpec(prompt, method="base")
        cfg = DecodingConfig(max_new_tokens=n, stop_at_eos=False)
        t_batch = median_time(lambda: engine.generate([a, b], cfg), 3)
        t_seq = median_time(lambda: (engine.generate([a], cfg), engine.generate([b], cfg)), 3)
        report.add(Result(f"{base}: A/B as one batch ÷ two runs", t_batch / t_seq, "x", "<= 0.6", t_batch / t_seq <= 0.6))
        del engine, models
        gc.collect()
        torch.cuda.empty_cache()
    return report
