"""Benchmark 5: LoRA ARMs that share the base weights, batched with per-row adapters."""

from __future__ import annotations

import gc
from pathlib import Path

import torch

from genarm_core.models.config import DecodingConfig, RowSpec
from genarm_core.decoding.engine import GenARMEngine
from genarm_core.models.loading import load_model_set

from .common import Result, build_set, per_token_time, prompt_of


def weight_bytes(models) -> int:
    """Bytes of every distinct parameter tensor the set holds (shared weights counted once)."""
    seen, total = set(), 0
    for m in models.members():
        for p in m.model.parameters():
            key = p.data_ptr()
            if key not in seen:
                seen.add(key)
                total += p.numel() * p.element_size()
    return total


def lora_benchmark(root: Path, base_size: str, dtype: str, device: str, reps: int, quick: bool) -> list[Result]:
    f = build_set(root / "lora", base_size, [], dtype=dtype, device=device, lora_arms=2)
    prompt = prompt_of(32)
    n = 48 if quick else 96
    out = []
    shared = load_model_set(f)
    eng = GenARMEngine(shared)
    names = shared.objectives
    # The base model's own weights: every parameter that is not a LoRA matrix.
    base_bytes = sum(p.numel() * p.element_size() for name, p in shared.base.model.named_parameters()
                     if "lora_" not in name)
    base_only = per_token_time(eng, [RowSpec(prompt, method="base")], n, reps)
    both = {names[0]: 1.0, names[1]: 1.0}
    shared_t = per_token_time(eng, [RowSpec(prompt, both)], n, reps)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        eng.generate([RowSpec(prompt, both)], DecodingConfig(max_new_tokens=n, stop_at_eos=False))
        peak_shared = torch.cuda.max_memory_allocated()
    shared_bytes = weight_bytes(shared)
    del eng, shared
    gc.collect()
    merged = load_model_set(f, share_lora_base=False)
    eng = GenARMEngine(merged)
    separate_t = per_token_time(eng, [RowSpec(prompt, both)], n, reps)
    merged_bytes = weight_bytes(merged)
    del eng, merged
    gc.collect()
    out.append(Result("5a. weights held, 2 LoRA ARMs sharing the base ÷ base alone", shared_bytes / base_bytes, "x", "<= 1.15",
                      shared_bytes / base_bytes <= 1.15,
                      f"{shared_bytes / 2**20:.0f} MiB vs {base_bytes / 2**20:.0f} MiB; merged copies: {merged_bytes / base_bytes:.2f}x"))
    if device == "cuda":
        out.append(Result("5a'. peak CUDA memory while decoding ÷ base weights", peak_shared / base_bytes, "x", "<= 1.15",
                          peak_shared / base_bytes <= 1.15))
    out.append(Result("5b. time/token, 2 LoRA ARMs batched on the shared base ÷ base alone", shared_t / base_only, "x",
                      "<= 1.5", shared_t / base_only <= 1.5,
                      f"{shared_t * 1e3:.1f} ms vs {base_only * 1e3:.1f} ms; separate merged models: {separate_t / base_only:.2f}x"))
    return out
