"""``python -m genarm_core train-arm``: train one objective's ARM from a preference file."""

from __future__ import annotations

import argparse


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train-arm", help="train an autoregressive reward model for one objective")
    t.add_argument("--base", required=True, help="base/SFT model folder or hub id the ARM starts from")
    t.add_argument("--data", required=True, help="preference file (JSONL, JSON, Parquet, CSV, .gz)")
    t.add_argument("--format", required=True, choices=["trl", "hh", "pku", "oasst", "dashboard"])
    t.add_argument("--objective", required=True, help="objective name, e.g. helpfulness")
    t.add_argument("--out", required=True, help="output folder")
    t.add_argument("--eval-data", help="held-out preference file (same format); default: hold out --eval-fraction")
    t.add_argument("--eval-fraction", type=float, default=0.1)
    t.add_argument("--pku-label", choices=["better", "safer"], help="PKU-SafeRLHF label (default: from the objective name)")
    t.add_argument("--beta-r", type=float, default=0.05, help="β_r of the ARM loss")
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--epochs", type=float, default=1.0)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--grad-accum", type=int, default=4)
    lora = t.add_mutually_exclusive_group()
    lora.add_argument("--lora", dest="lora", action="store_true", default=True, help="train a LoRA adapter (default)")
    lora.add_argument("--full", dest="lora", action="store_false", help="full fine-tune instead of LoRA")
    t.add_argument("--lora-r", type=int, default=8)
    t.add_argument("--lora-alpha", type=int, default=16)
    t.add_argument("--lora-dropout", type=float, default=0.05)
    t.add_argument("--length-normalize", action="store_true")
    t.add_argument("--max-prompt-tokens", type=int, default=384)
    t.add_argument("--max-response-tokens", type=int, default=256)
    t.add_argument("--max-pairs", type=int)
    t.add_argument("--template", help="prompt template with {prompt}")
    t.add_argument("--bf16", action="store_true")
    t.add_argument("--save-steps", type=int, default=200)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--resume", action="store_true", help="resume from the newest checkpoint in OUT/checkpoints")
    t.set_defaults(func=cmd_train_arm)


def cmd_train_arm(args: argparse.Namespace) -> int:
    from .data import load_pairs

    pairs, summary = load_pairs(args.data, args.format, objective=args.objective, pku_label=args.pku_label)
    print(f"train data: {summary}")
    eval_pairs = None
    if args.eval_data:
        eval_pairs, eval_summary = load_pairs(args.eval_data, args.format, objective=args.objective, pku_label=args.pku_label)
        print(f"eval data: {eval_summary}")

    from .trainer import ARMTrainingConfig, train_arm

    cfg = ARMTrainingConfig(
        objective=args.objective, base=args.base, beta_r=args.beta_r, learning_rate=args.lr, epochs=args.epochs,
        batch_size=args.batch_size, grad_accum=args.grad_accum, lora=args.lora, lora_r=args.lora_r,
        lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, length_normalize=args.length_normalize,
        max_prompt_tokens=args.max_prompt_tokens, max_response_tokens=args.max_response_tokens,
        template=args.template, eval_fraction=args.eval_fraction, bf16=args.bf16, save_steps=args.save_steps,
        seed=args.seed, max_pairs=args.max_pairs,
    )
    metrics = train_arm(cfg, pairs, args.out, eval_pairs=eval_pairs, resume=args.resume)
    print(f"saved the {metrics['kind']} ARM to {args.out}; add it to a model-set file with:")
    print((__import__("pathlib").Path(args.out) / "model_set_entry.yaml").read_text())
    return 0
