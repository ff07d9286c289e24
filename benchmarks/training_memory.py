"""``python -m benchmarks.training_memory``: peak memory and seconds per pair of ARM training on a real model.

The run the issue measured: a LoRA ARM on SmolLM2-135M-Instruct (vocabulary 49,152) from
Anthropic HH-RLHF pairs with 96 prompt + 48 response tokens, batch 8. Each variant runs in its own
process, so its peak resident memory (``ru_maxrss``) is its own:

- ``full``: the log-probs the way the trainer used to take them, ``log_softmax`` over every
  position's whole vocabulary and then one value picked per token (batch × length × 49,152 floats,
  kept for the backward);
- ``no-checkpointing``: ``genarm_core.models.scoring.response_logps``, the output layer applied to
  response positions only, in chunks, with a selective log-softmax; every layer's activations kept;
- ``project``: the trainer's defaults, that and gradient checkpointing (each layer's activations
  recomputed in the backward pass).

Both train the same pairs for the same steps (``--pairs``, default 64) and then evaluate
``--eval-pairs`` held-out pairs (default 230) with the trainer's own evaluation. The base comes
from the built-in ``smollm2`` set (built first if needed); the data from ``--data`` (HH-RLHF
JSONL, gzipped or not).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time


def _child(variant: str, base: str, data: str, pairs: int, eval_pairs: int, batch: int) -> dict:
    import torch

    import genarm_core.training.trainer as trainer_mod
    from genarm_core.decoding.math import masked_sum
    from genarm_core.training.config import ARMTrainingConfig
    from genarm_core.training.data import load_pairs

    if variant == "full":
        def full_logps(model, input_ids, attention_mask, response_mask, length_normalize=False):
            logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()
            logps = torch.log_softmax(logits, -1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
            return masked_sum(logps, response_mask[:, 1:], length_normalize)

        trainer_mod.response_logps = full_logps
    all_pairs, _ = load_pairs(data, "hh")
    train, held = all_pairs[:pairs], all_pairs[pairs:pairs + eval_pairs]
    cfg = ARMTrainingConfig(base=base, chat_template=True, objective="harmlessness", max_prompt_tokens=96, max_response_tokens=48,
                            batch_size=batch, grad_accum=1, epochs=1, learning_rate=5e-4, beta_r=0.1,
                            gradient_checkpointing=variant == "project")
    with tempfile.TemporaryDirectory(prefix="genarm-bench-") as out:
        t0 = time.perf_counter()
        metrics = trainer_mod.train_arm(cfg, train, out, eval_pairs=held, progress=False, log=lambda s: None)
        total = time.perf_counter() - t0
    return {"variant": variant, "seconds_per_pair": metrics["seconds_per_pair"], "train_seconds": metrics["train_seconds"],
            "run_seconds": total, "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "accuracy_after": metrics["after"]["pairwise_accuracy"]}


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.training_memory", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="HH-RLHF JSONL (e.g. harmless-base test.jsonl.gz)")
    p.add_argument("--pairs", type=int, default=64, help="training pairs (one epoch)")
    p.add_argument("--eval-pairs", type=int, default=230, help="held-out pairs evaluated before and after")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--variants", default="project,no-checkpointing,full",
                   help="comma-separated: project, no-checkpointing, full")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--base", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.base, args.data, args.pairs, args.eval_pairs, args.batch_size)))
        return

    from genarm_core.models.config import ModelSetConfig
    from genarm_core.smollm2.build import ensure_smollm2

    base = str(ModelSetConfig.from_file(ensure_smollm2()).base.path)
    print(f"LoRA ARM on SmolLM2-135M-Instruct, {args.pairs} HH pairs (96 + 48 tokens, batch {args.batch_size}), "
          f"{args.eval_pairs} held-out pairs evaluated before and after")
    print(f"{'variant':<10} {'s/pair':>8} {'train s':>8} {'whole run s':>12} {'peak GiB':>9} {'held-out acc':>13}")
    for variant in args.variants.split(","):
        cmd = [sys.executable, "-m", "benchmarks.training_memory", "--child", variant, "--base", base,
               "--data", args.data, "--pairs", str(args.pairs), "--eval-pairs", str(args.eval_pairs),
               "--batch-size", str(args.batch_size)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        print(f"{variant:<10} {r['seconds_per_pair']:>8.2f} {r['train_seconds']:>8.1f} {r['run_seconds']:>12.1f} "
              f"{r['peak_gib']:>9.2f} {r['accuracy_after']:>13.2f}")


if __name__ == "__main__":
    main()
