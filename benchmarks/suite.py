"""The benchmark suite: every figure of the performance issue, as ratios measured in one process.

Each measurement is a median over repetitions after a warm-up. Models are random-initialised
Llama-architecture models (timing does not depend on the weights' values) and the demo models.
"""

from __future__ import annotations

import gc
import tempfile
import time
from pathlib import Path

import torch

from genarm_core.models.config import DecodingConfig, RowSpec
from genarm_core.decoding.engine import GenARMEngine
from genarm_core.decoding.runner import ForwardGroup
from genarm_core.models.loading import load_model_set
from genarm_core.decoding.math import combine_logprobs, sample_from_logprobs, sampling_logprobs

from .common import Report, Result, build_set, median_time, prompt_of, sync

PROMPT_TOKENS = 32


def _cfg(n: int, **kw) -> DecodingConfig:
    return DecodingConfig(temperature=1.0, max_new_tokens=n, seed=0, stop_at_eos=False, **kw)


@torch.inference_mode()
def _forward_step_time(members, prompt: str, steps: int) -> float:
    """Σ over ``members`` of each one's own KV-cached single-token forward, mean per step over the
    positions the engine decodes (the cache grows, so later steps cost more). With several members
    they take turns as in the engine; with one, it is that model alone (the floor's building block)."""
    groups = [ForwardGroup([m], {m.name: [m.encode_prompt(prompt)]}, vocab_size=10**9) for m in members]
    for g in groups:
        g.prefill()
    tok = torch.tensor([5])
    total = 0.0
    for _ in range(steps):
        for g in groups:
            inputs = g.advance_inputs(tok)  # the step's mask and position, outside the timing
            sync()
            t0 = time.perf_counter()
            g.model(use_cache=True, logits_to_keep=1, **{g.cache_kwarg: g.cache}, **inputs)
            sync()
            total += time.perf_counter() - t0
    return total / steps


@torch.inference_mode()
def naive_generate(models, prompt: str, weights: dict[str, float], n: int, seed: int = 0) -> list[int]:
    """What a naive implementation does: re-run every model over the whole prefix at every step."""
    names = [k for k, w in weights.items() if w]
    members = [models.base] + [models.arms[k] for k in names]
    ids = {m.name: m.encode_prompt(prompt) for m in members}
    g = torch.Generator().manual_seed(seed)
    out: list[int] = []
    alphas = torch.tensor([[weights[k] for k in names]])
    V = models.vocab_size
    for _ in range(n):
        lps = []
        for m in members:
            x = torch.tensor([ids[m.name] + out], device=m.device)
            lps.append(torch.log_softmax(m.model(input_ids=x, logits_to_keep=1).logits[:, -1, :V].float(), -1))
        combined = combine_logprobs(lps[0], torch.stack(lps[1:]) if names else None, alphas if names else None, 1.0)
        out.append(int(sample_from_logprobs(sampling_logprobs(combined, 1.0), torch.rand(1, generator=g))[0]))
    return out


