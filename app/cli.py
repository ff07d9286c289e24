"""The ``genarm`` command (``pip install -e .``): one entry for every part of the project.

    genarm serve ...       the dashboard (the same as ``python app.py ...``)
    genarm export|stats    the database (``python -m storage ...``)
    genarm study run|report|list   studies (``app.study_cli``; several processes: ``accelerate launch -m app.cli study run``)
    genarm worker ...      run queued studies (``app.worker``)
    genarm generate|train-arm|train-rm|demo|smollm2 ...   the engine and training (``python -m genarm_core ...``)

It lives in ``app`` because only this layer may import all the others.
"""

from __future__ import annotations

import sys
from typing import Sequence

USAGE = """usage: genarm COMMAND [options]

commands:
  serve       start the dashboard (genarm serve --help)
  generate    generate with a model set
  train-arm   train an ARM for one objective from preference data
  train-rm    train a trajectory-level reward model (for ARGS, Best-of-N) from the same data
  smollm2     build the built-in real model set; 'smollm2 eval' runs its study (genarm study run smollm2)
  demo        build the built-in toy world; 'demo eval [--families training]' runs its study
  export      export judgments for trainers (TRL, CSV, battles)
  stats       counts and win rates of a database; 'stats ratings': Bradley–Terry ratings with 95% CIs;
              'stats agreement': do the annotators agree (Krippendorff's alpha, per annotator)
  study       run a study file (settings x prompts x samples, judged), resumable; report or list studies;
              'study run --queue' hands it to the workers instead
  worker      run queued studies (the dashboard starts one; more on other machines share a PostgreSQL database)

Run 'genarm COMMAND --help' for a command's options."""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "serve":
        from .server import main as serve

        return serve(rest, prog="genarm serve")
    if command == "stats":
        if rest[:1] == ["ratings"]:
            return ratings(rest[1:])
        if rest[:1] == ["agreement"]:
            return agreement(rest[1:])
        return stats(rest)
    if command == "smollm2" and rest[:1] == ["eval"]:  # the set's evaluation is its built-in study
        from .study_cli import main as study_main

        return study_main(["run", "smollm2", *rest[1:]])
    if command == "demo" and rest[:1] == ["eval"]:  # so is the demo's, on held-out or trained families
        from .study_cli import main as study_main

        extra = list(rest[1:])
        name = "demo"
        if "--families" in extra:
            i = extra.index("--families")
            families = extra[i + 1] if i + 1 < len(extra) else ""
            if families not in ("held-out", "training"):
                print("error: --families: held-out or training", file=sys.stderr)
                return 2
            name = "demo-training" if families == "training" else "demo"
            del extra[i:i + 2]
        return study_main(["run", name, *extra])
    if command == "study":
        from .study_cli import main as study_main

        return study_main(rest)
    if command == "worker":
        from .worker import main as worker_main

        return worker_main(rest)
    if command == "export":
        from storage.cli import main as storage_main

        return storage_main([command, *rest], prog="genarm")
    from genarm_core.cli.main import main as core_main

    return core_main(args)


def stats(argv: Sequence[str]) -> int:
    """``genarm stats``: what a database holds, and win rates by setting (overall and per objective)."""
    import argparse

    from storage.cli import print_counts
    from storage.db import StorageError
    from storage.store import JudgmentFilter, Store

    from .service.records import Records

    p = argparse.ArgumentParser(prog="genarm stats", description=stats.__doc__)
    p.add_argument("--db", help="SQLAlchemy URL or SQLite file of an existing database (default: $GENARM_DB or the user data folder)")
    p.add_argument("--objective", help="win rates on this objective's verdicts only")
    args = p.parse_args(argv)
    try:
        store = Store(args.db, create=False)
        print_counts(store)
        records = Records(store)
        for obj in [None, *([args.objective] if args.objective else store.objectives())]:
            rates = records.win_rates(JudgmentFilter(), obj)
            if not rates.empty:
                print(f"\nwin rates ({obj or 'overall'} verdicts):")
                print(rates.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        records.close()
    except (StorageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def ratings(argv: Sequence[str]) -> int:
    """``genarm stats ratings``: a Bradley–Terry rating per judged setting (ties as half a win, one
    setting anchored at 1000 on the Elo scale) with seeded bootstrap 95% intervals, as markdown or CSV."""
    import argparse

    from storage.db import StorageError
    from storage.store import Store

    from .service.errors import UserError
    from .service.records import Records, judgment_filter, ratings_table

    p = argparse.ArgumentParser(prog="genarm stats ratings", description=ratings.__doc__)
    p.add_argument("--db", help="SQLAlchemy URL or SQLite file of an existing database (default: $GENARM_DB or the user data folder)")
    p.add_argument("--objective", help="rate on this objective's verdicts (default: the overall verdict)")
    p.add_argument("--annotator", help="only this annotator's judgments")
    p.add_argument("--since", help="only judgments from this date (YYYY-MM-DD)")
    p.add_argument("--study", type=int, help="only judgments of this study's completions (genarm study list)")
    p.add_argument("--model-set", help="only judgments of this model set's completions (its name)")
    p.add_argument("--anchor", help="the setting fixed at 1000 (default: Base only, when judged)")
    p.add_argument("--rounds", type=int, default=200, help="bootstrap rounds")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--format", choices=["markdown", "csv"], default="markdown")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    try:
        store = Store(args.db, create=False)
        records = Records(store)
        flt = judgment_filter(args.annotator, args.objective, args.since, args.study, args.model_set)
        table = ratings_table(records.judgments(flt), flt.objective, args.anchor, args.rounds, args.seed)
        records.close()
    except (StorageError, UserError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if table.empty:
        print("no judgments match these filters")
        return 0
    if args.format == "csv":
        print(table.to_csv(index=False), end="")
    else:
        from genarm_core.tables import markdown_table

        print(markdown_table(table.astype(object).where(table.notna(), ""), {c: c for c in table.columns}))
    return 0


def agreement(argv: Sequence[str]) -> int:
    """``genarm stats agreement``: over pairs judged by two or more named annotators, the agreement
    rate and Krippendorff's alpha (nominal); per annotator, agreement with the others' majority,
    position bias when blind, median seconds per judgment."""
    import argparse

    from storage.db import StorageError
    from storage.store import Store

    from .service.errors import UserError
    from .service.records import Records, annotator_agreement, judgment_filter, skip_counts

    p = argparse.ArgumentParser(prog="genarm stats agreement", description=agreement.__doc__)
    p.add_argument("--db", help="SQLAlchemy URL or SQLite file of an existing database (default: $GENARM_DB or the user data folder)")
    p.add_argument("--objective", help="agreement on this objective's verdicts (default: the overall verdict)")
    p.add_argument("--since", help="only judgments from this date (YYYY-MM-DD)")
    p.add_argument("--study", type=int, help="only judgments of this study's completions")
    p.add_argument("--format", choices=["markdown", "csv"], default="markdown")
    args = p.parse_args(argv)
    try:
        records = Records(Store(args.db, create=False))
        flt = judgment_filter(None, args.objective, args.since, args.study)
        line, table = annotator_agreement(records.judgments(flt), flt.objective, skip_counts(records.store, args.study))
        records.close()
    except (StorageError, UserError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.format == "csv":
        print(table.to_csv(index=False), end="")
        return 0
    from genarm_core.tables import markdown_table

    print(line)
    if not table.empty:
        print()
        print(markdown_table(table.astype(object).where(table.notna(), "–"), {c: c for c in table.columns}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
