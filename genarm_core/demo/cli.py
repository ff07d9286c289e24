"""``python -m genarm_core demo build``.

Its evaluation is a study (``genarm_core/demo/study.yaml``, ``study_training.yaml``): ``genarm study
run demo``, or ``genarm demo eval [--families training]``, which is the same command.
"""

from __future__ import annotations

import argparse


def add_demo_parser(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("demo", help="the built-in demo model set")
    dsub = d.add_subparsers(dest="demo_command", required=True)
    b = dsub.add_parser("build", help="build (or find in the cache) the demo model set and print its model-set file")
    b.add_argument("--cache-dir", help="cache folder (default: the user cache, or $GENARM_CACHE_DIR)")
    b.add_argument("--force", action="store_true", help="rebuild even if cached")
    b.set_defaults(func=cmd_build)


def cmd_build(args: argparse.Namespace) -> int:
    from .build import ensure_demo

    print(ensure_demo(cache_dir=args.cache_dir, force=args.force))
    return 0
