"""Exports of the judgments, in the formats trainers and analysts read.

- ``trl`` / ``trl-conversational``: TRL preference rows (``prompt``/``chosen``/``rejected``), JSONL
  or Parquet by the file's suffix; one file per objective when per-objective verdicts exist.
  Ties and "both bad" give no pair and are counted.
- ``csv``: every judgment with both sides' settings (``genarm_core train-arm --format dashboard`` reads it);
  settings, weights and scores are JSON in their cells.
- ``battles``: FastChat-style battle JSONL (``model_a``, ``model_b``, ``winner``) for Elo analysis;
  a setting's name comes from the caller's ``label`` (the dashboard passes its own), by default a
  plain one such as ``genarm harmlessness=1 helpfulness=0.5 beta=1``.
- ``hf``: a folder that ``datasets.load_from_disk`` loads (every judgment and every skip, one row
  each, settings as JSON text), with a dataset card (``README.md``: fields, counts, agreement).

Every judgment row carries its annotator, ``seconds_to_vote`` (from both completions being stored
to the vote), ``study_id``, ``from_queue`` (served by the annotation queue) and ``skipped``; the
CSV and ``hf`` exports also list the queue's skips (``skipped`` true, no verdict). The preference
exports (``trl*``) never contain a skip or a ground-truth pair (``ground_truth``: the known
answer of a study's check pair, empty otherwise), and with ``agreed=True`` keep only pairs that two or more
named annotators judged, all alike (one row per pair).

The output file's folder is created if it does not exist.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from .store import JudgmentFilter, Store
from .values import VERDICTS

FORMATS = ("trl", "trl-conversational", "csv", "battles", "hf")
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
    method, n = setting.get("method", "?"), setting.get("n")
    name = f"{method}{n}" if n not in (None, 1) else method  # a method with candidates (Best-of-N, ARGS, blockwise) names N
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
    if "ground_truth" in df:  # a study's ground-truth pairs test annotators; they are no training data
        df = df[df["ground_truth"].isna()]
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


def _enrich(store: Store, df: pd.DataFrame) -> pd.DataFrame:
    """Add seconds_to_vote, from_queue and skipped to a judgments frame."""
    if df.empty:
        return df
    queue = store.queue_frame()
    queued = set(queue.loc[queue["status"] == "judged", "judgment_id"].dropna().astype(int))
    df = df.copy()
    df["seconds_to_vote"] = [(c - r).total_seconds() if c is not None and r is not None else None
                             for c, r in zip(df["created_at"], df["pair_ready_at"])]
    df["from_queue"] = [int(j) in queued for j in df["judgment_id"]]
    df["skipped"] = False
    return df


def _skip_rows(store: Store, flt: JudgmentFilter) -> pd.DataFrame:
    """The queue's skips as rows shaped like judgments (no verdict), for the CSV and hf exports."""
    skips = store.queue_frame()
    skips = skips[skips["status"] == "skipped"]
    if flt.annotator:
        skips = skips[skips["annotator"] == flt.annotator]
    if skips.empty:
        return pd.DataFrame()
    gens = store.generations_frame().set_index("id")
    rows = []
    for r in skips.itertuples(index=False):
        a, b = gens.loc[r.generation_a_id], gens.loc[r.generation_b_id]
        rows.append({"judgment_id": None, "created_at": r.at, "annotator": r.annotator, "verdict": "", "prompt": a["prompt"],
                     "completion_a": a["completion"], "completion_b": b["completion"], "generation_a_id": r.generation_a_id,
                     "generation_b_id": r.generation_b_id, "setting_a": a["setting"], "setting_b": b["setting"],
                     "study_id": r.study_id, "from_queue": True, "skipped": True})
    return pd.DataFrame(rows)


