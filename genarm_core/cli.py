"""Command line: ``genarm generate | train-arm | train-rm | demo | smollm2`` (also ``python -m genarm_core ...``).

Decoding options come from ``DecodingConfig`` (help and defaults included); a model set's
``defaults:`` fill every option not given, as in the dashboard. Weights are checked against the
set's ranges, as in the dashboard. Errors go to stderr as one line with exit code 2, never a
stack trace.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any, Sequence

from .cli_args import HelpFormatter, add_fields, field_values
from .config import BEST_OF_N_METHODS, METHODS, DecodingConfig

#: Best-of-N's N when ``--n`` is not given.
DEFAULT_BEST_OF_N = 8
DEFAULT_ARGS_K = 10  # the ARGS paper's k


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
    for i, p in enumerate(prompts, 1):
        if (isinstance(p, str) and not p.strip()) or not p:
            raise CLIError(f"prompt {i} is empty")
    return prompts


def decoding_config(args: argparse.Namespace, defaults: DecodingConfig) -> DecodingConfig:
    """The model set's defaults, with every option given on the command line on top."""
    given = field_values(args, DecodingConfig)
    return dataclasses.replace(defaults, **given)


def cmd_generate(args: argparse.Namespace) -> int:
    from .builtin import resolve_model_set
    from .config import ConfigError, ModelSetConfig
    from .engine import GenARMEngine
    from .loading import load_model_set

    prompts = _read_prompts(args)
    config = ModelSetConfig.from_file(resolve_model_set(args.models))
    n = args.n if args.n is not None else (DEFAULT_BEST_OF_N if args.method in BEST_OF_N_METHODS else 1)
    weights = parse_weights(args.weights)
    if args.method == "args":
        n = args.args_topk
        if args.args_weight is not None:  # one w for every objective that has a reward model, unless --weights names it
            if not config.reward_models:
                raise CLIError("--method args: this model set has no 'reward_models:' (genarm train-rm trains one)")
            weights = {**{name: args.args_weight for name, _ in config.reward_models}, **weights}
    elif args.args_weight is not None or args.args_topk != DEFAULT_ARGS_K:
        raise CLIError("--args-topk/--args-weight are for --method args")
    try:
        setting = config.setting(args.method, weights, n)
    except ConfigError as exc:
        raise CLIError(f"--weights/--method/--n/--args-topk: {exc}") from None
    cfg = decoding_config(args, config.defaults)
    if cfg.max_new_tokens > config.max_new_tokens_cap:
        raise CLIError(f"--max-new-tokens {cfg.max_new_tokens} is over this model set's cap of {config.max_new_tokens_cap}")
    engine = GenARMEngine(load_model_set(config))
    results = engine.generate([setting.row(p) for p in prompts], cfg)
    for r in results:
        if args.json:
            print(json.dumps({**r.to_dict(), "setting": setting.to_dict(), "settings": cfg.to_dict(),
                              "model_set": config.name}, ensure_ascii=False))
        else:
            print(r.text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .builtin import BUILTIN, DEFAULT

    p = argparse.ArgumentParser(prog="genarm", description="GenARM: multi-objective reward-guided decoding.",
                                formatter_class=HelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="generate with a model set", formatter_class=HelpFormatter,
                       description="Generate completions; one line (or one JSON object with --json) per prompt.")
    g.add_argument("--models", default=DEFAULT,
                   help=f"model-set YAML file, or a built-in set: {', '.join(f'{k} ({v})' for k, v in BUILTIN.items())}")
    g.add_argument("--prompt", action="append", help="a prompt (repeatable)")
    g.add_argument("--prompt-file", help="one prompt per line: text, a JSON string, {\"prompt\": ...}, or a chat as a JSON list")
    g.add_argument("--weights", default="", help="per-objective weights, e.g. helpfulness=1.0,harmlessness=0.5 (omitted: 0)")
    g.add_argument("--method", default="genarm", choices=list(METHODS),
                   help="decoding method (args, bon_rm: with the set's reward_models; prompted: the objectives' "
                        "prompted: system prompts; README, Methods)")
    g.add_argument("--n", type=int, help=f"samples for best_of_n and bon_rm (default: {DEFAULT_BEST_OF_N})")
    g.add_argument("--args-topk", type=int, default=DEFAULT_ARGS_K, help="ARGS: candidates per step (k)")
    g.add_argument("--args-weight", type=float,
                   help="ARGS: the weight w of every objective's reward model (--weights sets them one by one)")
    g.add_argument("--json", action="store_true", help="one JSON object per prompt (with the per-token trace only with --trace)")
    dec = g.add_argument_group("decoding (DecodingConfig; unset options take the model set's defaults)")
    add_fields(dec, DecodingConfig, skip=("score_all",),
               defaults={f.name: argparse.SUPPRESS for f in dataclasses.fields(DecodingConfig)},
               default_note="")
    for action in dec._group_actions:
        name = action.dest
        default = next(f.default for f in dataclasses.fields(DecodingConfig) if f.name == name)
        shown = list(default) if isinstance(default, tuple) else default
        action.help = f"{action.help} (default: the model set's, else {shown})"
    g.set_defaults(func=cmd_generate)

    from .training.cli import add_train_parser
    add_train_parser(sub)
    from .demo.cli import add_demo_parser
    add_demo_parser(sub)
    from .smollm2.cli import add_smollm2_parser
    add_smollm2_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .config import ConfigError
    from .loading import ModelSetError
    from .smollm2.fetch import FetchError

    try:
        return args.func(args)
    except (CLIError, ConfigError, ModelSetError, FetchError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
