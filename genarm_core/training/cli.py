"""``genarm train-arm`` / ``genarm train-rm`` (or ``python -m genarm_core ...``): train one objective's
ARM, or a trajectory-level reward model (for ARGS and Best-of-N) from the same preference file, the
same formats and the same prompt-format rule. Every option of ``ARMTrainingConfig`` that applies is
a flag, with its help and default."""

from __future__ import annotations

import argparse
from pathlib import Path

from genarm_core.cli.options import HelpFormatter, add_fields, field_values
from .config import ARMTrainingConfig
from .data import FORMATS


#: ARM-only settings that a trajectory reward model does not use
RM_SKIP = ("beta_r", "length_normalize", "sft_weight", "untie_embeddings")


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    for name, reward_model in (("train-arm", False), ("train-rm", True)):
        what = "a trajectory-level reward model (ARGS, Best-of-N by a reward model)" if reward_model else \
            "an autoregressive reward model"
        t = sub.add_parser(name, help=f"train {what} for one objective", formatter_class=HelpFormatter,
                           description=__doc__)
        io = t.add_argument_group("data and output")
        io.add_argument("--data", required=True, help="preference file (JSONL, JSON, Parquet, CSV, .gz)")
        io.add_argument("--format", required=True, choices=FORMATS, help="the file's format")
        io.add_argument("--out", required=True, help="output folder (adapter or model, tokenizer, metrics, model_set_entry.yaml)")
        io.add_argument("--eval-data", help="held-out preference file (same format); default: hold out --eval-fraction")
        io.add_argument("--pku-label", choices=["better", "safer"], help="PKU-SafeRLHF label (default: from the objective name)")
        io.add_argument("--resume", action="store_true", help="resume from the newest checkpoint in OUT/checkpoints")
        hp = t.add_argument_group("training (ARMTrainingConfig)")
        add_fields(hp, ARMTrainingConfig, aliases={"learning_rate": ["--lr"]}, skip=RM_SKIP if reward_model else ())
        hp.add_argument("--full", dest="lora", action="store_false", help="the same as --no-lora: fine-tune every weight")
        t.set_defaults(func=cmd_train_arm, reward_model=reward_model)


def cmd_train_arm(args: argparse.Namespace) -> int:
    from .data import load_pairs

    pairs, summary = load_pairs(args.data, args.format, objective=args.objective, pku_label=args.pku_label)
    print(f"train data: {summary}")
    eval_pairs = None
    if args.eval_data:
        eval_pairs, eval_summary = load_pairs(args.eval_data, args.format, objective=args.objective, pku_label=args.pku_label)
        print(f"eval data: {eval_summary}")

    from .trainer import train_arm

    values = field_values(args, ARMTrainingConfig)
    cfg = ARMTrainingConfig(**values)
    metrics = train_arm(cfg, pairs, args.out, eval_pairs=eval_pairs, resume=args.resume, reward_model=args.reward_model)
    what = "reward model" if args.reward_model else "ARM"
    print(f"saved the {metrics['kind']} {what} to {args.out}; add it to a model-set file with:")
    print((Path(args.out) / "model_set_entry.yaml").read_text())
    return 0
