"""The research record: model sets, generations, judgments, presets and sweeps.

One ``Session`` per operation (``with self._session(write=True) as s:``); what leaves this
module are plain dicts and pandas DataFrames, never ORM rows. A database that is unreachable,
locked past its busy timeout, read-only or full raises ``StorageError`` with a readable message.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator, Sequence

import pandas as pd
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, aliased, selectinload

from .db import StorageError, open_engine
from .values import VERDICTS, clean_json
from .jobs import JobTables
from .queue import QueueTables
from .studies import StudyTables
from .models import (GenerationRow, JudgeScoreRow, JudgeVerdictRow, JudgmentHistoryRow, JudgmentRow, MetaRow, ModelSetRow,
                     ObjectiveVerdictRow, PresetRow, StudyRow, SweepRow, utcnow)

_GEN_FIELDS = ("uid", "prompt", "prompt_messages", "completion", "method", "weights", "setting", "beta", "temperature", "top_k", "top_p",
               "max_new_tokens", "seed", "settings", "n_tokens", "latency_s", "finish_reason", "scores", "trace",
               "model_set_id", "sweep_id", "study_id", "cell")


def _checked_verdicts(verdict: str, per_objective: dict[str, str]) -> dict[str, str]:
    """The per-objective verdicts that were given (blanks dropped), after checking every verdict."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    per = {k: v for k, v in per_objective.items() if v}
    for obj, v in per.items():
        if v not in VERDICTS:
            raise ValueError(f"verdict for {obj!r} must be one of {VERDICTS}, got {v!r}")
    return per


class JudgmentExists(ValueError):
    """A vote that would replace a stored judgment of the same pair by the same annotator (or key).

    Keys and pairs are looked up among the voter's own judgments only, so the judgment this names
    (and its verdict) is always the voter's own."""

    def __init__(self, judgment_id: int, annotator: str, verdict: str):
        self.judgment_id, self.annotator, self.verdict = judgment_id, annotator, verdict
        who = f"annotator {annotator!r}" if annotator else "this key"
        super().__init__(f"a judgment of this pair by {who} exists (#{judgment_id}, verdict {verdict}); "
                         f"to change it, edit judgment #{judgment_id}")


@dataclass(frozen=True)
class _VoteContent:
    """What a vote says; two votes with equal content are the same vote."""

    verdict: str
    per_objective: dict[str, str]
    comment: str

    @staticmethod
    def of(row: JudgmentRow) -> "_VoteContent":
        return _VoteContent(row.verdict, {v.objective: v.verdict for v in row.objective_verdicts}, row.comment or "")


@dataclass(frozen=True)
class _Vote:
    """A vote as stored: the pair, its content, who, how it was shown, and its key."""

    a: int
    b: int
    content: _VoteContent
    annotator: str
    blind: bool
    swapped: bool
    key: str | None

    @staticmethod
    def checked(a: int, b: int, verdict: str, per_objective: dict[str, str] | None, annotator: str, comment: str,
                blind: bool, swapped: bool, key: str | None) -> "_Vote":
        per = _checked_verdicts(verdict, per_objective or {})
        if a == b:
            raise ValueError("a judgment compares two different generations")
        return _Vote(int(a), int(b), _VoteContent(verdict, per, comment or ""), annotator, bool(blind), bool(swapped),
                     key or None)


def _existing_vote(s: Session, vote: _Vote) -> int | None:
    """The stored judgment this vote repeats (its id), None when it is new; raises when it conflicts.
    Only the voter's own judgments are looked at: by their key, else by the pair."""
    own = select(JudgmentRow).options(selectinload(JudgmentRow.objective_verdicts)).where(
        JudgmentRow.annotator == vote.annotator)
    row = s.scalar(own.where(JudgmentRow.idempotency_key == vote.key)) if vote.key else None
    if row is not None and (row.generation_a_id, row.generation_b_id) != (vote.a, vote.b):
        raise ValueError(f"idempotency key {vote.key!r} was already used for a vote on other generations")
    if row is None and vote.annotator:
        pair = {vote.a, vote.b}
        row = s.scalar(own.where(JudgmentRow.generation_a_id.in_(pair), JudgmentRow.generation_b_id.in_(pair))
                       .order_by(JudgmentRow.id))
    if row is None:
        return None
    if _VoteContent.of(row) == vote.content:
        return row.id
    raise JudgmentExists(row.id, row.annotator, row.verdict)


