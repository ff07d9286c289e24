"""GPU suite (``python -m benchmarks --gpu``): tokens/s against the memory-bandwidth floor.

One run prints, for a 1B base with 0, 1 and 2 1B ARMs and a 7B base with 0 and 1 1B ARM, at
batch 1 and 16: HF ``generate()`` eager and static-cache compiled (base alone), the engine eager
(dynamic cache) and graphed (static cache, each step one CUDA graph), and each as a share of the
floor (Σ weight bytes of the models that run ÷ measured copy bandwidth: at these batch sizes a
step must read every weight once). Before timing it checks, per model set, that graphed decoding
gives the eager static path's tokens exactly and the dynamic path's within bf16 rounding (the
share of identical greedy tokens and the largest log-prob difference while prefixes agree).

Models are random-initialised Llama models built directly on the GPU in bf16 (timing does not
depend on the weights' values; nothing is written to disk), wrapped in the project's own
``ModelSet`` so that the engine runs exactly as it does on loaded models.

A GPU is lent for minutes: the suite runs the measurements the targets need first, every
measurement is guarded (a failure prints its traceback and becomes a "failed" row; the rest
still runs), and ``budget_s`` skips what would start after the budget. ``device="cpu"`` runs
the same code on small models with the static path instead of graphs (a dry run of the script).
"""

from __future__ import annotations

import gc
import time
import traceback
from typing import Callable

import torch

from genarm_core.models.config import DecodingConfig, ModelSetConfig, ModelSpec, ObjectiveSpec, RowSpec
from genarm_core.decoding.engine import GenARMEngine
from genarm_core.models.loading import BASE, LoadedModel, ModelSet

from .common import SIZES, Report, Result, marginal_time, median_time, prompt_of, word_tokenizer

VOCAB = 32000
N_GRAPHED = 128  # tokens per timed run of the graphed path (fast)
N_EAGER = 32  # of the eager paths (launch-bound: per-step time does not depend on the length)
PROMPT_TOKENS = 32
SMOKE = (256, 2, 4, 4, 512)  # hidden, layers, heads, kv_heads, intermediate: a seconds-long first check

# Targets of the issue, from the eager engine measured on an H200 before this path existed.
BEFORE = {("1B", 2, 1): 23.0, ("1B", 2, 16): 340.9}


def copy_bandwidth(device: str, gib: float = 2.0) -> float:
    """Device-to-device copy bandwidth in bytes/s (read + write counted, as for a weight read)."""
    n = int(gib * 2**30) // 2
    a = torch.randn(n, dtype=torch.bfloat16, device=device)
    b = torch.empty_like(a)
    t = median_time(lambda: b.copy_(a), 5)
    return 2 * a.numel() * a.element_size() / t


