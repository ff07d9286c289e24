"""GPU suite (``python -m benchmarks --gpu``): tokens/s against the memory-bandwidth floor.

One run prints, for a 1B base with 0, 1 and 2 1B ARMs and a 7B base with a 1B ARM, at batch 1
and 16: HF ``generate()`` eager and static-cache compiled (base alone), the engine eager (dynamic
cache) and graphed (static cache, each step one CUDA graph), and each as a share of the floor
(Σ weight bytes of the models that run ÷ measured copy bandwidth: at these batch sizes a step
must read every weight once). It checks first that the graphed path gives the eager path's
tokens (bf16: the share of identical tokens and the largest log-prob difference are printed).

Models are random-initialised Llama models built directly on the GPU in bf16 (timing does not
depend on the weights' values; nothing is written to disk), wrapped in the project's own
``ModelSet`` so that the engine runs exactly as it does on loaded models.
"""

from __future__ import annotations

import gc
import time

import torch

from genarm_core.config import DecodingConfig, ModelSetConfig, ModelSpec, ObjectiveSpec, RowSpec
from genarm_core.engine import GenARMEngine
from genarm_core.loading import BASE, LoadedModel, ModelSet

from .common import SIZES, Report, Result, median_time, prompt_of, word_tokenizer

VOCAB = 32000
N_TOKENS = 128


def copy_bandwidth(gib: float = 2.0) -> float:
    """Device-to-device copy bandwidth in bytes/s (read + write counted, as for a weight read)."""
    n = int(gib * 2**30) // 2
    a = torch.empty(n, dtype=torch.bfloat16, device="cuda")
    b = torch.empty_like(a)
    t = median_time(lambda: b.copy_(a), 5)
    return 2 * a.numel() * a.element_size() / t


