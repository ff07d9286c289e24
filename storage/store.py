"""The research record: model sets, generations, judgments, presets and sweeps.

One ``Session`` per operation (``with self._session(write=True) as s:``); what leaves this
module are plain dicts and pandas DataFrames, never ORM rows. A database that is unreachable,
locked past its busy timeout, read-only or full raises ``StorageError`` with a readable message.
"""

from __future__ import annotations

import hashlib
import json
import math
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Sequence

import pandas as pd
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, aliased, selectinload

from .db import StorageError, open_engine
from .models import GenerationRow, JudgmentRow, ModelSetRow, ObjectiveVerdictRow, PresetRow, SweepRow

VERDICTS = ("A", "B", "tie", "both_bad")
_GEN_FIELDS = ("prompt", "prompt_messages", "completion", "method", "weights", "beta", "temperature", "top_k", "top_p",
               "max_new_tokens", "seed", "settings", "n_tokens", "latency_s", "finish_reason", "scores", "trace",
               "model_set_id", "sweep_id")


@dataclass(frozen=True)
class JudgmentFilter:
    """Which judgments an export or a table covers. Empty fields filter nothing."""

    since: datetime | None = None
    until: datetime | None = None
    annotator: str | None = None
    model_set: str | None = None  # model-set name
    objective: str | None = None  # keep judgments that carry this objective's verdict


def parse_date(text: str) -> datetime:
    """An ISO date or date-time (``2026-11-26``, ``2026-11-26T14:00``); naive values are taken as UTC.

    Raises:
        ValueError: with a message that shows the expected form.
    """
    try:
        d = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an ISO date: {text!r} (e.g. 2026-11-26 or 2026-11-26T14:00)") from None
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)