def run_cpu_suite(quick: bool = False, device: str = "cpu", dtype: str = "float32", base_size: str = "100M",
                  arm_size: str = "100M", small_arm: str = "25M", demo_yaml: str | None = None) -> Report:
    report = Report()
    reps = 2 if quick else 3
    n_tok = 128
    root = Path(tempfile.mkdtemp(prefix="genarm-bench-"))
    print(f"building random-initialised models ({base_size} base, {arm_size} and {small_arm} ARMs) in {root}", flush=True)
    f = build_set(root, base_size, [arm_size, arm_size, arm_size, small_arm], dtype=dtype, device=device)
    models = load_model_set(f)
    engine = GenARMEngine(models)
    prompt = prompt_of(PROMPT_TOKENS)
    names = models.objectives
    n_params = sum(p.numel() for p in models.base.model.parameters()) / 1e6
    print(f"base: {n_params:.0f}M parameters on {device} ({dtype}); {torch.get_num_threads()} threads", flush=True)

    # 1. Engine overhead vs transformers' generate().
    print("1. engine (base only) vs model.generate()", flush=True)
    base = models.base.model
    base.generation_config.eos_token_id = None
    ids = torch.tensor([models.base.encode_prompt(prompt)], device=models.base.device)

    def hf(n: int):
        torch.manual_seed(0)
        base.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                      max_new_tokens=n, min_new_tokens=n, pad_token_id=1)

    row = [RowSpec(prompt, method="base")]
    t_hf = median_time(lambda: hf(n_tok), reps)
    t_eng = median_time(lambda: engine.generate(row, _cfg(n_tok)), reps)
    report.add(Result("1. engine / HF generate() tokens/s (base only, 128 tokens, batch 1)", t_hf / t_eng, "x", ">= 0.95",
                      t_hf / t_eng >= 0.95, f"engine {n_tok / t_eng:.1f} tok/s, HF {n_tok / t_hf:.1f} tok/s"))

    # 2. GenARM per-token time vs the sum of each model's own cached forward. The floor and the
    # engine are measured back to back in every repetition and the median of the ratios is kept,
    # so that the machine's drift between repetitions cancels.
    print("2. GenARM cost vs the floor of its forward passes", flush=True)
    n2 = 96 if not quick else 48

    def floor_ratio(weights: dict[str, float]) -> tuple[float, float, float, float]:
        members = [models.base] + [models.arms[n] for n in weights]
        rows = [RowSpec(prompt, weights)]
        engine.generate(rows, _cfg(n2))  # warm-up
        ratios, toks, floors, loop = [], [], [], []
        for _ in range(reps):
            floor = sum(_forward_step_time([m], prompt, n2) for m in members)
            turns = _forward_step_time(members, prompt, n2)
            t0 = time.perf_counter()
            engine.generate(rows, _cfg(n2))
            t_n = time.perf_counter() - t0
            t0 = time.perf_counter()
            engine.generate(rows, _cfg(1))
            t_1 = time.perf_counter() - t0
            per_tok = (t_n - t_1) / (n2 - 1)
            ratios.append(per_tok / floor)
            toks.append(per_tok)
            floors.append(floor)
            loop.append(per_tok / turns)
        mid = sorted(range(reps), key=lambda i: ratios[i])[reps // 2]
        return ratios[mid], toks[mid], floors[mid], sorted(loop)[reps // 2]

    for k in (1, 2, 3):
        ratio, per_tok, floor, loop = floor_ratio({names[i]: 1.0 for i in range(k)})
        report.add(Result(f"2. GenARM K={k} time/token ÷ Σ model forward time", ratio, "x", "<= 1.10", ratio <= 1.10,
                          f"{per_tok * 1e3:.1f} ms vs {floor * 1e3:.1f} ms; vs the same forwards taking turns: {loop:.3f}x"))
    ratio, per_tok, floor, loop = floor_ratio({names[3]: 1.0})
    report.add(Result(f"2b. weak-to-strong ({small_arm} ARM on {base_size} base) ÷ floor", ratio, "x", "<= 1.10",
                      ratio <= 1.10, f"{per_tok * 1e3:.1f} ms vs {floor * 1e3:.1f} ms; vs forwards taking turns: {loop:.3f}x"))

    # 3. A/B as one batch vs one after the other.
    print("3. side by side: one batch vs two runs", flush=True)
    a = RowSpec(prompt, {names[0]: 1.0, names[1]: 0.5})
    b = RowSpec(prompt, method="base")
    n_ab = 32 if quick else 64
    t_batch = median_time(lambda: engine.generate([a, b], _cfg(n_ab)), reps)
    t_seq = median_time(lambda: (engine.generate([a], _cfg(n_ab)), engine.generate([b], _cfg(n_ab))), reps)
    report.add(Result("3a. A/B pair (GenARM vs base) as one batch ÷ two sequential runs", t_batch / t_seq, "x", "<= 0.6",
                      t_batch / t_seq <= 0.6, f"{t_batch:.2f} s vs {t_seq:.2f} s; A = 2 ARMs, B = base alone"))
    b2 = RowSpec(prompt, {names[0]: 0.2, names[1]: 2.0})
    t_batch = median_time(lambda: engine.generate([a, b2], _cfg(n_ab)), reps)
    t_seq = median_time(lambda: (engine.generate([a], _cfg(n_ab)), engine.generate([b2], _cfg(n_ab))), reps)
    report.add(Result("3b. A/B pair (two GenARM weight settings) as one batch ÷ two runs", t_batch / t_seq, "x", "<= 0.6",
                      t_batch / t_seq <= 0.6, f"{t_batch:.2f} s vs {t_seq:.2f} s; both with 2 ARMs"))

    # 4. Against recomputing every prefix.
    print("4. KV-cached loop vs naive recomputation (256 tokens, K=1)", flush=True)
    n_naive = 64 if quick else 256
    w1 = {names[0]: 1.0}
    t_cached = median_time(lambda: engine.generate([RowSpec(prompt, w1)], _cfg(n_naive)), 1)
    t_naive = median_time(lambda: naive_generate(models, prompt, w1, n_naive), 1, warmup=0)
    report.add(Result(f"4. speedup over naive recomputation ({n_naive} tokens, 1 ARM)", t_naive / t_cached, "x", "report",
                      None, f"{t_naive:.1f} s vs {t_cached:.1f} s"))
    del engine, models
    gc.collect()

    # 5. LoRA ARMs sharing one base.
    print("5. LoRA ARMs that share the base weights", flush=True)
    from .lora import lora_benchmark

    for r in lora_benchmark(root, base_size, dtype, device, reps, quick):
        report.add(r)

    # 6 and 7 on the demo models.
    if demo_yaml:
        from .demo_bench import demo_benchmarks

        for r in demo_benchmarks(demo_yaml, quick):
            report.add(r)
    return report