def llama_on_gpu(size: str, seed: int, tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    h, layers, heads, kv, inter = SIZES[size]
    cfg = LlamaConfig(hidden_size=h, intermediate_size=inter, num_hidden_layers=layers, num_attention_heads=heads,
                      num_key_value_heads=kv, vocab_size=VOCAB, max_position_embeddings=2048, tie_word_embeddings=False,
                      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    torch.manual_seed(seed)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
    model.requires_grad_(False)
    model.generation_config.eos_token_id = None  # random models: never stop early
    return model


def model_set(base_size: str, arm_sizes: list[str], tokenizer) -> ModelSet:
    spec = ModelSpec(path="<in memory>", dtype="bfloat16", device="cuda")
    base = LoadedModel(BASE, llama_on_gpu(base_size, 0, tokenizer), tokenizer, spec)
    arms = {f"objective{i}": LoadedModel(f"objective{i}", llama_on_gpu(s, i + 1, tokenizer), tokenizer, spec)
            for i, s in enumerate(arm_sizes)}
    config = ModelSetConfig(base=spec, objectives=tuple(ObjectiveSpec(n, spec) for n in arms), name=f"{base_size}+{arm_sizes}")
    return ModelSet(config=config, base=base, arms=arms, vocab_size=VOCAB)


def weight_bytes(models: list[LoadedModel]) -> int:
    return sum(p.numel() * p.element_size() for m in models for p in m.model.parameters())


def check_graph_equals_eager(models: ModelSet, weights: dict[str, float], batch: int) -> tuple[float, float]:
    """(share of identical tokens, largest per-token log-prob difference) of graphed vs dynamic decoding."""
    rows = [RowSpec(prompt_of(24 + i), weights) for i in range(batch)]
    cfg = DecodingConfig(temperature=0, max_new_tokens=32, stop_at_eos=False, trace=True)
    eager = GenARMEngine(models, decode="dynamic").generate(rows, cfg)
    graphed = GenARMEngine(models, decode="graph").generate(rows, cfg)
    same = total = 0
    worst = 0.0
    for a, b in zip(eager, graphed):
        for i, (x, y) in enumerate(zip(a.token_ids, b.token_ids)):
            total += 1
            same += x == y
            if a.token_ids[:i] == b.token_ids[:i]:  # compare log-probs while the prefixes agree
                worst = max(worst, abs(a.trace[i]["combined_logprob"] - b.trace[i]["combined_logprob"]))
    return same / total, worst


def engine_tok_s(engine: GenARMEngine, rows: list[RowSpec], reps: int) -> tuple[float, float | None]:
    """Generated tokens/s (all rows) with prefill excluded, and the graph capture time if any."""
    def run(n: int):
        return engine.generate(rows, DecodingConfig(temperature=1.0, max_new_tokens=n, seed=0, stop_at_eos=False))

    run(N_TOKENS)  # warm-up (and capture)
    capture = engine.last_decode.get("capture_seconds")
    per_tok = (median_time(lambda: run(N_TOKENS), reps) - median_time(lambda: run(2), reps)) / (N_TOKENS - 2)
    return len(rows) / per_tok, capture


def hf_tok_s(model, batch: int, static: bool, reps: int) -> float:
    ids = torch.tensor([[5 + (i * 37) % 900 for i in range(32)]] * batch, device="cuda")
    kwargs = dict(attention_mask=torch.ones_like(ids), do_sample=False, pad_token_id=1)
    if static:
        kwargs["cache_implementation"] = "static"

    def run(n: int):
        model.generate(ids, max_new_tokens=n, min_new_tokens=n, **kwargs)

    run(N_TOKENS)
    run(N_TOKENS)  # the static path compiles on its first calls
    per_tok = (median_time(lambda: run(N_TOKENS), reps) - median_time(lambda: run(2), reps)) / (N_TOKENS - 2)
    return batch / per_tok


def run_gpu_suite(quick: bool = False) -> Report:
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run the CPU suite (python -m benchmarks)")
    reps = 2 if quick else 3
    report = Report()
    bw = copy_bandwidth()
    report.add(Result("device copy bandwidth", bw / 1e9, "GB/s"))
    tok = word_tokenizer(VOCAB)
    t0 = time.perf_counter()
    configs = [("1B", ["1B", "1B"]), ("7B", ["1B"])]
    for base_size, arm_sizes in configs:
        models = model_set(base_size, arm_sizes, tok)
        print(f"built {base_size} + {arm_sizes} on the GPU in bf16 ({time.perf_counter() - t0:.0f} s so far)", flush=True)
        names = models.objectives
        for k in range(len(names) + 1):
            weights = {names[i]: 1.0 for i in range(k)}
            members = [models.base] + [models.arms[names[i]] for i in range(k)]
            floor_step = weight_bytes(members) / bw  # seconds per step at the bandwidth floor
            same, worst = check_graph_equals_eager(models, weights, 2)
            report.add(Result(f"{base_size} + {k} ARM: graphed = eager tokens (greedy, bf16)", same * 100, "%", "",
                              None, f"largest combined log-prob difference {worst:.3g}"))
            for batch in (1, 16):
                rows = [RowSpec(prompt_of(32), weights, method="genarm" if k else "base")] * batch
                label = f"{base_size} base + {k} x {arm_sizes[0] if k else ''} ARM, batch {batch}".replace(" x  ARM", " ARMs")
                if k == 0:
                    for static in (False, True):
                        tps = hf_tok_s(models.base.model, batch, static, reps)
                        report.add(Result(f"{label}: HF generate() {'static+compiled' if static else 'eager'}", tps,
                                          "tok/s", "", None, f"{tps * floor_step / batch:.1%} of the floor"))
                for mode in ("dynamic", "graph"):
                    tps, capture = engine_tok_s(GenARMEngine(models, decode=mode), rows, reps)
                    extra = f"; graph capture {capture * 1e3:.0f} ms" if capture else ""
                    report.add(Result(f"{label}: engine {'eager' if mode == 'dynamic' else 'graphed'}", tps, "tok/s", "",
                                      None, f"{tps * floor_step / batch:.1%} of the floor ({batch / floor_step:.0f} tok/s){extra}"))
        del models
        gc.collect()
        torch.cuda.empty_cache()
    return report
