"""``python -m storage export|stats``: exports and a summary of a dashboard database."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Sequence

from .db import StorageError
from .export import FORMATS, export
from .store import JudgmentFilter, Store, parse_date


def _date(text: str) -> datetime:
    try:
        return parse_date(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser(prog: str = "python -m storage") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Export and summarise the dashboard's database.")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="export judgments")
    e.add_argument("--db", help="SQLAlchemy URL or SQLite file (default: $GENARM_DB or the user data folder)")
    e.add_argument("--format", required=True, choices=FORMATS)
    e.add_argument("--out", required=True, help="output file (.jsonl, .parquet for trl formats; .csv; .jsonl), a folder for hf")
    e.add_argument("--agreed", action="store_true",
                   help="trl formats: only pairs that two or more named annotators judged, all alike (one row each)")
    e.add_argument("--objective", help="use this objective's verdicts (and keep only judgments that have one)")
    e.add_argument("--annotator")
    e.add_argument("--model-set", help="model-set name")
    e.add_argument("--since", type=_date)
    e.add_argument("--until", type=_date)
    s = sub.add_parser("stats", help="what the database holds (win rates: genarm stats)")
    s.add_argument("--db", help="SQLAlchemy URL or SQLite file of an existing database")
    return p


def print_counts(store: Store) -> None:
    print(f"database: {store.url}")
    for name, n in store.counts().items():
        print(f"  {name:18s} {n}")


def main(argv: Sequence[str] | None = None, prog: str = "python -m storage") -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        store = Store(args.db, create=False)
        if args.command == "export":
            flt = JudgmentFilter(since=args.since, until=args.until, annotator=args.annotator,
                                 model_set=args.model_set, objective=args.objective)
            print(export(store, args.format, args.out, flt, agreed=args.agreed))
        else:
            print_counts(store)
        return 0
    except (StorageError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