def _insert_judgment(s: Session, vote: _Vote) -> int:
    """A new judgment row in the session's transaction; returns its id."""
    a, b = s.get(GenerationRow, vote.a), s.get(GenerationRow, vote.b)
    if a is None or b is None:
        raise ValueError(f"no generation with id {vote.a if a is None else vote.b}")
    if a.prompt != b.prompt:
        raise ValueError("the two generations answer different prompts")
    c = vote.content
    row = JudgmentRow(generation_a_id=a.id, generation_b_id=b.id, verdict=c.verdict, annotator=vote.annotator,
                      comment=c.comment, blind=vote.blind, swapped=vote.swapped, idempotency_key=vote.key,
                      objective_verdicts=[ObjectiveVerdictRow(objective=k, verdict=v) for k, v in c.per_objective.items()])
    s.add(row)
    s.flush()
    return row.id


@dataclass(frozen=True)
class JudgmentFilter:
    """Which judgments an export or a table covers. Empty fields filter nothing."""

    since: datetime | None = None
    until: datetime | None = None
    annotator: str | None = None
    model_set: str | None = None  # model-set name
    objective: str | None = None  # keep judgments that carry this objective's verdict
    study_id: int | None = None  # judgments of this study's completions


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


def setting_of(method: str, weights: dict[str, float] | None, setting: dict[str, Any] | None) -> dict[str, Any]:
    """A generation's setting as data: the stored column, or (rows from before it) the same dict made
    from its method and weights."""
    if setting:
        return dict(setting)
    return {"method": method, "weights": {} if method == "base" else {k: v for k, v in sorted((weights or {}).items()) if v},
            "n": 1}


