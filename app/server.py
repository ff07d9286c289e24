"""Command line and serving: ``python app.py [--models FILE] [--db URL] [--host] [--port] [--auth]``."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from .service.access import Access

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def parse_auth(auth: str | None, auth_file: str | None) -> tuple[list[tuple[str, str]], dict[str, str]] | None:
    """``USER:PASS`` and/or a file of ``USER:PASS[:ROLE]`` lines -> (Gradio's auth list, login -> role);
    None without logins. A line's role is its last field when that is a role (annotator, researcher,
    admin); a password may hold colons of its own."""
    from .service.access import ROLES

    pairs: list[tuple[str, str]] = []
    roles: dict[str, str] = {}
    lines = [auth] if auth else []
    if auth_file:
        path = Path(auth_file)
        if not path.is_file():
            raise SystemExit(f"error: --auth-file not found: {path}")
        lines += [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    for ln in lines:
        user, sep, rest = ln.partition(":")
        pw, role = rest, None
        head, sep2, tail = rest.rpartition(":")
        if sep2 and tail in ROLES:
            pw, role = head, tail
        if not sep or not user or not pw:
            raise SystemExit("error: auth entries must look like USER:PASS or USER:PASS:ROLE "
                             f"(a role is one of {', '.join(ROLES)})")
        pairs.append((user, pw))
        if role:
            roles[user] = role
    return (pairs, roles) if pairs else None


def build_parser(prog: str = "python app.py") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="GenARM dashboard: live multi-objective alignment.")
    p.add_argument("--models", action="append",
                   help="model-set YAML file or built-in name (smollm2: a real model; demo: the toy world); repeat to "
                        "offer several to switch between (default: smollm2, built on first use)")
    p.add_argument("--db", help="SQLAlchemy URL or SQLite file (default: $GENARM_DB or the user data folder)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GENARM_PORT", 7860)))
    p.add_argument("--auth", help="USER:PASS required to open the dashboard (shows the password in the process list: "
                                  "prefer --auth-file)")
    p.add_argument("--auth-file", help="file of USER:PASS[:ROLE] lines, ROLE one of annotator (the default), researcher, "
                                       "admin (README, Running it for a team)")
    p.add_argument("--no-auth-i-know", action="store_true",
                   help="allow --host beyond loopback without logins (every visitor gets every power)")
    p.add_argument("--admin", action="append", metavar="USER",
                   help="with logins: a user who sees every annotator's judgments, agreement, exports and each "
                        "study's progress (repeat for several; default: the first login). Others see their own")
    p.add_argument("--panels", type=int, default=2, choices=[2, 3, 4], help="panels side by side")
    p.add_argument("--cache-dir", "--demo-cache", dest="cache_dir",
                   help="where built-in model sets are cached (default: $GENARM_CACHE_DIR or the user cache folder)")
    p.add_argument("--concurrency", type=int, default=1, help="generations at once (one per accelerator)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes this server starts to run queued studies (0: none here; run 'genarm worker' "
                        "elsewhere against the same database)")
    return p


def create_app(model_files: Sequence[str | Path], db: str | None = None, panels: int = 2, auth_enabled: bool = False,
               access: "Access | None" = None):
    """(Blocks, AppContext) for these model-set files; used by ``main`` and by the tests. ``access``:
    who sees whose judgments (default: no logins, everyone sees everything)."""
    from storage.store import Store

    from .service import AppContext
    from .ui import build_ui

    from genarm_core.models.config import ModelSetConfig

    sets: dict[str, Path] = {}
    for f in model_files:
        path = Path(f)
        name = ModelSetConfig.from_file(path).name  # the file's own name (the demo's is "demo")
        sets[name if name not in sets else f"{name} ({path})"] = path
    ctx = AppContext(sets, Store(db), panels=panels, access=access)
    return build_ui(ctx, auth_enabled=auth_enabled), ctx


def main(argv: Sequence[str] | None = None, prog: str = "python app.py") -> int:
    args = build_parser(prog).parse_args(argv)
    parsed = parse_auth(args.auth, args.auth_file)
    auth, roles = parsed if parsed else (None, {})
    from .service.access import Access
    from .service.errors import UserError

    if auth is None and not is_loopback(args.host) and not args.no_auth_i_know:
        print(f"error: --host {args.host} serves the dashboard beyond this machine, and without logins every visitor "
              "could switch models, start studies and read every judgment. Give --auth-file (README, Running it for a "
              "team), or --no-auth-i-know if this network is yours alone", file=sys.stderr)
        return 2
    if args.auth:
        print("warning: --auth puts the password in the process list (ps); --auth-file keeps it out", file=sys.stderr)
    try:
        access = Access.from_logins([user for user, _ in auth] if auth else None, args.admin, roles)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from genarm_core.models.config import ConfigError
    from genarm_core.models.loading import ModelSetError
    from storage.db import StorageError

    try:
        from genarm_core.models.builtin import BUILTIN, DEFAULT, is_builtin, resolve_model_set

        names = args.models or [DEFAULT]
        for name in names:
            if is_builtin(name):
                print(f"Model set '{name}': {BUILTIN[name]}; built on first use, then cached.", flush=True)
        files = [resolve_model_set(name, cache_dir=args.cache_dir) for name in names]
        demo, ctx = create_app(files, args.db, panels=args.panels, auth_enabled=auth is not None, access=access)
    except (ConfigError, ModelSetError, StorageError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from .ui import launch_kwargs

    import logging

    # A refused input is one line here ("refused: ..."), never a stack trace.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("genarm.app").setLevel(logging.INFO)
    print(f"database: {ctx.store.url}", flush=True)
    if access.logins:
        for role in ("admin", "researcher", "annotator"):
            who = sorted(u for u, r in access.roles.items() if r == role)
            if who:
                print(f"{role}s: {', '.join(who)}", flush=True)
    elif not is_loopback(args.host):
        print("warning: no logins on a non-loopback address: every visitor has every power", file=sys.stderr)
    # SIGTERM (a service manager stopping the server) ends it as Ctrl-C does: Gradio closes its server,
    # then what the spool holds is written to the database before the process exits.
    signal.signal(signal.SIGTERM, _interrupt)
    workers = start_workers(args.workers, ctx.store.engine.url.render_as_string(hide_password=False), args.cache_dir)
    try:
        demo.queue(default_concurrency_limit=args.concurrency).launch(
            server_name=args.host, server_port=args.port, share=False, auth=auth, show_error=True, **launch_kwargs())
    finally:
        stop_workers(workers)
        ctx.close()
    return 0


def start_workers(n: int, db_url: str, cache_dir: str | None = None) -> list:
    """``n`` worker processes for queued studies (``app.worker``), on half the cores and at a lower
    scheduling priority, so a page's Compare pair keeps its share of the machine while a study runs.
    The database URL reaches them through the environment (never the process list)."""
    import subprocess

    from .worker import worker_threads

    procs = []
    for i in range(max(0, n)):
        cmd = [sys.executable, "-m", "app.cli", "worker", "--nice", "10", "--threads", str(worker_threads()),
               "--name", f"{os.uname().nodename}:dashboard-{os.getpid()}-{i}"]
        if cache_dir:
            cmd += ["--cache-dir", cache_dir]
        procs.append(subprocess.Popen(cmd, env={**os.environ, "GENARM_DB": db_url}, cwd=Path(__file__).resolve().parents[1]))
    if procs:
        print(f"workers: {len(procs)} process(es) run queued studies (genarm worker; pid {', '.join(str(p.pid) for p in procs)})",
              flush=True)
    return procs


def stop_workers(procs: list) -> None:
    """SIGTERM: each worker hands its job in flight back to the queue after its batch, then exits."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=120)
        except Exception:  # noqa: BLE001 - a worker that will not stop is killed; its job is taken over later
            p.kill()


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine."""
    import ipaddress

    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _interrupt(signum, frame) -> None:  # noqa: ANN001 - a signal handler's signature
    raise KeyboardInterrupt
