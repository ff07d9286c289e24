"""``genarm study``: run a study file, report it, list the studies of a database.

    genarm study run STUDY.yaml [--db URL]
    accelerate launch [--cpu] --num_processes N -m app.cli study run STUDY.yaml --db URL
    genarm study report STUDY_ID|STUDY.yaml [--db URL] [--out DIR] [--x JUDGE --y JUDGE]
    genarm study list [--db URL]
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

USAGE = __doc__


def main(argv: Sequence[str]) -> int:
    argv = list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    handlers = {"run": run, "report": report, "list": list_studies}
    if command not in handlers:
        print(f"error: unknown study command {command!r}; one of: {', '.join(handlers)}", file=sys.stderr)
        return 2
    return handlers[command](rest)


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="SQLAlchemy URL or SQLite file (default: $GENARM_DB or the user data folder); "
                                "one PostgreSQL URL for processes on several machines")


def run(argv: Sequence[str]) -> int:
    """Run every (setting x prompt x sample) cell of a study file through the engine, store each completion and
    every judge's scores and verdicts; a rerun resumes (stored cells are skipped). Then print the report."""
    from genarm_core.models.config import ConfigError
    from genarm_core.models.prompts import PromptFileError
    from storage.db import StorageError

    from .service.errors import UserError

    p = argparse.ArgumentParser(prog="genarm study run", description=run.__doc__)
    p.add_argument("study", help="the study file (YAML)")
    _db_arg(p)
    p.add_argument("--cache-dir", help="where built-in model sets are cached")
    p.add_argument("--out", help="also write the report (markdown, CSV, plots) into this folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--queue", action="store_true",
                   help="put the study in the database's job queue for the workers (genarm worker; the dashboard runs "
                        "one) instead of running it here; prints the job's id")
    p.add_argument("--owner", default="", help="with --queue: whose job it is (the dashboard's login)")
    args = p.parse_args(argv)
    try:
        return _queue(args) if args.queue else _run(args)
    except (ConfigError, PromptFileError, StorageError, UserError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _queue(args: argparse.Namespace) -> int:
    from storage.store import Store

    from .service.studies import job_spec

    spec, name = job_spec(args.study)
    store = Store(args.db)
    job_id = store.enqueue_job("study", name, args.owner, spec)
    print(f"queued study {name!r} as job #{job_id} in {store.url}; a worker runs it (genarm worker --db ...), "
          f"'genarm study list' shows it once it has started")
    return 0


def _run(args: argparse.Namespace) -> int:
    from genarm_core.models.builtin import resolve_model_set
    from genarm_core.decoding.engine import GenARMEngine
    from genarm_core.evaluation.study import load_study
    from genarm_core.models.loading import load_model_set
    from genarm_core.threads import apply_threads
    from storage.store import Store

    from .service.studies import StudyRunner, process_state

    study = load_study(args.study)
    state = process_state()
    if state.num_processes > 1:
        import torch

        torch.set_num_threads(1)  # processes share the machine's cores
    else:
        apply_threads()
    # A built-in set is built once, by the main process, before the others read it.
    if state.is_main_process:
        models_yaml = resolve_model_set(study.model_set, args.cache_dir, progress=not args.no_progress)
        store = Store(args.db)  # creates (or migrates) the database before the other processes open it
    state.wait_for_everyone()
    if not state.is_main_process:
        models_yaml = resolve_model_set(study.model_set, args.cache_dir, progress=False)
        store = Store(args.db)
    engine = GenARMEngine(load_model_set(models_yaml))
    runner = StudyRunner(study, store, engine, models_yaml, state=state, progress=not args.no_progress)
    outcome = runner.run()
    runner.close()
    if state.is_main_process:
        print(f"study #{outcome.study_id} {study.name!r}: {outcome.cells} cells ({outcome.stored_before} stored before, "
              f"{outcome.generated} generated here), {outcome.scores} scores and {outcome.verdicts} verdicts added, "
              f"{outcome.seconds:.0f} s", file=sys.stderr)
        _print_report(store, outcome.study_id, args.out)
    return 0


def _print_report(store, study_id: int, out: str | None, x: str | None = None, y: str | None = None,
                  rounds: int = 1000, seed: int = 0) -> None:
    from .service.study_report import build_report

    rep = build_report(store, study_id, rounds, seed)
    print(rep.markdown())
    if out:
        files = rep.write(out, x, y)
        print("written: " + ", ".join(str(f) for f in files), file=sys.stderr)


def report(argv: Sequence[str]) -> int:
    """Print a study's report (markdown); with --out also write it as markdown, CSV and plots (HTML)."""
    from storage.db import StorageError
    from storage.store import Store

    from .service.errors import UserError
    from .service.study_report import find_study

    p = argparse.ArgumentParser(prog="genarm study report", description=report.__doc__)
    p.add_argument("study", help="a study id (genarm study list), or a study file (its newest study)")
    _db_arg(p)
    p.add_argument("--out", help="write the report files into this folder")
    p.add_argument("--x", help="the frontier plot's x axis: a judge or metric (default: the first independent judge)")
    p.add_argument("--y", help="the frontier plot's y axis (default: the next judge, else the KL to the base)")
    p.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    try:
        store = Store(args.db, create=False)
        _print_report(store, find_study(store, args.study), args.out, args.x, args.y, args.rounds, args.seed)
    except (StorageError, UserError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def list_studies(argv: Sequence[str]) -> int:
    """The studies in a database, newest first."""
    from storage.db import StorageError
    from storage.store import Store

    p = argparse.ArgumentParser(prog="genarm study list", description=list_studies.__doc__)
    _db_arg(p)
    args = p.parse_args(argv)
    try:
        studies = Store(args.db, create=False).studies()
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not studies:
        print("no studies in this database")
    for s in studies:
        print(f"#{s['id']}  {s['name']}  {s['cells']} completions stored  ({s['created_at']:%Y-%m-%d %H:%M}, "
              f"{len(s['config'].get('settings', []))} settings x {s['config'].get('samples', 1)} samples)")
    return 0
