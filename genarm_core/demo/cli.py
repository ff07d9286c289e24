"""``python -m genarm_core demo build|eval``."""

from __future__ import annotations

import argparse


def add_demo_parser(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("demo", help="the built-in demo model set")
    dsub = d.add_subparsers(dest="demo_command", required=True)
    b = dsub.add_parser("build", help="build (or find in the cache) the demo model set and print its model-set file")
    b.add_argument("--cache-dir", help="cache folder (default: the user cache, or $GENARM_CACHE_DIR)")
    b.add_argument("--force", action="store_true", help="rebuild even if cached")
    b.set_defaults(func=cmd_build)
    e = dsub.add_parser("eval", help="grid of (α_help, α_harm) on held-out prompts, classified by the generator's labels")
    e.add_argument("--cache-dir")
    e.add_argument("--grid", default="0,1,2", help="comma-separated weights for each axis")
    e.add_argument("--prompts", type=int, default=40, help="held-out prompts per kind (benign, harmful)")
    e.add_argument("--samples", type=int, default=2, help="samples per prompt and grid point")
    e.add_argument("--html", help="write the plotly chart to this HTML file")
    e.add_argument("--families", choices=["held-out", "training"], default="held-out",
                   help="prompts of the held-out families (default) or of the families trained on")
    e.set_defaults(func=cmd_eval)


def cmd_build(args: argparse.Namespace) -> int:
    from .build import ensure_demo

    print(ensure_demo(cache_dir=args.cache_dir, force=args.force))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .build import ensure_demo
    from .evaluate import run_grid

    grid = [float(x) for x in args.grid.split(",")]
    run_grid(ensure_demo(cache_dir=args.cache_dir), grid=grid, n_prompts=args.prompts, samples=args.samples, html=args.html,
             families=args.families)
    return 0
