"""Exports of the judgments, in the formats trainers and analysts read.

- ``trl`` / ``trl-conversational``: TRL preference rows (``prompt``/``chosen``/``rejected``), JSONL
  or Parquet by the file's suffix; one file per objective when per-objective verdicts exist.
  Ties and "both bad" give no pair and are counted.
- ``csv``: every judgment with both sides' settings (``genarm_core train-arm --format dashboard`` reads it);
  settings, weights and scores are JSON in their cells.
- ``battles``: FastChat-style battle JSONL (``model_a``, ``model_b``, ``winner``) for Elo analysis;
  a setting's name comes from the caller's ``label`` (the dashboard passes its own), by default a
  plain one such as ``genarm harmlessness=1 helpfulness=0.5 beta=1``.

The output file's folder is created if it does not exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from .store import JudgmentFilter, Store

FORMATS = ("trl", "trl-conversational", "csv", "battles")
_WINNER = {"A": "model_a", "B": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}


@dataclass
class ExportSummary:
    files: list[str] = field(default_factory=list)
    pairs: dict[str, int] = field(default_factory=dict)  # per file
    ties: dict[str, int] = field(default_factory=dict)
    both_bad: dict[str, int] = field(default_factory=dict)
    judgments: int = 0

    def __str__(self) -> str:
        lines = [f"{count(self.judgments, 'judgment')} exported"]
        for f in self.files:
            extra = (f": {count(self.pairs[f], 'pair')} ({count(self.ties.get(f, 0), 'tie')}, "
                     f"{self.both_bad.get(f, 0)} both-bad left out)") if f in self.pairs else ""
            lines.append(f"  {f}{extra}")
        return "\n".join(lines)


def count(n: int, noun: str) -> str:
    """``1 pair``, ``2 pairs``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def plain_label(setting: dict[str, Any], beta: float | None = None) -> str:
    """A setting's name for the battles export when the caller gives none."""
    if setting.get("method") == "base":
        return "base"
    name = "best_of_n" + str(setting.get("n", "")) if setting.get("method") == "best_of_n" else setting.get("method", "?")
    weights = " ".join(f"{k}={v:g}" for k, v in sorted((setting.get("weights") or {}).items()))
    return " ".join(x for x in (name, weights, f"beta={beta:g}" if beta not in (None, 1.0) else "") if x)


def _prompt_value(row: pd.Series, conversational: bool) -> Any:
    if not conversational:
        return row["prompt"]
    if row.get("prompt_messages"):
        return list(row["prompt_messages"])
    return [{"role": "user", "content": row["prompt"]}]


def trl_rows(df: pd.DataFrame, verdict_col: str = "verdict", conversational: bool = False) -> tuple[list[dict], int, int]:
    """(rows, ties, both_bad) from a judgments frame, using one verdict column."""
    rows, ties, both_bad = [], 0, 0
    if verdict_col not in df:
        return rows, ties, both_bad
    for _, r in df.iterrows():
        v = r[verdict_col]
        if v == "tie":
            ties += 1
            continue
        if v == "both_bad":
            both_bad += 1
            continue
        if v not in ("A", "B"):
            continue
        win, lose = ("a", "b") if v == "A" else ("b", "a")
        chosen, rejected = r[f"completion_{win}"], r[f"completion_{lose}"]
        if conversational:
            chosen = [{"role": "assistant", "content": chosen}]
            rejected = [{"role": "assistant", "content": rejected}]
        rows.append({"prompt": _prompt_value(r, conversational), "chosen": chosen, "rejected": rejected})
    return rows, ties, both_bad


def _write_rows(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        with path.open("w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")


def export(store: Store, fmt: str, out: str | Path, flt: JudgmentFilter | None = None,
           label: Callable[[dict[str, Any], float], str] = plain_label) -> ExportSummary:
    """Write an export of the judgments matching ``flt`` to ``out`` (see the module docstring)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {list(FORMATS)}")
    flt = flt or JudgmentFilter()
    out = Path(out)
    df = store.judgments_frame(flt)
    summary = ExportSummary(judgments=len(df))
    if fmt == "csv":
        out.parent.mkdir(parents=True, exist_ok=True)
        table = df.copy()
        for col in table.columns:
            if col.split("_")[0] in ("setting", "weights", "scores") or col == "prompt_messages":
                table[col] = [json.dumps(v, sort_keys=True) if v is not None else "" for v in table[col]]
        table.to_csv(out, index=False)
        summary.files.append(str(out))
    elif fmt == "battles":
        rows = [{"question_id": f"judgment-{r.judgment_id}", "prompt": r.prompt, "model_a": label(r.setting_a, r.beta_a),
                 "model_b": label(r.setting_b, r.beta_b), "winner": _WINNER[r.verdict], "judge": r.annotator or "anonymous",
                 "settings_a": {**r.setting_a, "beta": r.beta_a, "temperature": r.temperature_a, "top_k": r.top_k_a,
                                "top_p": r.top_p_a, "seed": r.seed_a},
                 "settings_b": {**r.setting_b, "beta": r.beta_b, "temperature": r.temperature_b, "top_k": r.top_k_b,
                                "top_p": r.top_p_b, "seed": r.seed_b},
                 "objective_winners": {c[len("verdict_"):]: _WINNER[v] for c, v in r._asdict().items()
                                       if c.startswith("verdict_") and isinstance(v, str) and v in _WINNER},
                 "tstamp": pd.Timestamp(r.created_at).timestamp(), "model_set": r.model_set}
                for r in df.itertuples(index=False)] if not df.empty else []
        _write_rows(rows, out)
        summary.files.append(str(out))
    else:
        conversational = fmt == "trl-conversational"
        targets: list[tuple[str, Path]]
        if flt.objective:
            targets = [(f"verdict_{flt.objective}", out)]
        else:
            targets = [("verdict", out)]
            objectives = sorted(c[len("verdict_"):] for c in df.columns if c.startswith("verdict_"))
            # One more file per objective that has its own verdicts: out.<objective>.jsonl
            targets += [(f"verdict_{o}", out.with_name(f"{out.stem}.{o}{out.suffix}")) for o in objectives]
        for col, path in targets:
            rows, ties, both_bad = trl_rows(df, col, conversational)
            _write_rows(rows, path)
            summary.files.append(str(path))
            summary.pairs[str(path)], summary.ties[str(path)], summary.both_bad[str(path)] = len(rows), ties, both_bad
    return summary
