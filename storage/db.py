"""Opening the database: URL resolution, SQLite pragmas, safety checks and migrations.

SQLite (the default) runs in WAL mode with foreign keys on, a busy timeout, and every write
transaction started with ``BEGIN IMMEDIATE`` so that concurrent writers queue for the lock
instead of failing with "database is locked". Any other SQLAlchemy URL (PostgreSQL for teams)
works the same way. A file that is not a SQLite database, or a database that is not ours, is
refused with a clear error and never written to.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError

ENV_VAR = "GENARM_DB"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
OUR_TABLES = {"model_sets", "generations", "judgments"}
SQLITE_MAGIC = b"SQLite format 3\x00"


class StorageError(RuntimeError):
    """The database cannot be opened or used; the message says why and what to do."""


def default_url() -> str:
    """``$GENARM_DB`` if set, else a SQLite file in the user data directory."""
    env = os.environ.get(ENV_VAR)
    if env:
        return env if "://" in env else f"sqlite:///{Path(env).expanduser().resolve()}"
    from platformdirs import user_data_dir

    folder = Path(user_data_dir("genarm", appauthor=False))
    return f"sqlite:///{folder / 'genarm.db'}"


def normalise_url(url: str | None) -> str:
    """Accept a SQLAlchemy URL or a plain file path (taken as SQLite)."""
    if not url:
        return default_url()
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    return url


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head() or ""


def _check_sqlite_file(path: Path) -> None:
    """Refuse a file that is not a SQLite database or fails its integrity check. Never writes."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb") as fh:
        if fh.read(16) != SQLITE_MAGIC:
            raise StorageError(f"{path} is not a SQLite database; refusing to touch it. Pass another --db.")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = con.execute("PRAGMA quick_check").fetchone()[0]
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            current = con.execute("SELECT version_num FROM alembic_version").fetchone() if "alembic_version" in tables else None
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"{path} is a damaged SQLite database ({exc}); it was left as it is.") from None
    if result != "ok":
        raise StorageError(f"{path} failed SQLite's integrity check ({result}); it was left as it is.")
    # Judge the tables before any connection of ours sets pragmas (WAL mode rewrites the header).
    _judge_tables(str(path), tables, current[0] if current else None)


def _sqlite_setup(engine: Engine, busy_timeout_s: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # noqa: ANN001
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")  # durable in WAL mode up to the last checkpoint-safe commit
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # noqa: ANN001
        # IMMEDIATE takes the write lock up front: a writer waits (busy_timeout) instead of
        # failing later when its read lock cannot be upgraded.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def open_engine(url: str | None = None, upgrade: bool = True, busy_timeout_s: float = 30.0, create: bool = True) -> Engine:
    """Create an engine for ``url`` (default: ``default_url()``), check it is ours, migrate it.

    ``busy_timeout_s``: how long a SQLite writer waits for another's lock before giving up.
    ``create=False``: a SQLite file that does not exist is an error (read-only commands must not
    leave an empty database and folders behind).

    Raises:
        StorageError: bad URL, unreachable server, a file or database that is not ours, a damaged
        file, or a schema newer than this code.
    """
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StorageError(f"not a database URL: {url!r} ({exc})") from None
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        if not create and not path.is_file():
            raise StorageError(f"no database at {path}; give the --db of an existing database (nothing was created)")
        _check_sqlite_file(path)
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(url, pool_pre_ping=not is_sqlite)
    except Exception as exc:  # noqa: BLE001 - missing driver, bad options
        raise StorageError(f"cannot use database {parsed.render_as_string(hide_password=True)}: {exc}") from None
    if is_sqlite:
        _sqlite_setup(engine, busy_timeout_s)
    try:
        _check_ours_and_migrate(engine, upgrade)
    except (OperationalError, DatabaseError) as exc:
        engine.dispose()
        raise StorageError(f"cannot open database {parsed.render_as_string(hide_password=True)}: {exc.orig}") from None
    except StorageError:
        engine.dispose()
        raise
    return engine


def _check_ours_and_migrate(engine: Engine, upgrade: bool) -> None:
    where = engine.url.render_as_string(hide_password=True)
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        current = MigrationContext.configure(conn).get_current_revision() if "alembic_version" in tables else None
    _judge_tables(where, tables, current)
    if upgrade and current != head_revision():
        with engine.begin() as conn:
            cfg = _alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")


def _judge_tables(where: str, tables: set[str], current: str | None) -> None:
    """Refuse a database that holds someone else's tables, or a schema newer than this code."""
    tables = {t for t in tables if not t.startswith("sqlite_")}
    known = {s.revision for s in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}
    if tables - {"alembic_version"} and current is None:
        if not OUR_TABLES <= tables:
            raise StorageError(f"{where} already holds other tables ({sorted(tables)[:5]}...) and is not a GenARM "
                               f"database; refusing to write to it.")
        raise StorageError(f"{where} has GenARM-like tables but no schema version; refusing to guess. Back it up and "
                           f"use a fresh database.")
    if current is not None and current not in known:
        raise StorageError(f"{where} has schema revision {current!r}, newer than this code knows ({sorted(known)}). "
                           f"Upgrade the project.")


def upgrade_to(engine: Engine, revision: str) -> None:
    """Migrate to a given revision (tests use it to build an old schema)."""
    with engine.begin() as conn:
        cfg = _alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