def random_llama(shape: tuple, seed: int, tokenizer, device: str, dtype: torch.dtype):
    """A random Llama of ``shape`` (hidden, layers, heads, kv_heads, intermediate), built on ``device`` in ``dtype``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    h, layers, heads, kv, inter = shape
    cfg = LlamaConfig(hidden_size=h, intermediate_size=inter, num_hidden_layers=layers, num_attention_heads=heads,
                      num_key_value_heads=kv, vocab_size=VOCAB, max_position_embeddings=2048, tie_word_embeddings=False,
                      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # allocate in the final dtype (a 7B in float32 first would take 28 GB and time)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(cfg).eval()
    finally:
        torch.set_default_dtype(previous)
    model.requires_grad_(False)
    model.generation_config.eos_token_id = None  # random models: never stop early
    return model


def model_set(base_shape: tuple, arm_shapes: list[tuple], tokenizer, device: str, dtype: torch.dtype,
              name: str) -> ModelSet:
    spec = ModelSpec(path="<in memory>", dtype=str(dtype).removeprefix("torch."), device=device)
    base = LoadedModel(BASE, random_llama(base_shape, 0, tokenizer, device, dtype), tokenizer, spec)
    arms = {f"objective{i}": LoadedModel(f"objective{i}", random_llama(s, i + 1, tokenizer, device, dtype), tokenizer, spec)
            for i, s in enumerate(arm_shapes)}
    config = ModelSetConfig(base=spec, objectives=tuple(ObjectiveSpec(n, spec) for n in arms), name=name)
    return ModelSet(config=config, base=base, arms=arms, vocab_size=VOCAB)


def weight_bytes(models: list[LoadedModel]) -> int:
    return sum(p.numel() * p.element_size() for m in models for p in m.model.parameters())


def agreement(a_results, b_results) -> tuple[float, float]:
    """(share of identical tokens, largest combined log-prob difference while the prefixes agree)."""
    same = total = 0
    worst = 0.0
    for a, b in zip(a_results, b_results):
        for i, (x, y) in enumerate(zip(a.token_ids, b.token_ids)):
            total += 1
            same += x == y
            if a.token_ids[:i] == b.token_ids[:i]:
                worst = max(worst, abs(a.trace[i]["combined_logprob"] - b.trace[i]["combined_logprob"]))
    return same / max(total, 1), worst


def check_agreement(models: ModelSet, weights: dict[str, float], batch: int, fast_mode: str) -> dict[str, tuple]:
    """Greedy decoding, trace on: ``fast_mode`` against the eager static path and the dynamic path."""
    rows = [RowSpec(prompt_of(24 + 3 * i), weights) for i in range(batch)]
    cfg = DecodingConfig(temperature=0, max_new_tokens=32, stop_at_eos=False, trace=True)
    fast_engine = GenARMEngine(models, decode=fast_mode)
    fast = fast_engine.generate(rows, cfg)
    if fast_mode == "graph" and not fast_engine.last_decode["graph_replayed"]:
        raise RuntimeError("the graph was not captured (see the warning above): the graphed path ran eagerly")
    again = fast_engine.generate(rows, cfg)  # the reused static decoder (and graph) on a second generation
    assert fast_engine.last_decode["reused"], "second generation of the same shape did not reuse the static decoder"
    static = GenARMEngine(models, decode="static").generate(rows, cfg)
    dynamic = GenARMEngine(models, decode="dynamic").generate(rows, cfg)
    return {"again": agreement(fast, again), "static": agreement(fast, static), "dynamic": agreement(fast, dynamic)}


def engine_tok_s(engine: GenARMEngine, rows: list[RowSpec], n_tokens: int, reps: int) -> tuple[float, dict]:
    """Generated tokens/s (all rows) with prefill excluded: (t(n) − t(2)) / (n − 2), medians of ``reps``;
    and the first run's ``last_decode`` (mode, graph capture time)."""
    def run(n: int):
        return engine.generate(rows, DecodingConfig(temperature=1.0, max_new_tokens=n, seed=0, stop_at_eos=False))

    run(n_tokens)  # warm-up (and capture)
    first = dict(engine.last_decode)
    return len(rows) / marginal_time(run, n_tokens, reps, short=2), first


def hf_tok_s(model, batch: int, static: bool, n_tokens: int, reps: int) -> float:
    ids = torch.tensor([[5 + (i * 37) % 900 for i in range(PROMPT_TOKENS)]] * batch, device=model.device)
    kwargs = dict(attention_mask=torch.ones_like(ids), do_sample=False, pad_token_id=1)
    if static:
        kwargs["cache_implementation"] = "static"  # transformers compiles the forward for it on CUDA

    def run(n: int):
        model.generate(ids, max_new_tokens=n, min_new_tokens=n, **kwargs)

    run(n_tokens)
    run(n_tokens)  # the static path compiles on its first calls
    return batch / marginal_time(run, n_tokens, reps, short=2)


class Suite:
    """Runs guarded, budgeted measurements into one ``Report``."""

    def __init__(self, budget_s: float | None):
        self.report = Report()
        self.t0 = time.perf_counter()
        self.budget_s = budget_s
        self.failures = 0
        self.measured: dict[tuple, float] = {}  # tokens/s by (base size, ARMs, batch, mode)
        self.share: dict[tuple, float] = {}  # the same as a fraction of the bandwidth floor

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def guard(self, label: str, fn: Callable[[], None]) -> None:
        if self.budget_s is not None and self.elapsed() > self.budget_s:
            self.report.add(Result(label, float("nan"), "", detail=f"skipped: time budget of {self.budget_s:.0f} s spent"))
            return
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - one failure must not cost the rest of a short GPU lease
            traceback.print_exc()
            self.failures += 1
            self.report.add(Result(label, float("nan"), "", detail=f"failed: {type(exc).__name__}: {str(exc)[:200]}"))
        finally:
            print(f"    [{self.elapsed():.0f} s]", flush=True)


