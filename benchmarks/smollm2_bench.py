"""The ``smollm2`` section of ``python -m benchmarks`` (also ``python -m benchmarks.smollm2_bench``).

The built-in real set (SmolLM2-135M-Instruct, a helpfulness ARM on its top 8 layers and a
harmlessness ARM on its top 16, LoRA adapters of one PeftModel), one process, 64 new tokens without
early stop, temperature 0.7, top-p 0.9, one chat prompt; every round runs each path once, in rotated
order, and the table keeps the medians. ms per token = the generation's wall time / 64 (the prefill
included: what a researcher waits for).

- **HF generate()**: transformers' ``generate`` of the base alone (a plain model, no adapters): the yardstick.
- **stacked** (``shared_trunk=False, prompt_cache_mb=0``: the engine before the trunk) against
  **trunk** (the shared trunk) for the base alone, GenARM with both ARMs, and the A/B pair
  (GenARM + base only: 4 rows); **trunk + prompt cache**: the pair again on the same prompt with other
  weights each round (a slider moved), its prefill from the kept KV caches.
- **F.linear**: the trunk's base alone, GenARM and pair again with every linear layer through
  ``F.linear`` (``skinny.plain_products``): what the skinny products save.

Also printed: the decoder layer-rows one step computes with and without the trunk.
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
import os
import statistics
import time

import torch

from .common import Report, Result

PROMPT = "What are some tips for staying focused while studying?"
TOKENS = 64


def run_smollm2_section(report: Report, rounds: int = 3, tokens: int = TOKENS, models: str = "smollm2") -> Report:
    from transformers import AutoModelForCausalLM

    from genarm_core.models.builtin import resolve_model_set
    from genarm_core.models.config import DecodingConfig, RowSpec
    from genarm_core.decoding.engine import GenARMEngine
    from genarm_core.models.loading import load_model_set
    from genarm_core.decoding.skinny import plain_products

    model_set = load_model_set(resolve_model_set(models))
    names = model_set.objectives
    stacked = GenARMEngine(model_set, shared_trunk=False, prompt_cache_mb=0)
    trunk = GenARMEngine(model_set, prompt_cache_mb=0)
    cached = GenARMEngine(model_set)
    cfg = DecodingConfig(temperature=0.7, top_p=0.9, max_new_tokens=tokens, seed=0, stop_at_eos=False)
    chat = [{"role": "user", "content": PROMPT}]
    hf_model = AutoModelForCausalLM.from_pretrained(model_set.config.base.path).eval()
    hf_model.generation_config.eos_token_id = None
    ids = torch.tensor([model_set.base.encode_prompt(chat)])

    def hf() -> None:
        torch.manual_seed(0)
        with torch.inference_mode():
            hf_model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=0.7, top_k=0,
                              top_p=0.9, max_new_tokens=tokens, min_new_tokens=tokens,
                              pad_token_id=model_set.tokenizer.pad_token_id)

    both = {n: 1.0 for n in names}
    genarm = [RowSpec(chat, both)]
    pair = [RowSpec(chat, both), RowSpec(chat, method="base")]
    alone = [RowSpec(chat, method="base")]
    moved = iter(range(10**6))
    rows_per_step: dict[str, tuple[int, int]] = {}

    tokens_of: dict[tuple, list[list[int]]] = {}  # (trunk?, F.linear?, methods) -> each row's tokens, last run

    def same(a: tuple, b: tuple) -> str:
        return "same tokens" if tokens_of[a] == tokens_of[b] else "TOKENS DIFFER"

    models = list({id(m.model): m.model for m in model_set.members()}.values())

    def engine_run(engine, rows, label, plain: bool = False):
        def run() -> None:
            with plain_products(models) if plain else nullcontext():
                results = engine.generate(rows, cfg)
            tokens_of[(engine is trunk, plain, tuple(r.method for r in rows))] = [r.token_ids for r in results]
            rows_per_step[label] = (engine.last_decode["layer_rows_per_step"], engine.last_decode["stacked_layer_rows_per_step"])
        return run

    def slider_moved() -> None:  # same prompt, new weights: the prefill from the kept caches
        w = 0.5 + 0.1 * (next(moved) % 10)
        cached.generate([RowSpec(chat, {names[0]: w, names[1]: 1.5 - w / 2}), RowSpec(chat, method="base")], cfg)
        assert cached.last_decode["prompt_cache_hits"] == 1

    paths = {"HF generate(), base alone": hf,
             "engine stacked, base alone": engine_run(stacked, alone, "base"),
             "engine trunk, base alone": engine_run(trunk, alone, "base"),
             "engine stacked, GenARM 2 ARMs": engine_run(stacked, genarm, "genarm stacked"),
             "engine trunk, GenARM 2 ARMs": engine_run(trunk, genarm, "genarm"),
             "engine stacked, A/B pair": engine_run(stacked, pair, "pair stacked"),
             "engine trunk, A/B pair": engine_run(trunk, pair, "pair"),
             "engine trunk + prompt cache, A/B pair (slider moved)": slider_moved,
             # the same without skinny products (every linear layer through F.linear): what they save
             "engine trunk, base alone, F.linear": engine_run(trunk, alone, "base", plain=True),
             "engine trunk, GenARM 2 ARMs, F.linear": engine_run(trunk, genarm, "genarm", plain=True),
             "engine trunk, A/B pair, F.linear": engine_run(trunk, pair, "pair", plain=True)}
    cached.generate(pair, cfg)  # holds the prompt's caches from here on
    for fn in paths.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in paths}
    order = list(paths)
    for r in range(rounds):
        shift = r % len(order)
        for k in order[shift:] + order[:shift]:
            t0 = time.perf_counter()
            paths[k]()
            times[k].append((time.perf_counter() - t0) / tokens)
        print(f"  round {r + 1}: " + ", ".join(f"{k} {times[k][-1] * 1e3:.0f} ms" for k in order), flush=True)
    ms = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    hf_ms = ms["HF generate(), base alone"]
    print(f"  smollm2, {tokens} tokens, {rounds} rotated rounds, {torch.get_num_threads()} threads; "
          f"layer-rows per step (trunk / stacked): " + ", ".join(f"{k} {a}/{b}" for k, (a, b) in rows_per_step.items()
                                                                 if "stacked" not in k), flush=True)
    targets = {"engine trunk, GenARM 2 ARMs": ("<= 1.6", 1.6), "engine trunk + prompt cache, A/B pair (slider moved)": ("<= 2.0", 2.0)}
    for k, v in ms.items():
        if k == "HF generate(), base alone":
            report.add(Result(f"8. smollm2: {k}", v, "ms/token", "", None, "the yardstick"))
            continue
        target, limit = targets.get(k, ("report", None))
        label = k.replace("engine ", "")
        detail = f"{v:.0f} ms per token"
        key = {"engine trunk, GenARM 2 ARMs": "genarm", "engine trunk, A/B pair": "pair"}.get(k)
        if key:
            a, b = rows_per_step[key]
            detail += f"; {a} layer-rows per step, {b} stacked"
        report.add(Result(f"8. smollm2: {label} ÷ HF generate() base alone", v / hf_ms, "x", target,
                          None if limit is None else v / hf_ms <= limit, detail))
    methods = {"base alone": ("base",), "GenARM 2 ARMs": ("genarm",), "A/B pair": ("genarm", "base")}
    for what in ("GenARM 2 ARMs", "A/B pair"):
        ratio = ms[f"engine trunk, {what}"] / ms[f"engine stacked, {what}"]
        report.add(Result(f"8. smollm2: {what}, trunk ÷ stacked ms per token", ratio, "x", "report", None,
                          same((True, False, methods[what]), (False, False, methods[what]))))
    for what in ("base alone", "GenARM 2 ARMs", "A/B pair"):
        ratio = ms[f"engine trunk, {what}"] / ms[f"engine trunk, {what}, F.linear"]
        report.add(Result(f"8. smollm2: {what}, skinny products ÷ F.linear ms per token", ratio, "x", "report", None,
                          "trunk; " + same((True, False, methods[what]), (True, True, methods[what]))))
    return report


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.smollm2_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--tokens", type=int, default=TOKENS)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--models", default="smollm2", help="a built-in set or a model-set file (default smollm2)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    report = run_smollm2_section(Report(), args.rounds, args.tokens, args.models)
    print("\n" + report.markdown())


if __name__ == "__main__":
    main()
