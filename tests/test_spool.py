"""Nothing lost: generations the database refuses wait in a spool file on disk (fsynced) and are written
once, at the next save that succeeds, when the server starts again, or when it stops (SIGTERM)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from storage.spool import Spool
from storage.store import Store

from .live_app import free_port
from .storage_helpers import gen_record

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def locked(db: Path):
    """Another connection holds SQLite's write lock: every write of the store times out meanwhile."""
    con = sqlite3.connect(db, timeout=5, isolation_level=None)
    con.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        con.execute("ROLLBACK")
        con.close()


def test_a_uid_is_stored_once_and_a_spool_drains_into_the_store(tmp_path):
    store = Store(str(tmp_path / "db.sqlite"))
    first = store.add_generations([gen_record(uid="u1"), gen_record(uid="u2", completion="5")],
                                  [{"tokens": 3.0}, {"tokens": 1.0}])
    again = store.add_generations([gen_record(uid="u2", completion="5"), gen_record(uid="u3")], [{"tokens": 1.0}, {}])
    assert again[0] == first[1] and again[1] not in first and store.counts()["generations"] == 3
    assert store.counts()["judge_scores"] == 2  # the scores of a repeated uid are not stored twice
    spool = Spool(tmp_path / "spool" / "g.jsonl")
    spool.append([gen_record(uid="u3"), gen_record(uid="u4")], [{}, {}])
    with spool.path.open("a") as fh:
        fh.write('{"record": {"uid": "torn')  # a crash mid-line: ignored
    assert len(spool) == 2
    assert spool.drain(store.add_generations) == 2 and len(spool) == 0
    assert store.counts()["generations"] == 4  # u3 was stored already: once


def test_the_service_spools_a_refused_pair_and_writes_it_with_the_next_one(tmp_path, tiny_set):
    from app.service import AppContext

    db = tmp_path / "db.sqlite"
    ctx = AppContext({"tiny": tiny_set}, Store(str(db), busy_timeout_s=0.2), spool=Spool(tmp_path / "spool.jsonl"))
    cfg = ctx.decoding(1.0, 1.0, 0, 1.0, 4, 0)
    settings = [ctx.setting("genarm", {"helpfulness": 1}), ctx.setting("base", {})]
    with locked(db):
        *_, last = ctx.generate_pair("Human: hi Assistant:", settings, cfg)
    assert last.pair is None and "not stored" in last.warning and "spool" in last.warning
    assert ctx.pending == 2
    lines = [json.loads(x) for x in (tmp_path / "spool.jsonl").read_text().splitlines()]
    assert [e["record"]["completion"] for e in lines] == [r.text for r in last.results]
    *_, ok = ctx.generate_pair("Human: bread? Assistant:", settings, cfg)
    assert ok.pair is not None and ctx.pending == 0
    gens = ctx.store.generations_frame()
    assert len(gens) == 4 and gens["uid"].is_unique
    assert sorted(gens["prompt"]) == sorted(["Human: hi Assistant:"] * 2 + ["Human: bread? Assistant:"] * 2)
    assert (ctx.store.judge_scores_frame()["judge"] == "length_tokens").sum() == 4  # the spooled pair's metrics came too
    ctx.close()


class Server:
    """``python app.py`` as a separate process (it can be SIGKILLed), on a free loopback port."""

    def __init__(self, models: Path, db: Path, data: Path):
        self.port = free_port()
        env = {**os.environ, "GENARM_DATA_DIR": str(data), "GENARM_DB_BUSY_TIMEOUT": "0.5",
               "GRADIO_ANALYTICS_ENABLED": "False"}
        self.log = (data / f"server-{self.port}.log").open("w")
        self.proc = subprocess.Popen([sys.executable, "app.py", "--models", str(models), "--db", str(db),
                                      "--port", str(self.port)], cwd=REPO, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}/"
        from gradio_client import Client

        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited: {(data / f'server-{self.port}.log').read_text()}")
            try:
                self.client = Client(self.url, verbose=False)
                break
            except Exception:  # noqa: BLE001 - not listening yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def pair(self, prompt: str) -> dict:
        return json.loads(self.client.predict(prompt, '{"helpfulness": 1}', "genarm", "{}", "base", 1.0, 1.0, 0, 1.0, 6, 0,
                                              api_name="/generate_pair"))

    def stop(self, sig: int) -> None:
        self.proc.send_signal(sig)
        self.proc.wait(timeout=60)
        self.log.close()


def test_every_pair_the_server_showed_is_stored_once_after_sigkill_and_restart(tmp_path, tiny_set):
    db, data = tmp_path / "db.sqlite", tmp_path / "data"
    data.mkdir()
    Store(str(db)).close()  # created and migrated, so the lock below has a database to hold
    server = Server(tiny_set, db, data)
    shown = [server.pair("Human: first? Assistant:")]
    assert shown[0]["generation_ids"] is not None
    with locked(db):  # the database refuses every write for a burst of pairs
        burst = [server.pair(f"Human: burst {i}? Assistant:") for i in range(3)]
        assert all(p["generation_ids"] is None and "not stored" in p["warning"] for p in burst)
        server.stop(signal.SIGKILL)  # no chance to write anything at exit
    shown += burst
    store = Store(str(db))
    assert store.counts()["generations"] == 2  # the burst is only in the spool now
    store.close()
    restarted = Server(tiny_set, db, data)  # its start writes the spool back
    store = Store(str(db))
    gens = store.generations_frame()
    for p, prompt in zip(shown, ["Human: first? Assistant:"] + [f"Human: burst {i}? Assistant:" for i in range(3)]):
        mine = gens[gens["prompt"] == prompt]
        assert sorted(mine["completion"]) == sorted(p["completions"])  # both panels, each once
    assert len(gens) == 8 and gens["uid"].is_unique
    # A pair refused while the server runs, then SIGTERM once the database is back: written at shutdown.
    with locked(db):
        late = restarted.pair("Human: late? Assistant:")
    assert late["generation_ids"] is None
    restarted.stop(signal.SIGTERM)
    gens = store.generations_frame()
    assert sorted(gens.loc[gens["prompt"] == "Human: late? Assistant:", "completion"]) == sorted(late["completions"])
    store.close()