def agreed_only(df: pd.DataFrame, verdict_col: str = "verdict") -> pd.DataFrame:
    """One judgment per pair that two or more named annotators judged, all with the same verdict."""
    if df.empty or verdict_col not in df:
        return df.iloc[0:0]
    named = df[df["annotator"].fillna("").str.strip() != ""]
    flip = {"A": "B", "B": "A"}
    keep = []
    groups: dict[tuple[int, int], list[tuple[int, str]]] = {}
    for idx, a, b, v in zip(named.index, named["generation_a_id"], named["generation_b_id"], named[verdict_col]):
        if not isinstance(v, str):
            continue
        key, label = ((a, b), v) if a <= b else ((b, a), flip.get(v, v))
        groups.setdefault(key, []).append((idx, label))
    for members in groups.values():
        if len(members) >= 2 and len({lab for _, lab in members}) == 1:
            keep.append(members[0][0])
    return df.loc[keep]


#: What a spreadsheet reads as the start of a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(table: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula, escaped as OWASP advises: a single quote
    before the first character (``=HYPERLINK(...)`` becomes ``'=HYPERLINK(...)``), and every text cell
    quoted by the writer. Only the CSV export does this; JSON and Parquet keep the text as it is.
    ``genarm_core.training.data.load_dashboard`` takes the quote off again when it reads the file."""
    table = table.copy()
    for col in table.columns:
        values = list(table[col])
        if any(isinstance(v, str) and v.startswith(FORMULA_STARTS) for v in values):
            table[col] = pd.Series([("'" + v) if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v
                                    for v in values], index=table.index, dtype=object)
    table.columns = [("'" + c) if isinstance(c, str) and c.startswith(FORMULA_STARTS) else c for c in table.columns]
    return table


def _as_text(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    for col in table.columns:
        if col.split("_")[0] in ("setting", "weights", "scores") or col == "prompt_messages":
            table[col] = [json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else ("" if v is None or v != v else str(v))
                          for v in table[col]]
    return table


def export(store: Store, fmt: str, out: str | Path, flt: JudgmentFilter | None = None,
           label: Callable[[dict[str, Any], float], str] = plain_label, agreed: bool = False) -> ExportSummary:
    """Write an export of the judgments matching ``flt`` to ``out`` (see the module docstring)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {list(FORMATS)}")
    flt = flt or JudgmentFilter()
    out = Path(out)
    df = _enrich(store, store.judgments_frame(flt))
    summary = ExportSummary(judgments=len(df))
    if fmt == "csv":
        out.parent.mkdir(parents=True, exist_ok=True)
        table = pd.concat([df, _skip_rows(store, flt)], ignore_index=True) if not df.empty else _skip_rows(store, flt)
        csv_safe(_as_text(table)).to_csv(out, index=False, quoting=csv.QUOTE_NONNUMERIC)
        summary.files.append(str(out))
    elif fmt == "hf":
        summary.files += write_hf(store, df, _skip_rows(store, flt), out, flt)
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
            rows, ties, both_bad = trl_rows(agreed_only(df, col) if agreed else df, col, conversational)
            _write_rows(rows, path)
            summary.files.append(str(path))
            summary.pairs[str(path)], summary.ties[str(path)], summary.both_bad[str(path)] = len(rows), ties, both_bad
    return summary


def _hf_schema() -> dict[str, Any]:
    """The ``hf`` export's columns and types when there are no rows to infer them from (the columns of
    every export; per-objective verdict columns appear only with their verdicts)."""
    import datasets

    text, whole, real, flag = (datasets.Value(t) for t in ("string", "int64", "float64", "bool"))
    cols: dict[str, Any] = {"judgment_id": whole, "created_at": text, "updated_at": text, "annotator": text,
                            "model_set": text, "verdict": text, "comment": text, "blind": flag, "swapped": flag,
                            "prompt": text, "completion_a": text, "completion_b": text, "generation_a_id": whole,
                            "generation_b_id": whole, "pair_ready_at": text, "study_id": whole, "ground_truth": text}
    for side in ("a", "b"):
        cols |= {f"method_{side}": text, f"setting_{side}": text, f"weights_{side}": text, f"beta_{side}": real,
                 f"temperature_{side}": real, f"top_k_{side}": whole, f"top_p_{side}": real,
                 f"max_new_tokens_{side}": whole, f"seed_{side}": whole, f"n_tokens_{side}": whole,
                 f"scores_{side}": text}
    return cols | {"seconds_to_vote": real, "from_queue": flag, "skipped": flag}


CARD = """---
language: en
pretty_name: {name}
tags: [preference, human-feedback, genarm]
---

# {name}

Human preference judgments recorded by the GenARM dashboard: for each pair of completions of one
prompt, an annotator's verdict (`A`, `B`, `tie`, `both_bad`), per-objective verdicts where given,
and the settings that produced each side. Skipped pairs are rows with `skipped` true and no verdict.

- judgments: {judgments}; skips: {skips}; annotators: {annotators}
- verdicts: {verdicts}
- agreement: {agreement}

## Fields

{fields}

Load it with `datasets.load_from_disk("{folder}")`.
"""


def write_hf(store: Store, df: pd.DataFrame, skips: pd.DataFrame, out: Path, flt: JudgmentFilter) -> list[str]:
    """A ``datasets`` folder (``save_to_disk``) plus its dataset card; returns the files written."""
    import datasets

    table = pd.concat([df, skips], ignore_index=True) if not skips.empty else df
    out.mkdir(parents=True, exist_ok=True)
    if table.empty:  # no rows: an empty dataset with the whole schema (a frame without rows has no types to infer)
        schema = _hf_schema()
        ds = datasets.Dataset.from_dict({name: [] for name in schema}, features=datasets.Features(schema))
        ds.save_to_disk(str(out), num_shards=1)  # else no shard is written and load_from_disk fails
        return _write_card(out, ds, df, skips)
    table = _as_text(table.drop(columns=[c for c in ("prompt_messages",) if c in table]))
    for col in ("created_at", "updated_at", "pair_ready_at"):
        if col in table:
            table[col] = [v.isoformat() if hasattr(v, "isoformat") else ("" if v is None or v != v else str(v))
                          for v in table[col]]
    for col in table.columns:
        if table[col].dtype == object:
            table[col] = [None if v is None or (isinstance(v, float) and v != v) else v for v in table[col]]
    ds = datasets.Dataset.from_pandas(table, preserve_index=False)
    ds.save_to_disk(str(out))
    return _write_card(out, ds, df, skips)


def _write_card(out: Path, ds: Any, df: pd.DataFrame, skips: pd.DataFrame) -> list[str]:
    """The dataset card (``README.md``) beside a saved dataset; returns the files written."""
    judged = df[df["verdict"].isin(VERDICTS)] if not df.empty else df
    try:
        from collections import Counter

        verdicts = ", ".join(f"{k} {v}" for k, v in sorted(Counter(judged["verdict"]).items())) or "none"
    except KeyError:
        verdicts = "none"
    agreement = _agreement_line(judged)
    fields = "\n".join(f"- `{name}`: {feature}" for name, feature in ds.features.items())
    card = CARD.format(name=out.name, judgments=len(df), skips=len(skips), verdicts=verdicts, agreement=agreement,
                       annotators=df["annotator"].nunique() if not df.empty else 0, fields=fields, folder=out.name)
    (out / "README.md").write_text(card, encoding="utf-8")
    return [str(out), str(out / "README.md")]


def _agreement_line(df: pd.DataFrame) -> str:
    """The card's agreement line: how often annotator pairs agree on the pairs two or more named
    annotators judged (``genarm stats agreement`` adds Krippendorff's α; storage does not compute it)."""
    if df.empty:
        return "no pair judged by two or more annotators"
    groups: dict[tuple[int, int], dict[str, str]] = {}
    flip = {"A": "B", "B": "A"}
    for a, b, who, v in zip(df["generation_a_id"], df["generation_b_id"], df["annotator"], df["verdict"]):
        if not (who or "").strip():
            continue
        key, lab = ((a, b), v) if a <= b else ((b, a), flip.get(v, v))
        groups.setdefault(key, {})[who] = lab
    same = total = items = 0
    for labels in groups.values():
        vals = list(labels.values())
        if len(vals) < 2:
            continue
        items += 1
        for i in range(len(vals)):
            for j in range(i + 1, len(vals)):
                total += 1
                same += vals[i] == vals[j]
    if not total:
        return "no pair judged by two or more annotators"
    return f"{items} pairs judged by two or more annotators; annotator pairs agree {same / total:.2f} of the time (n = {total})"
