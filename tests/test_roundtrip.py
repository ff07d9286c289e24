"""Dashboard judgments -> export -> ARM training, with no edits in between."""

import json
import subprocess
import sys

import pytest

from storage.export import export
from storage.store import Store

from .storage_helpers import gen_record


@pytest.mark.parametrize("fmt, export_fmt, name", [("dashboard", "csv", "j.csv"), ("trl", "trl", "p.jsonl"),
                                                     ("trl", "trl-conversational", "c.jsonl")])
def test_export_trains_an_arm(tmp_path, tiny_set, fmt, export_fmt, name):
    store = Store(str(tmp_path / "db.sqlite"))
    for i in range(12):
        a, b = store.add_generations([gen_record(prompt=f"Human: question {i}? Assistant:", completion=" a kind, detailed answer"),
                                      gen_record(prompt=f"Human: question {i}? Assistant:", completion=" go away", method="base")])
        store.add_judgment(a, b, "A" if i % 3 else "B", {"harmlessness": "A"})
    store.add_judgment(a, b, "tie")
    export(store, export_fmt, tmp_path / name)
    out = tmp_path / "arm"
    run = subprocess.run([sys.executable, "-m", "genarm_core", "train-arm", "--base", str(tiny_set.parent / "base"),
                          "--data", str(tmp_path / name), "--format", fmt, "--objective", "harmlessness", "--out", str(out),
                          "--full", "--epochs", "1", "--batch-size", "4", "--grad-accum", "1", "--lr", "1e-3"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    # dashboard format reads the harmlessness verdicts (12 A's); TRL reads the overall file (8 A, 4 B; tie left out)
    assert metrics["train_pairs"] + metrics["before"]["pairs"] == 12
    assert (out / "model.safetensors").exists()