def _clean_json(value: Any) -> Any:
    """JSON cannot hold NaN/inf (PostgreSQL refuses them): store them as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    return value


def setting_label(method: str, weights: dict[str, float], beta: float | None = None, n: int | None = None) -> str:
    """A short readable name of a weight setting, e.g. ``genarm helpfulness=1 harmlessness=0.5``."""
    if method == "base":
        return "base"
    ws = " ".join(f"{k}={v:g}" for k, v in sorted(weights.items()) if v)
    label = f"{method} {ws}".strip() if ws else f"{method} (all weights 0)"
    if beta not in (None, 1.0):
        label += f" β={beta:g}"
    return label


class Store:
    """Everything the dashboard writes and reads. Thread-safe: each call opens its own session."""

    def __init__(self, url: str | None = None, engine: Engine | None = None, busy_timeout_s: float = 30.0):
        self.engine = engine or open_engine(url, busy_timeout_s=busy_timeout_s)
        self.url = self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _session(self, write: bool = False) -> Iterator[Session]:
        """A session (in one transaction when ``write``); operational failures become ``StorageError``."""
        try:
            with Session(self.engine) as s:
                if write:
                    with s.begin():
                        yield s
                else:
                    yield s
        except (OperationalError, InterfaceError) as exc:
            action = "write to" if write else "read from"
            raise StorageError(f"could not {action} the database {self.url}: {exc.orig}") from None

    # ------------------------------------------------------------------ writes

    def register_model_set(self, name: str, spec: dict[str, Any]) -> int:
        """Get or create the row describing a loaded model set (keyed by a hash of its spec)."""
        spec = _clean_json(spec)
        fp = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
        with self._session(write=True) as s:
            row = s.scalar(select(ModelSetRow).where(ModelSetRow.fingerprint == fp))
            if row is None:
                row = ModelSetRow(name=name, fingerprint=fp, spec=spec)
                s.add(row)
                try:
                    s.flush()
                except IntegrityError:  # another worker registered it first
                    s.rollback()
                    return self.register_model_set(name, spec)
            return row.id

    def add_generations(self, records: Sequence[dict[str, Any]]) -> list[int]:
        """Store generations in one transaction. Each record has the fields of ``GenerationRow``."""
        rows = []
        for rec in records:
            unknown = set(rec) - set(_GEN_FIELDS)
            if unknown:
                raise ValueError(f"unknown generation field(s): {sorted(unknown)}")
            data = {k: _clean_json(rec.get(k)) for k in _GEN_FIELDS if k in rec}
            data.setdefault("scores", {})
            data.setdefault("settings", {})
            rows.append(GenerationRow(**data))
        with self._session(write=True) as s:
            s.add_all(rows)
            s.flush()
            return [r.id for r in rows]

    def add_generation(self, **record: Any) -> int:
        return self.add_generations([record])[0]

    def add_judgment(self, generation_a_id: int, generation_b_id: int, verdict: str,
                     objective_verdicts: dict[str, str] | None = None, annotator: str = "", comment: str = "",
                     blind: bool = False, swapped: bool = False) -> int:
        """Record a verdict on two generations of the same prompt.

        Raises:
            ValueError: unknown verdict, missing generation, different prompts, or the same generation twice.
        """
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
        per_obj = {k: v for k, v in (objective_verdicts or {}).items() if v}
        for obj, v in per_obj.items():
            if v not in VERDICTS:
                raise ValueError(f"verdict for {obj!r} must be one of {VERDICTS}, got {v!r}")
        if generation_a_id == generation_b_id:
            raise ValueError("a judgment compares two different generations")
        with self._session(write=True) as s:
            a, b = s.get(GenerationRow, generation_a_id), s.get(GenerationRow, generation_b_id)
            if a is None or b is None:
                raise ValueError(f"no generation with id {generation_a_id if a is None else generation_b_id}")
            if a.prompt != b.prompt:
                raise ValueError("the two generations answer different prompts")
            row = JudgmentRow(generation_a_id=a.id, generation_b_id=b.id, verdict=verdict, annotator=annotator.strip(),
                              comment=comment, blind=bool(blind), swapped=bool(swapped),
                              objective_verdicts=[ObjectiveVerdictRow(objective=k, verdict=v) for k, v in per_obj.items()])
            s.add(row)
            s.flush()
            return row.id

    def create_sweep(self, name: str, config: dict[str, Any]) -> int:
        with self._session(write=True) as s:
            row = SweepRow(name=name, config=_clean_json(config))
            s.add(row)
            s.flush()
            return row.id

    def save_preset(self, name: str, weights: dict[str, float]) -> None:
        name = name.strip()
        if not name:
            raise ValueError("a preset needs a name")
        with self._session(write=True) as s:
            row = s.scalar(select(PresetRow).where(PresetRow.name == name))
            if row is None:
                s.add(PresetRow(name=name, weights=dict(weights)))
            else:
                row.weights = dict(weights)

    def delete_preset(self, name: str) -> None:
        with self._session(write=True) as s:
            row = s.scalar(select(PresetRow).where(PresetRow.name == name))
            if row is not None:
                s.delete(row)

    # ------------------------------------------------------------------ reads

    def presets(self) -> dict[str, dict[str, float]]:
        with self._session() as s:
            return {r.name: dict(r.weights) for r in s.scalars(select(PresetRow).order_by(PresetRow.name))}

    def generation(self, generation_id: int) -> dict[str, Any] | None:
        with self._session() as s:
            row = s.get(GenerationRow, generation_id)
            return None if row is None else _gen_dict(row)

    def generations_frame(self, sweep_id: int | None = None, include_trace: bool = False) -> pd.DataFrame:
        """Every generation (or a sweep's), one row each, weights and scores as ``w_<obj>``/``score_<obj>`` columns."""
        with self._session() as s:
            q = select(GenerationRow, ModelSetRow.name).outerjoin(ModelSetRow, GenerationRow.model_set_id == ModelSetRow.id)
            if sweep_id is not None:
                q = q.where(GenerationRow.sweep_id == sweep_id)
            records = []
            for row, ms_name in s.execute(q.order_by(GenerationRow.id)):
                d = _gen_dict(row, include_trace)
                d["model_set"] = ms_name
                for k, v in (row.weights or {}).items():
                    d[f"w_{k}"] = v
                for k, v in (row.scores or {}).items():
                    d[f"score_{k}"] = v
                records.append(d)
        return pd.DataFrame.from_records(records)

    def judgments_frame(self, flt: JudgmentFilter | None = None) -> pd.DataFrame:
        """One row per judgment with both generations' text and settings and ``verdict_<objective>`` columns."""
        flt = flt or JudgmentFilter()
        GA, GB = aliased(GenerationRow), aliased(GenerationRow)
        with self._session() as s:
            q = (select(JudgmentRow, GA, GB, ModelSetRow.name)
                 .join(GA, JudgmentRow.generation_a_id == GA.id).join(GB, JudgmentRow.generation_b_id == GB.id)
                 .outerjoin(ModelSetRow, GA.model_set_id == ModelSetRow.id)
                 .options(selectinload(JudgmentRow.objective_verdicts)).order_by(JudgmentRow.id))
            if flt.since is not None:
                q = q.where(JudgmentRow.created_at >= flt.since)
            if flt.until is not None:
                q = q.where(JudgmentRow.created_at <= flt.until)
            if flt.annotator:
                q = q.where(JudgmentRow.annotator == flt.annotator)
            if flt.model_set:
                q = q.where(ModelSetRow.name == flt.model_set)
            records = []
            for j, a, b, ms_name in s.execute(q):
                per_obj = {v.objective: v.verdict for v in j.objective_verdicts}
                if flt.objective and flt.objective not in per_obj:
                    continue
                rec = {"judgment_id": j.id, "created_at": j.created_at, "annotator": j.annotator, "model_set": ms_name,
                       "verdict": j.verdict, "comment": j.comment, "blind": j.blind, "swapped": j.swapped,
                       "prompt": a.prompt, "prompt_messages": json.dumps(a.prompt_messages) if a.prompt_messages else "",
                       "completion_a": a.completion, "completion_b": b.completion,
                       "generation_a_id": a.id, "generation_b_id": b.id}
                for side, g in (("a", a), ("b", b)):
                    rec[f"method_{side}"] = g.method
                    rec[f"setting_{side}"] = setting_label(g.method, g.weights or {}, g.beta)
                    rec[f"weights_{side}"] = json.dumps(g.weights or {}, sort_keys=True)
                    for key in ("beta", "temperature", "top_k", "top_p", "max_new_tokens", "seed", "n_tokens"):
                        rec[f"{key}_{side}"] = getattr(g, key)
                    rec[f"scores_{side}"] = json.dumps(g.scores or {}, sort_keys=True)
                for k, v in per_obj.items():
                    rec[f"verdict_{k}"] = v
                records.append(rec)
        return pd.DataFrame.from_records(records)

    def counts(self) -> dict[str, int]:
        from sqlalchemy import func

        with self._session() as s:
            return {name: s.scalar(select(func.count()).select_from(model)) or 0
                    for name, model in (("model_sets", ModelSetRow), ("generations", GenerationRow),
                                        ("judgments", JudgmentRow), ("objective_verdicts", ObjectiveVerdictRow),
                                        ("presets", PresetRow), ("sweeps", SweepRow))}

    def objectives(self) -> list[str]:
        with self._session() as s:
            return sorted(set(s.scalars(select(ObjectiveVerdictRow.objective))))

    def annotators(self) -> list[str]:
        with self._session() as s:
            return sorted({a for a in s.scalars(select(JudgmentRow.annotator)) if a})


def _gen_dict(row: GenerationRow, include_trace: bool = True) -> dict[str, Any]:
    d = {k: getattr(row, k) for k in _GEN_FIELDS if include_trace or k != "trace"}
    d["id"] = row.id
    d["created_at"] = row.created_at
    return d


def win_rates(judgments: pd.DataFrame, objective: str | None = None) -> pd.DataFrame:
    """Win rate of every setting against whatever it was compared with.

    Each judgment counts once for each side's setting. ``win_rate`` = win / (win + tie + lose)
    (GENARM.md §6); ``win_rate_half_ties`` = (win + ½ tie) / n; "both bad" counts as a tie for
    both.
    """
    col = f"verdict_{objective}" if objective else "verdict"
    cols = ["setting", "n", "wins", "ties", "losses", "both_bad", "win_rate", "win_rate_half_ties"]
    if judgments.empty or col not in judgments:
        return pd.DataFrame(columns=cols)
    tally: dict[str, dict[str, int]] = {}
    for _, r in judgments.iterrows():
        v = r[col]
        if not isinstance(v, str) or v not in VERDICTS:
            continue
        for side, other in (("a", "B"), ("b", "A")):
            t = tally.setdefault(r[f"setting_{side}"], {"wins": 0, "ties": 0, "losses": 0, "both_bad": 0})
            if v == side.upper():
                t["wins"] += 1
            elif v == other:
                t["losses"] += 1
            elif v == "tie":
                t["ties"] += 1
            else:
                t["both_bad"] += 1
    rows = []
    for setting, t in tally.items():
        n = sum(t.values())
        ties = t["ties"] + t["both_bad"]
        rows.append({"setting": setting, "n": n, **t, "win_rate": t["wins"] / n if n else float("nan"),
                     "win_rate_half_ties": (t["wins"] + 0.5 * ties) / n if n else float("nan")})
    return pd.DataFrame(rows, columns=cols).sort_values("win_rate", ascending=False, ignore_index=True)


__all__ = ["Store", "StorageError", "JudgmentFilter", "VERDICTS", "win_rates", "setting_label", "parse_date"]
