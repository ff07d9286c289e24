"""``genarm smollm2 build`` (or ``python -m genarm_core smollm2 build``).

Its evaluation is a study (``genarm_core/smollm2/study.yaml``): ``genarm study run smollm2``, or
``genarm smollm2 eval``, which is the same command.
"""

from __future__ import annotations

import argparse

from genarm_core.cli.options import HelpFormatter

def add_smollm2_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("smollm2", help="the built-in real model set (SmolLM2-135M-Instruct with two ARMs)")
    ssub = s.add_subparsers(dest="smollm2_command", required=True)
    b = ssub.add_parser("build", help="fetch, convert and train it (or find it in the cache); prints its model-set file",
                        formatter_class=HelpFormatter)
    b.add_argument("--cache-dir", help="cache folder (default: the user cache, or $GENARM_CACHE_DIR)")
    b.add_argument("--force", action="store_true", help="rebuild the ARMs even if cached")
    b.set_defaults(func=cmd_build)


def cmd_build(args: argparse.Namespace) -> int:
    from .build import ensure_smollm2

    print(ensure_smollm2(cache_dir=args.cache_dir, force=args.force))
    return 0
