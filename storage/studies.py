"""Studies in the database: the study row, its cells (one generation each), judges' scores and
pairwise verdicts. A mixin of ``Store`` (one session per operation, plain records out).

Resuming is by cell: ``study_cells`` says which cells are stored, the runner generates the rest.
Several processes may fill one study at once (they are given disjoint cells); a cell stored twice
is refused by the (study, cell) unique key, never duplicated.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterator, Sequence

import pandas as pd
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import GenerationRow, JudgeScoreRow, JudgeVerdictRow, StudyRow
from .values import VERDICTS, clean_json


def fingerprint(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


class StudyTables:
    """Study reads and writes; ``Store`` provides ``_session``."""

    def _session(self, write: bool = False) -> Iterator[Session]:  # provided by Store
        raise NotImplementedError

    def open_study(self, name: str, key: dict[str, Any], config: dict[str, Any]) -> tuple[int, bool]:
        """Get or create the study whose completions ``key`` decides; returns (id, created).

        ``key`` is what fixes the completions (model set, prompts, settings, samples, decoding, seed):
        a rerun with the same key resumes the same study, whatever its judges. ``config`` (the whole
        study, judges included) is stored, and replaced by the latest run's."""
        fp = fingerprint(clean_json(key))
        with self._session(write=True) as s:
            row = s.scalar(select(StudyRow).where(StudyRow.fingerprint == fp))
            if row is not None:
                row.config = clean_json(config)
                return row.id, False
            row = StudyRow(name=name, fingerprint=fp, config=clean_json(config))
            s.add(row)
            try:
                s.flush()
            except IntegrityError:  # another process of the same run created it a moment ago
                s.rollback()
                return self.open_study(name, key, config)[0], False
            return row.id, True

    def studies(self) -> list[dict[str, Any]]:
        """Every study, newest first: id, name, created_at, cells stored."""
        from sqlalchemy import func

        with self._session() as s:
            counts = dict(s.execute(select(GenerationRow.study_id, func.count()).where(GenerationRow.study_id.is_not(None))
                                    .group_by(GenerationRow.study_id)).all())
            return [{"id": r.id, "name": r.name, "created_at": r.created_at, "cells": counts.get(r.id, 0),
                     "config": dict(r.config)} for r in s.scalars(select(StudyRow).order_by(StudyRow.id.desc()))]

    def study(self, study_id: int) -> dict[str, Any] | None:
        with self._session() as s:
            r = s.get(StudyRow, study_id)
            return None if r is None else {"id": r.id, "name": r.name, "created_at": r.created_at, "config": dict(r.config)}

    def study_cells(self, study_id: int) -> dict[str, int]:
        """The cells of a study already stored: cell -> generation id."""
        with self._session() as s:
            return {c: i for c, i in s.execute(select(GenerationRow.cell, GenerationRow.id)
                                               .where(GenerationRow.study_id == study_id))}

    def add_judge_scores(self, rows: Sequence[dict[str, Any]]) -> int:
        """Store judges' scores ({generation_id, judge, value, self_scored, details}); a (generation,
        judge) already scored is kept as it is. Returns how many were added."""
        if not rows:
            return 0
        ids = {r["generation_id"] for r in rows}
        with self._session(write=True) as s:
            have = set(s.execute(select(JudgeScoreRow.generation_id, JudgeScoreRow.judge)
                                 .where(JudgeScoreRow.generation_id.in_(ids))).all())
            new = [JudgeScoreRow(generation_id=r["generation_id"], judge=r["judge"], value=clean_json(r.get("value")),
                                 self_scored=bool(r.get("self_scored", False)), details=clean_json(r.get("details")))
                   for r in rows if (r["generation_id"], r["judge"]) not in have]
            s.add_all(new)
            return len(new)

    def scored(self, generation_ids: Sequence[int], judge: str) -> set[int]:
        """Which of these generations ``judge`` has scored already."""
        with self._session() as s:
            return set(s.scalars(select(JudgeScoreRow.generation_id).where(
                JudgeScoreRow.judge == judge, JudgeScoreRow.generation_id.in_(list(generation_ids)))))

    def add_judge_verdicts(self, rows: Sequence[dict[str, Any]]) -> int:
        """Store pairwise verdicts ({study_id, judge, generation_a_id, generation_b_id, verdict,
        consistent, details}); a pair this judge already judged is kept. Returns how many were added."""
        if not rows:
            return 0
        with self._session(write=True) as s:
            have = set(s.execute(select(JudgeVerdictRow.judge, JudgeVerdictRow.generation_a_id, JudgeVerdictRow.generation_b_id)
                                 .where(JudgeVerdictRow.generation_a_id.in_({r["generation_a_id"] for r in rows}))).all())
            new = []
            for r in rows:
                if r["verdict"] not in VERDICTS:
                    raise ValueError(f"verdict must be one of {VERDICTS}, got {r['verdict']!r}")
                if (r["judge"], r["generation_a_id"], r["generation_b_id"]) in have:
                    continue
                new.append(JudgeVerdictRow(study_id=r.get("study_id"), judge=r["judge"], generation_a_id=r["generation_a_id"],
                                           generation_b_id=r["generation_b_id"], verdict=r["verdict"],
                                           consistent=bool(r.get("consistent", True)), details=clean_json(r.get("details"))))
            s.add_all(new)
            return len(new)

    def judge_scores_frame(self, study_id: int | None = None, generation_ids: Sequence[int] | None = None) -> pd.DataFrame:
        """One row per (generation, judge): generation_id, judge, value, self_scored, details."""
        with self._session() as s:
            q = select(JudgeScoreRow)
            if study_id is not None:
                q = q.join(GenerationRow, JudgeScoreRow.generation_id == GenerationRow.id).where(GenerationRow.study_id == study_id)
            if generation_ids is not None:
                q = q.where(JudgeScoreRow.generation_id.in_(list(generation_ids)))
            rows = [{"generation_id": r.generation_id, "judge": r.judge, "value": r.value, "self_scored": r.self_scored,
                     "details": r.details} for r in s.scalars(q.order_by(JudgeScoreRow.id))]
        return pd.DataFrame(rows, columns=["generation_id", "judge", "value", "self_scored", "details"])

    def judge_verdicts_frame(self, study_id: int | None = None) -> pd.DataFrame:
        with self._session() as s:
            q = select(JudgeVerdictRow)
            if study_id is not None:
                q = q.where(JudgeVerdictRow.study_id == study_id)
            rows = [{"judge": r.judge, "generation_a_id": r.generation_a_id, "generation_b_id": r.generation_b_id,
                     "verdict": r.verdict, "consistent": r.consistent, "details": r.details}
                    for r in s.scalars(q.order_by(JudgeVerdictRow.id))]
        return pd.DataFrame(rows, columns=["judge", "generation_a_id", "generation_b_id", "verdict", "consistent", "details"])
