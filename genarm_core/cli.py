"""Command line: ``python -m genarm_core generate | train-arm | demo``.

Errors go to stderr as one line with a non-zero exit code, never a stack trace.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence


class CLIError(Exception):
    pass


def parse_weights(text: str | None) -> dict[str, float]:
    """``"helpfulness=1.0,harmlessness=0.5"`` -> ``{"helpfulness": 1.0, "harmlessness": 0.5}``."""
    out: dict[str, float] = {}
    if not text:
        return out
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise CLIError(f"--weights: expected NAME=VALUE, got {part!r}")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise CLIError(f"--weights: {name.strip()!r} needs a number, got {value!r}") from None
    return out


def _read_prompts(args: argparse.Namespace) -> list[Any]:
    from .prompts import PromptFileError, read_prompt_file

    prompts: list[Any] = list(args.prompt or [])
    if args.prompt_file:
        try:
            prompts += read_prompt_file(args.prompt_file)
        except PromptFileError as exc:
            raise CLIError(f"--prompt-file: {exc}") from None
    if not prompts:
        raise CLIError("give --prompt TEXT (repeatable) or --prompt-file FILE")
    return prompts


def cmd_generate(args: argparse.Namespace) -> int:
    from .config import DecodingConfig, RowSpec
    from .engine import GenARMEngine
    from .loading import load_model_set

    prompts = _read_prompts(args)
    weights = parse_weights(args.weights)
    cfg = DecodingConfig(beta=args.beta, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                         max_new_tokens=args.max_new_tokens, seed=args.seed, stop=tuple(args.stop or ()),
                         trace=args.json or args.trace)
    rows = [RowSpec(p, weights, method=args.method, n=args.n) for p in prompts]
    engine = GenARMEngine(load_model_set(args.models))
    results = engine.generate(rows, cfg)
    for r in results:
        if args.json:
            print(json.dumps({**r.to_dict(), "settings": cfg.to_dict(), "model_set": engine.models.config.name},
                             ensure_ascii=False))
        else:
            print(r.text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m genarm_core", description="GenARM: multi-objective reward-guided decoding.")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="generate with a model set")
    g.add_argument("--models", required=True, help="model-set YAML file")
    g.add_argument("--prompt", action="append", help="a prompt (repeatable)")
    g.add_argument("--prompt-file", help="file with one prompt per line (text or JSON string / {\"prompt\": ...})")
    g.add_argument("--weights", default="", help="per-objective weights, e.g. helpfulness=1.0,harmlessness=0.5")
    g.add_argument("--method", default="genarm", choices=["genarm", "base", "best_of_n"])
    g.add_argument("--n", type=int, default=1, help="samples for best_of_n")
    g.add_argument("--beta", type=float, default=1.0)
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--top-k", type=int, default=0)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--max-new-tokens", type=int, default=64)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--stop", action="append", help="stop string (repeatable)")
    g.add_argument("--trace", action="store_true", help="record the per-token trace (always on with --json)")
    g.add_argument("--json", action="store_true", help="one JSON object per prompt")
    g.set_defaults(func=cmd_generate)

    from .training.cli import add_train_parser
    add_train_parser(sub)
    from .demo.cli import add_demo_parser
    add_demo_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .config import ConfigError
    from .loading import ModelSetError

    try:
        return args.func(args)
    except (CLIError, ConfigError, ModelSetError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