class Store(StudyTables, QueueTables, JobTables):
    """Everything the dashboard writes and reads. Thread-safe: each call opens its own session.
    Studies' tables (cells, judges' scores and verdicts) are in ``storage.studies``."""

    def __init__(self, url: str | None = None, engine: Engine | None = None, busy_timeout_s: float | None = None,
                 create: bool = True):
        """``create=False`` (read-only commands): a SQLite database that does not exist is an error,
        not a new empty file. ``busy_timeout_s``: how long a SQLite write waits for another's lock
        before it fails (default ``$GENARM_DB_BUSY_TIMEOUT`` or 30 s)."""
        if busy_timeout_s is None:
            busy_timeout_s = float(os.environ.get("GENARM_DB_BUSY_TIMEOUT") or 30.0)
        self.engine = engine or open_engine(url, busy_timeout_s=busy_timeout_s, create=create)
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
        spec = clean_json(spec)
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

    def add_generations(self, records: Sequence[dict[str, Any]],
                        judge_scores: Sequence[dict[str, Any]] | None = None) -> list[int]:
        """Store generations in one transaction; returns their ids in order. Each record has the fields
        of ``GenerationRow``; ``judge_scores[i]`` ({judge: value}) are stored with record i, in the same
        transaction (the cost metrics a dashboard generation carries).

        A record whose ``uid`` is stored already (a retry whose first attempt did reach the database)
        is not stored again: its id is the stored one's, and its scores are left as they are.
        """
        data = []
        for rec in records:
            unknown = set(rec) - set(_GEN_FIELDS)
            if unknown:
                raise ValueError(f"unknown generation field(s): {sorted(unknown)}")
            d = {k: clean_json(rec.get(k)) for k in _GEN_FIELDS if k in rec}
            for k in ("prompt", "completion"):  # PostgreSQL's text cannot hold NUL: a model may write the byte
                if isinstance(d.get(k), str) and "\x00" in d[k]:
                    d[k] = d[k].replace("\x00", "\ufffd")
            d.setdefault("scores", {})
            d.setdefault("settings", {})
            data.append(d)
        scores = list(judge_scores) if judge_scores is not None else [{} for _ in data]
        if len(scores) != len(data):
            raise ValueError("judge_scores: one mapping per record")
        with self._session(write=True) as s:
            uids = [d["uid"] for d in data if d.get("uid")]
            stored = dict(s.execute(select(GenerationRow.uid, GenerationRow.id).where(GenerationRow.uid.in_(uids))).all()) \
                if uids else {}
            rows: list[GenerationRow | int] = []
            for d in data:
                if d.get("uid") in stored:
                    rows.append(stored[d["uid"]])
                    continue
                row = GenerationRow(**d)
                s.add(row)
                rows.append(row)
            s.flush()
            s.add_all(JudgeScoreRow(generation_id=r.id, judge=str(judge), value=clean_json(value))
                      for r, extra in zip(rows, scores) if not isinstance(r, int) for judge, value in extra.items())
            return [r if isinstance(r, int) else r.id for r in rows]

    def add_generation(self, **record: Any) -> int:
        return self.add_generations([record])[0]

    def secret(self, name: str) -> bytes:
        """A server-wide random secret kept in the database (made on first use, the same for every
        process that shares the database): what makes default vote keys unguessable."""
        with self._session() as s:
            row = s.get(MetaRow, name)
            if row is not None:
                return bytes.fromhex(row.value)
        try:
            with self._session(write=True) as s:
                s.add(MetaRow(key=name, value=secrets.token_hex(32)))
        except IntegrityError:  # another process made it a moment ago: theirs is the one
            pass
        with self._session() as s:
            return bytes.fromhex(s.get(MetaRow, name).value)

    def add_judgment(self, generation_a_id: int, generation_b_id: int, verdict: str,
                     objective_verdicts: dict[str, str] | None = None, annotator: str = "", comment: str = "",
                     blind: bool = False, swapped: bool = False, idempotency_key: str | None = None) -> int:
        """Record a verdict on two generations of the same prompt; returns the judgment's id.

        Idempotency, as payment APIs define it: a vote sent again with the same ``idempotency_key``
        and the same content (verdicts and comment) returns the judgment stored the first time; the
        same key with other content is refused with ``JudgmentExists``, and so is a second vote by
        a named annotator on a pair they already judged. A change of verdict is ``edit_judgment``.
        A key belongs to its annotator: unique per (annotator, key) and looked up among that
        annotator's judgments only, so another annotator's key finds, blocks and reveals nothing.

        Raises:
            JudgmentExists: this annotator (or this key) already judged the pair, differently.
            ValueError: unknown verdict, missing generation, different prompts, the same generation
            twice, or a key already used for a vote on other generations.
        """
        vote = _Vote.checked(generation_a_id, generation_b_id, verdict, objective_verdicts, annotator.strip(), comment,
                             blind, swapped, idempotency_key)
        try:
            with self._session(write=True) as s:
                existing = _existing_vote(s, vote)
                return existing if existing is not None else _insert_judgment(s, vote)
        except IntegrityError:  # the same key, stored by a concurrent request a moment ago: that one is the vote
            with self._session(write=True) as s:
                existing = _existing_vote(s, vote)
                if existing is None:
                    raise
                return existing

    def queue_vote(self, slot_id: int, annotator: str, pair: tuple[int, int], verdict: str, comment: str = "",
                   swapped: bool = False, idempotency_key: str | None = None) -> int:
        """An annotator's blind vote on their queue slot, and the slot finished with it, in one
        transaction: the slot must still be open, be ``annotator``'s and hold ``pair``. The same vote
        sent again (its answer lost) returns the judgment stored the first time.

        Raises:
            ValueError: the slot was released, is someone else's, or holds another pair.
            JudgmentExists: this annotator judged the pair already, differently.
        """
        from .models import QueueSlotRow

        vote = _Vote.checked(pair[0], pair[1], verdict, {}, annotator.strip(), comment, True, swapped, idempotency_key)
        with self._session(write=True) as s:
            slot = s.get(QueueSlotRow, slot_id, with_for_update=True)
            if slot is None:
                raise ValueError(f"queue slot #{slot_id} is not open (released after too long a wait, or skipped); "
                                 "take the next pair")
            if slot.annotator != vote.annotator or (slot.generation_a_id, slot.generation_b_id) != (vote.a, vote.b):
                raise ValueError(f"queue slot #{slot_id} is not this annotator's slot for this pair; take the next pair")
            existing = _existing_vote(s, vote)
            if slot.judgment_id is not None:
                if existing != slot.judgment_id:
                    raise ValueError(f"queue slot #{slot_id} is judged already; take the next pair")
                return slot.judgment_id
            jid = existing if existing is not None else _insert_judgment(s, vote)
            slot.judgment_id = jid
            return jid

    def edit_judgment(self, judgment_id: int, verdict: str, objective_verdicts: dict[str, str] | None = None,
                      comment: str | None = None, annotator: str | None = None) -> int:
        """Change a judgment's verdict (and its per-objective verdicts and comment: ``None`` keeps the
        stored ones). The verdict it replaces moves to the judgment's history; ratings read the latest.
        An edit that changes nothing is not recorded. With ``annotator``, only that annotator's
        judgment may be changed.

        Raises:
            ValueError: no such judgment, an unknown verdict, or a judgment by someone else.
        """
        checked = _checked_verdicts(verdict, objective_verdicts or {})
        per_obj = None if objective_verdicts is None else checked
        with self._session(write=True) as s:
            row = s.get(JudgmentRow, judgment_id, with_for_update=True,
                        options=[selectinload(JudgmentRow.objective_verdicts)])
            if row is None:
                raise ValueError(f"no judgment with id {judgment_id}")
            if annotator is not None and annotator.strip() != row.annotator:
                who = repr(row.annotator) if row.annotator else "an anonymous annotator"
                raise ValueError(f"judgment #{judgment_id} is by {who}; only they can change it")
            old = _VoteContent.of(row)
            new = _VoteContent(verdict, old.per_objective if per_obj is None else per_obj,
                               old.comment if comment is None else comment)
            if new == old:
                return row.id
            now = utcnow()
            row.history.append(JudgmentHistoryRow(verdict=old.verdict, objective_verdicts=old.per_objective,
                                                  comment=old.comment, given_at=row.updated_at or row.created_at,
                                                  replaced_at=now))
            row.verdict, row.comment, row.updated_at = new.verdict, new.comment, now
            # In place: replacing the collection would insert before deleting and trip (judgment, objective)'s unique key.
            for ov in list(row.objective_verdicts):
                if ov.objective in new.per_objective:
                    ov.verdict = new.per_objective[ov.objective]
                else:
                    row.objective_verdicts.remove(ov)
            row.objective_verdicts += [ObjectiveVerdictRow(objective=k, verdict=v) for k, v in new.per_objective.items()
                                       if k not in old.per_objective]
            s.flush()
            return row.id

    def judgment_history(self, judgment_id: int) -> list[dict[str, Any]]:
        """A judgment's earlier verdicts, oldest first (the judgment itself holds the latest)."""
        with self._session() as s:
            rows = s.scalars(select(JudgmentHistoryRow).where(JudgmentHistoryRow.judgment_id == judgment_id)
                             .order_by(JudgmentHistoryRow.id))
            return [{"verdict": r.verdict, "objective_verdicts": dict(r.objective_verdicts), "comment": r.comment,
                     "given_at": r.given_at, "replaced_at": r.replaced_at} for r in rows]

    def create_sweep(self, name: str, config: dict[str, Any]) -> int:
        with self._session(write=True) as s:
            row = SweepRow(name=name, config=clean_json(config))
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

    def generations_frame(self, sweep_id: int | None = None, include_trace: bool = False,
                          study_id: int | None = None) -> pd.DataFrame:
        """Every generation (or a sweep's, or a study's), one row each, weights and scores as
        ``w_<obj>``/``score_<obj>`` columns."""
        with self._session() as s:
            q = select(GenerationRow, ModelSetRow.name).outerjoin(ModelSetRow, GenerationRow.model_set_id == ModelSetRow.id)
            if sweep_id is not None:
                q = q.where(GenerationRow.sweep_id == sweep_id)
            if study_id is not None:
                q = q.where(GenerationRow.study_id == study_id)
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
        """One row per judgment with both generations' text and settings and ``verdict_<objective>`` columns.

        ``setting_a``/``setting_b`` are dicts (method, weights, n), ``weights_*`` and ``scores_*``
        dicts: data, not text (the exporters write JSON).
        """
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
            if flt.study_id is not None:
                q = q.where(GA.study_id == flt.study_id)
            records = []
            for j, a, b, ms_name in s.execute(q):
                per_obj = {v.objective: v.verdict for v in j.objective_verdicts}
                if flt.objective and flt.objective not in per_obj:
                    continue
                rec = {"judgment_id": j.id, "created_at": j.created_at, "updated_at": j.updated_at,
                       "annotator": j.annotator, "model_set": ms_name,
                       "verdict": j.verdict, "comment": j.comment, "blind": j.blind, "swapped": j.swapped,
                       "prompt": a.prompt, "prompt_messages": list(a.prompt_messages) if a.prompt_messages else None,
                       "completion_a": a.completion, "completion_b": b.completion,
                       "generation_a_id": a.id, "generation_b_id": b.id,
                       "pair_ready_at": max(a.created_at, b.created_at),  # when both completions were there
                       "study_id": a.study_id,
                       # a study's ground-truth pair: its known answer (None for every other judgment)
                       "ground_truth": (a.settings or {}).get("ground_truth") if (a.cell or "").startswith("ground truth")
                       else None}
                for side, g in (("a", a), ("b", b)):
                    rec[f"method_{side}"] = g.method
                    rec[f"setting_{side}"] = setting_of(g.method, g.weights, g.setting)
                    rec[f"weights_{side}"] = dict(g.weights or {})
                    for key in ("beta", "temperature", "top_k", "top_p", "max_new_tokens", "seed", "n_tokens"):
                        rec[f"{key}_{side}"] = getattr(g, key)
                    rec[f"scores_{side}"] = dict(g.scores or {})
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
                                        ("judgment_history", JudgmentHistoryRow), ("studies", StudyRow),
                                        ("judge_scores", JudgeScoreRow), ("judge_verdicts", JudgeVerdictRow),
                                        ("presets", PresetRow), ("sweeps", SweepRow))}

    def objectives(self) -> list[str]:
        with self._session() as s:
            return sorted(set(s.scalars(select(ObjectiveVerdictRow.objective))))

    def annotators(self) -> list[str]:
        with self._session() as s:
            return sorted({a for a in s.scalars(select(JudgmentRow.annotator)) if a})


def _gen_dict(row: GenerationRow, include_trace: bool = True) -> dict[str, Any]:
    d = {k: getattr(row, k) for k in _GEN_FIELDS if include_trace or k != "trace"}
    d["setting"] = setting_of(row.method, row.weights, row.setting)
    d["id"] = row.id
    d["created_at"] = row.created_at
    return d


__all__ = ["Store", "StorageError", "JudgmentExists", "JudgmentFilter", "VERDICTS", "setting_of", "parse_date"]