def run_gpu_suite(quick: bool = False, budget_s: float | None = None, device: str = "cuda") -> Report:
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run the CPU suite (python -m benchmarks)")
    on_gpu = device == "cuda"
    fast = "graph" if on_gpu else "static"
    dtype = torch.bfloat16 if on_gpu else torch.float32
    sizes = dict(SIZES) if on_gpu else {"1B": SMOKE, "7B": SMOKE}  # a CPU dry run: small models, same code
    reps = 2 if quick else 3
    n_fast, n_eager = (32, 12) if quick or not on_gpu else (N_GRAPHED, N_EAGER)
    suite = Suite(budget_s)
    report = suite.report
    tok = word_tokenizer(VOCAB)
    bw = copy_bandwidth(device, 2.0 if on_gpu else 1 / 32)
    report.add(Result("device copy bandwidth (read + write)", bw / 1e9, "GB/s"))

    def agreement_rows(models: ModelSet, label: str, weights: dict[str, float]) -> None:
        res = check_agreement(models, weights, 2, fast)
        for other, (same, worst) in res.items():
            what = {"again": "itself, reused decoder", "static": "eager static cache", "dynamic": "eager dynamic cache"}[other]
            report.add(Result(f"{label}: {fast} vs {what}, identical greedy tokens", same * 100, "%", "", None,
                              f"largest combined log-prob difference {worst:.3g}"))

    def timing(models: ModelSet, base_size: str, k: int, batch: int, mode: str) -> None:
        names = models.objectives[:k]
        members = [models.base] + [models.arms[n] for n in names]
        floor_step = weight_bytes(members) / bw
        weights = {n: 1.0 for n in names}
        rows = [RowSpec(prompt_of(PROMPT_TOKENS), weights, method="genarm" if k else "base")] * batch
        tps, first = engine_tok_s(GenARMEngine(models, decode=mode), rows, n_fast if mode != "dynamic" else n_eager, reps)
        suite.measured[(base_size, k, batch, mode)] = tps
        suite.share[(base_size, k, batch, mode)] = tps * floor_step / batch
        extra = ""
        if first.get("capture_seconds") is not None:
            extra = f"; graph captured in {first['capture_seconds'] * 1e3:.0f} ms" if first.get("graph_replayed") else "; NOT captured"
        label = f"{base_size} base + {k} ARM{'s' if k != 1 else ''}, batch {batch}: engine {'eager' if mode == 'dynamic' else mode}"
        report.add(Result(label, tps, "tok/s", "", None,
                          f"{tps * floor_step / batch:.1%} of the floor of {batch / floor_step:.0f} tok/s{extra}"))

    def hf_timing(models: ModelSet, base_size: str, batch: int, static: bool) -> None:
        floor_step = weight_bytes([models.base]) / bw
        tps = hf_tok_s(models.base.model, batch, static and on_gpu, n_fast if static else n_eager, reps)
        suite.measured[(base_size, 0, batch, "hf-static" if static else "hf-eager")] = tps
        report.add(Result(f"{base_size} base alone, batch {batch}: HF generate() {'static+compiled' if static else 'eager'}",
                          tps, "tok/s", "", None, f"{tps * floor_step / batch:.1%} of the floor"))

    # 1. A seconds-long check that the path works on this device at all, separate models and a
    #    LoRA-shared group (base and ARMs in one PeftModel, per-row adapters).
    def smoke() -> None:
        models = model_set(SMOKE, [SMOKE, SMOKE], tok, device, dtype, "smoke")
        agreement_rows(models, "smoke model + 2 ARMs", {"objective0": 1.0, "objective1": 0.5})
        timing(models, "smoke", 2, 16, fast)
        agreement_rows(lora_model_set(SMOKE, tok, device, dtype), "smoke model + 2 LoRA ARMs (one shared group)",
                       {"objective0": 1.0, "objective1": 0.5})

    suite.guard("smoke check", smoke)

    # 2. The engine on 1B + 2 × 1B ARMs (the target), the base alone, one ARM; then 7B + 1B.
    #    HF's static+compiled generate() compiles for minutes, so it comes last.
    holder: dict[str, ModelSet] = {}

    def build(key: str, base_size: str, arm_sizes: list[str]) -> None:
        holder.pop(key, None)
        gc.collect()
        if on_gpu:
            torch.cuda.empty_cache()
        t = time.perf_counter()
        holder[key] = model_set(sizes[base_size], [sizes[s] for s in arm_sizes], tok, device, dtype, key)
        print(f"built {key} on {device} in {time.perf_counter() - t:.1f} s", flush=True)

    plan = [("1B", ["1B", "1B"], [(2, 1), (2, 16), (0, 1), (0, 16), (1, 1), (1, 16)]),
            ("7B", ["1B"], [(1, 1), (1, 16), (0, 1), (0, 16)])]
    for base_size, arm_sizes, cases in plan:
        suite.guard(f"build {base_size}", lambda: build(base_size, base_size, arm_sizes))
        if base_size not in holder:
            continue
        models = holder[base_size]
        suite.guard(f"{base_size}: agreement", lambda: agreement_rows(models, f"{base_size} + {len(arm_sizes)} ARMs",
                                                                    {n: 1.0 for n in models.objectives}))
        for k, batch in cases:
            if k == 0:
                suite.guard(f"{base_size} HF eager batch {batch}", lambda: hf_timing(models, base_size, batch, False))
            for mode in (fast, "dynamic"):
                suite.guard(f"{base_size} + {k} batch {batch} {mode}", lambda: timing(models, base_size, k, batch, mode))
        del models
        if base_size == "7B":  # memory: keep the 1B set only
            holder.pop("7B")
    for base_size in ("1B", "7B"):
        for batch in (1, 16):
            if not on_gpu:
                continue  # transformers compiles the static path on CUDA only
            if base_size not in holder:
                suite.guard(f"build {base_size} base", lambda: build(base_size, base_size, []))
            if base_size in holder:
                suite.guard(f"{base_size} HF static batch {batch}", lambda: hf_timing(holder[base_size], base_size, batch, True))
        holder.pop(base_size, None)

    # 3. The targets, from what was measured above.
    def check(label: str, value: float | None, target: str, ok: Callable[[float], bool], detail: str = "") -> None:
        if value is None:
            report.add(Result(label, float("nan"), "tok/s", target, None, "not measured"))
        else:
            report.add(Result(label, value, "tok/s", target, ok(value), detail))

    m = suite.measured
    for batch, factor in ((1, 5), (16, 3)):
        before = BEFORE[("1B", 2, batch)]
        key = ("1B", 2, batch, fast)
        share = suite.share.get(key, 0.0)
        floor = " and >= 25% of the floor" if batch == 1 else ""
        check(f"target: 1B + 2 x 1B ARMs, batch {batch}, {fast}", m.get(key),
              f">= {factor * before:.0f} ({factor}x the eager engine's {before}){floor}",
              lambda v: v >= factor * before and (batch != 1 or share >= 0.25), f"{share:.1%} of the floor")
    for base_size in ("1B", "7B"):
        for batch in (1, 16):
            hf = m.get((base_size, 0, batch, "hf-static"))
            check(f"target: {base_size} base alone, batch {batch}, {fast}", m.get((base_size, 0, batch, fast)),
                  f">= HF static+compiled ({'not measured' if hf is None else f'{hf:.0f}'})",
                  lambda v: None if hf is None else v >= hf)
    print(f"suite finished in {suite.elapsed():.0f} s with {suite.failures} failure(s)", flush=True)
    return report


def lora_model_set(shape: tuple, tokenizer, device: str, dtype: torch.dtype) -> ModelSet:
    """A base and two random LoRA ARMs sharing one PeftModel (what ``load_model_set`` makes of LoRA ARMs)."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(random_llama(shape, 0, tokenizer, device, dtype), lora, adapter_name="objective0")
    peft_model.add_adapter("objective1", lora)
    peft_model.to(device=device, dtype=dtype).eval()
    spec = ModelSpec(path="<in memory>", dtype=str(dtype).removeprefix("torch."), device=device)
    base = LoadedModel(BASE, peft_model, tokenizer, spec, adapter_name="__base__")
    arms = {n: LoadedModel(n, peft_model, tokenizer, spec, adapter_name=n) for n in ("objective0", "objective1")}
    config = ModelSetConfig(base=spec, objectives=tuple(ObjectiveSpec(n, spec) for n in arms), name="smoke-lora")
    return ModelSet(config=config, base=base, arms=arms, vocab_size=VOCAB)
