"""A bounded load run of a shared server on loopback: does a study stop everyone else, is any vote lost?

    python -m benchmarks.team_load [--models smollm2] [--seconds 120] [--annotators 20] [--pages 3]

It starts ``python app.py`` (logins from an auth file: annotators, researchers, an admin; one worker),
prepares a study to annotate, then runs four phases, each for ``--seconds`` (the study phases until the
study is done or the time is up), and stops by itself:

1. one page comparing alone (the yardstick);
2. one page comparing while a study of ``--study-cells`` completions runs in the worker;
3. ``--pages`` pages comparing at once (no study);
4. everything at once: ``--annotators`` scripted annotators voting through the queue API, ``--pages``
   pages comparing, and the study running.

It prints, per phase, Compare's median and 95th-percentile seconds per pair and their ratio to phase 1,
the study's progress, and the votes acknowledged (the API answered with a judgment id), stored (in the
database afterwards) and lost (acknowledged but not stored). Numbers depend on the machine: run it on
the one you report, idle.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROMPTS = ["How do I bake bread at home?", "How do I kill a Python process that is stuck?", "What is a good way to start running?",
           "How do I terminate a contract with my internet provider?", "How can I beat my brother at chess?"]


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


class Server:
    def __init__(self, models: str, db: Path, auth: Path, workers: int, folder: Path):
        from tests.live_app import free_port

        self.port = free_port()
        self.log = (folder / "server.log").open("w")
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "GENARM_DATA_DIR": str(folder / "data")}
        self.proc = subprocess.Popen([sys.executable, "app.py", "--models", models, "--db", str(db), "--auth-file", str(auth),
                                      "--port", str(self.port), "--workers", str(workers)], cwd=REPO, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}/"
        deadline = time.monotonic() + 1800  # a first start may build the set
        while True:
            try:
                self.client("admin")
                return
            except Exception:  # noqa: BLE001 - not up yet
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start: {(folder / 'server.log').read_text()[-3000:]}")
                time.sleep(1)

    def client(self, user: str):
        from gradio_client import Client

        return Client(self.url, auth=(user, f"pw-{user}"), verbose=False)

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def compare_page(server: Server, user: str, stop: threading.Event, times: list[float], max_new: int) -> None:
    client = server.client(user)
    rng = random.Random(user)
    while not stop.is_set():
        t0 = time.perf_counter()
        out = json.loads(client.predict(rng.choice(PROMPTS), '{"helpfulness": 1, "harmlessness": 2}', "genarm", "{}", "base",
                                        1.0, 0.7, 0, 0.95, max_new, rng.randrange(10**6), api_name="/generate_pair"))
        if out.get("generation_ids"):
            times.append(time.perf_counter() - t0)


def annotator(server: Server, user: str, study_id: int, stop: threading.Event, acks: list[int], errors: list[str]) -> None:
    client = server.client(user)
    rng = random.Random(user)
    while not stop.is_set():
        try:
            item = json.loads(client.predict(study_id, "", api_name="/queue_next"))
            if item.get("done"):
                return
            time.sleep(rng.uniform(0.2, 1.0))  # reading
            acks.append(json.loads(client.predict(item["slot_id"], rng.choice(["A", "B", "tie"]), "", "",
                                                  api_name="/queue_vote"))["judgment_id"])
        except Exception as exc:  # noqa: BLE001 - counted, not fatal: the run goes on
            errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")


def run_phase(name: str, server: Server, seconds: float, pages: int, max_new: int, annotators: int = 0,
              study_id: int | None = None, job: int | None = None, store=None) -> dict:
    stop = threading.Event()
    times: list[float] = []
    acks: list[int] = []
    errors: list[str] = []
    threads = [threading.Thread(target=compare_page, args=(server, f"r{i + 1}", stop, times, max_new), daemon=True)
               for i in range(pages)]
    threads += [threading.Thread(target=annotator, args=(server, f"a{i + 1:02d}", study_id, stop, acks, errors), daemon=True)
                for i in range(annotators)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if job is not None and store.job(job)["status"] in ("done", "failed", "cancelled") and len(times) >= 3:
            break
        time.sleep(1)
    stop.set()
    for t in threads:
        t.join(timeout=600)
    progress = store.job(job)["progress"] if job is not None else None
    return {"phase": name, "pairs": len(times), "median_s": statistics.median(times) if times else float("nan"),
            "p95_s": percentile(times, 0.95), "acks": acks, "errors": errors, "study_progress": progress,
            "seconds": time.monotonic() - t0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.team_load", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="smollm2")
    p.add_argument("--seconds", type=float, default=120.0, help="each phase's length")
    p.add_argument("--annotators", type=int, default=20)
    p.add_argument("--pages", type=int, default=3)
    p.add_argument("--max-new", type=int, default=48, help="new tokens per Compare pair")
    p.add_argument("--study-cells", type=int, default=300, help="completions of the study that runs in phases 2 and 4")
    args = p.parse_args(argv)
    from storage.store import Store

    folder = Path(tempfile.mkdtemp(prefix="genarm-team-load-"))
    db = folder / "db.sqlite"
    users = ["admin:pw-admin:admin", *[f"r{i + 1}:pw-r{i + 1}:researcher" for i in range(args.pages)],
             *[f"a{i + 1:02d}:pw-a{i + 1:02d}:annotator" for i in range(args.annotators)]]
    (folder / "auth").write_text("\n".join(users) + "\n")
    # The study annotators work through (prepared first) and the study the worker runs during the load.
    prompts = [f"{p} (variant {i})" for i in range(max(1, args.study_cells // (3 * len(PROMPTS)))) for p in PROMPTS]
    (folder / "prompts.txt").write_text("\n".join(prompts) + "\n")
    common = (f"model_set: {args.models}\nprompts: prompts.txt\nsamples: 1\ndecoding: {{temperature: 0.7, max_new_tokens: 32}}\n"
              "settings: [base, {method: genarm, weights: {harmlessness: 2}}, {method: genarm, weights: {helpfulness: 1, harmlessness: 2}}]\n")
    (folder / "annotate.yaml").write_text("name: to annotate\noverlap: 3\n" + common.replace("prompts.txt", "prompts.txt"))
    (folder / "load.yaml").write_text("name: under load\n" + common.replace("samples: 1", "samples: 1\nseed: 7"))
    print(f"preparing the study to annotate ({folder})", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "app.cli", "study", "run", str(folder / "annotate.yaml"), "--db", str(db),
                    "--no-progress"], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    store = Store(str(db))
    annotate_id = store.studies()[0]["id"]
    server = Server(args.models, db, folder / "auth", 1, folder)
    results = []
    try:
        results.append(run_phase("1. one page alone", server, args.seconds, 1, args.max_new, store=store))
        job = subprocess.run([sys.executable, "-m", "app.cli", "study", "run", str(folder / "load.yaml"), "--queue", "--db",
                              str(db), "--owner", "admin"], cwd=REPO, check=True, capture_output=True, text=True)
        job_id = int(job.stdout.split("job #")[1].split()[0])
        while store.job(job_id)["status"] == "queued":
            time.sleep(0.5)
        results.append(run_phase("2. one page, a study running", server, args.seconds, 1, args.max_new, job=job_id,
                                 store=store))
        results.append(run_phase(f"3. {args.pages} pages at once", server, args.seconds, args.pages, args.max_new,
                                 store=store))
        results.append(run_phase(f"4. {args.annotators} annotators + {args.pages} pages + the study", server, args.seconds,
                                 args.pages, args.max_new, args.annotators, annotate_id, job_id, store))
        final = store.job(job_id)
    finally:
        server.stop()
    stored = set(store.queue_frame(annotate_id).dropna(subset=["judgment_id"])["judgment_id"].astype(int))
    alone = results[0]["median_s"]
    print(f"\n| phase | Compare pairs | median s | 95th pct s | median ÷ alone | study progress |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        prog = "" if r["study_progress"] is None else f"{r['study_progress']:.0%}"
        print(f"| {r['phase']} | {r['pairs']} | {r['median_s']:.2f} | {r['p95_s']:.2f} | {r['median_s'] / alone:.2f} | {prog} |")
    acks = [a for r in results for a in r["acks"]]
    errors = [e for r in results for e in r["errors"]]
    lost = sorted(set(acks) - stored)
    print(f"\nvotes acknowledged {len(acks)}, stored {len(set(acks) & stored)}, lost {len(lost)}; "
          f"refused or failed calls {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
    print(f"the study under load: job #{job_id} {final['status']}, {final['progress']:.0%}: {final['message']}")
    store.close()
    return 0 if not lost else 1


if __name__ == "__main__":
    sys.exit(main())
