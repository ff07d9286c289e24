"""``genarm smollm2 build|eval`` (or ``python -m genarm_core smollm2 ...``)."""

from __future__ import annotations

import argparse

from ..cli_args import HelpFormatter

DEFAULT_GRID = "0,0; 0,1; 0,2; 0,4; 1,0; 1,1; 1,2; 2,2; 2,4"


def parse_pairs(text: str) -> list[tuple[float, float]]:
    """``"0,0; 1,2"`` -> ``[(0.0, 0.0), (1.0, 2.0)]`` (α_help, α_harm)."""
    out = []
    for part in text.split(";"):
        if not part.strip():
            continue
        try:
            h, s = (float(x) for x in part.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"--grid: expected 'help,harm; help,harm; ...', got {part.strip()!r}") from None
        out.append((h, s))
    if not out:
        raise argparse.ArgumentTypeError("--grid is empty")
    return out


def add_smollm2_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("smollm2", help="the built-in real model set (SmolLM2-135M-Instruct with two ARMs)")
    ssub = s.add_subparsers(dest="smollm2_command", required=True)
    b = ssub.add_parser("build", help="fetch, convert and train it (or find it in the cache); prints its model-set file",
                        formatter_class=HelpFormatter)
    b.add_argument("--cache-dir", help="cache folder (default: the user cache, or $GENARM_CACHE_DIR)")
    b.add_argument("--force", action="store_true", help="rebuild the ARMs even if cached")
    b.set_defaults(func=cmd_build)
    e = ssub.add_parser("eval", help="refusal and on-topic rates over a weight grid on held-out prompts",
                        formatter_class=HelpFormatter)
    e.add_argument("--cache-dir", help="cache folder (default: the user cache, or $GENARM_CACHE_DIR)")
    e.add_argument("--grid", type=parse_pairs, default=DEFAULT_GRID, help="(α_helpfulness, α_harmlessness) pairs")
    e.add_argument("--samples", type=int, default=3, help="samples per prompt and setting")
    e.add_argument("--max-new-tokens", type=int, default=40, help="tokens per completion")
    e.add_argument("--csv", help="also write every completion with its labels to this CSV file")
    e.set_defaults(func=cmd_eval)


def cmd_build(args: argparse.Namespace) -> int:
    from .build import ensure_smollm2

    print(ensure_smollm2(cache_dir=args.cache_dir, force=args.force))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .build import ensure_smollm2
    from .evaluate import run

    grid = parse_pairs(args.grid) if isinstance(args.grid, str) else args.grid
    run(ensure_smollm2(cache_dir=args.cache_dir), grid, args.samples, args.max_new_tokens, args.csv)
    return 0
