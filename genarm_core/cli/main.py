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

from genarm_core.cli.options import HelpFormatter, add_fields, field_values
from genarm_core.decoding.methods import METHODS
from genarm_core.models.config import DecodingConfig


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


def parse_options(items: Sequence[str]) -> list[tuple[str, int]]:
    """``["block=8"]`` -> ``[("block", 8)]``: a method's own whole-number parameters."""
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out.append((name.strip(), int(value)))
        except ValueError:
            raise CLIError(f"--option: expected NAME=WHOLE_NUMBER, got {item!r}") from None
    return out


def _read_prompts(args: argparse.Namespace) -> list[Any]:
    from genarm_core.models.prompts import PromptFileError, read_prompt_file

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
    from genarm_core.models.builtin import resolve_model_set
    from genarm_core.models.config import ConfigError, ModelSetConfig
    from genarm_core.decoding.engine import GenARMEngine
    from genarm_core.models.loading import load_model_set

    prompts = _read_prompts(args)
    config = ModelSetConfig.from_file(resolve_model_set(args.models))
    method = METHODS[args.method]
    if args.n is not None and method.n_meaning is None:
        raise CLIError(f"--n: {method.label} has no N; --n is for {[m.name for m in METHODS.values() if m.n_meaning]}")
    n = args.n if args.n is not None else method.default_n
    weights = parse_weights(args.weights)
    if args.rm_weight is not None:  # one w for every objective that has a reward model, unless --weights names it
        if not method.uses_reward_models:
            raise CLIError(f"--rm-weight: {method.label} does not rank by reward models; it is for "
                           f"{[m.name for m in METHODS.values() if m.uses_reward_models]}")
        if not config.reward_models:
            raise CLIError(f"--method {method.name}: this model set has no 'reward_models:' (genarm train-rm trains one)")
        weights = {**{name: args.rm_weight for name, _ in config.reward_models}, **weights}
    try:
        options = dict(parse_options(args.option))
        setting = config.setting(args.method, weights, n, options)
    except ConfigError as exc:
        raise CLIError(f"--weights/--method/--n/--option: {exc}") from None
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
    from genarm_core.models.builtin import BUILTIN, DEFAULT

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
                   help="decoding method: " + "; ".join(f"{m.name}: {m.summary}" for m in METHODS.values()))
    g.add_argument("--n", "--args-topk", dest="n", type=int,
                   help="N for the methods that have one (default: the method's): "
                        + ", ".join(f"{m.name}: {m.n_meaning}, default {m.default_n}" for m in METHODS.values()
                                    if m.n_meaning))
    g.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="a method's own parameter (repeatable): " + (", ".join(
                       f"{m.name}: {k} ({o.help}, default {o.default})" for m in METHODS.values()
                       for k, o in m.options.items()) or "none yet"))
    g.add_argument("--rm-weight", "--args-weight", dest="rm_weight", type=float,
                   help="the weight w of every objective's reward model, for the methods that rank by reward models "
                        "(--weights sets them one by one)")
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

    from genarm_core.training.cli import add_train_parser
    add_train_parser(sub)
    from genarm_core.demo.cli import add_demo_parser
    add_demo_parser(sub)
    from genarm_core.smollm2.cli import add_smollm2_parser
    add_smollm2_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from genarm_core.models.config import ConfigError
    from genarm_core.models.loading import ModelSetError
    from genarm_core.smollm2.fetch import FetchError

    try:
        return args.func(args)
    except (CLIError, ConfigError, ModelSetError, FetchError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
