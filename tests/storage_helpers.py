"""Helpers for storage tests: database URLs (SQLite always; PostgreSQL when configured) and sample data."""

from __future__ import annotations

import os
import uuid

PG_ENV = "GENARM_TEST_POSTGRES_URL"


def new_postgres_db() -> tuple[str, callable]:
    """Create a fresh PostgreSQL database; returns its URL and a function that drops it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = os.environ[PG_ENV]
    name = f"genarm_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def gen_record(prompt="What is 2+2?", completion="4", method="genarm", weights=None, **kw):
    rec = dict(prompt=prompt, completion=completion, method=method,
               weights=weights if weights is not None else {"helpfulness": 1.0, "harmlessness": 0.5},
               beta=1.0, temperature=0.7, top_k=0, top_p=1.0, max_new_tokens=32, seed=0,
               settings={"beta": 1.0}, n_tokens=3, latency_s=0.1, finish_reason="eos",
               scores={"helpfulness": -3.5, "harmlessness": -4.0})
    rec.update(kw)
    return rec
