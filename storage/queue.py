"""The annotation queue in the database: who is served which pair of a study, and who skipped what.

A mixin of ``Store``. Overlap is enforced by the database, not by a lock in one process: each
annotator's place on a pair is a slot numbered 0 .. overlap − 1, unique per pair, and unique per
(pair, annotator). Two annotators racing for a pair's last slot both try to insert the same slot
number; one insert wins, the other is refused by the unique key and moves on to another pair. A
claim not judged within ``stale_s`` is released for others.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Sequence

import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import QueueSlotRow, SkipRow

Pair = tuple[int, int]


class QueueTables:
    """Queue reads and writes; ``Store`` provides ``_session``."""

    def _session(self, write: bool = False) -> Iterator[Session]:  # provided by Store
        raise NotImplementedError

    def claim_pair(self, study_id: int, annotator: str, pairs: Sequence[Pair], overlap: int,
                   stale_s: float = 1800.0) -> tuple[int, Pair] | None:
        """Serve ``annotator`` a pair of ``pairs``: their open claim in this study if they have one;
        else the first pair (most taken slots first, then in the given order) that has a free slot
        and that they have not judged, claimed or skipped. Returns (slot id, pair), or None when
        nothing is left for them."""
        if overlap < 1:
            raise ValueError(f"overlap must be at least 1, got {overlap}")
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=stale_s)
        with self._session(write=True) as s:
            s.execute(delete(QueueSlotRow).where(QueueSlotRow.study_id == study_id, QueueSlotRow.judgment_id.is_(None),
                                                 QueueSlotRow.claimed_at < cutoff))
        for _ in range(3):  # a lost race re-reads the slots and tries the next pair
            with self._session() as s:
                slots = s.execute(select(QueueSlotRow.id, QueueSlotRow.generation_a_id, QueueSlotRow.generation_b_id,
                                         QueueSlotRow.slot, QueueSlotRow.annotator, QueueSlotRow.judgment_id)
                                  .where(QueueSlotRow.study_id == study_id)).all()
                skipped = set(s.execute(select(SkipRow.generation_a_id, SkipRow.generation_b_id)
                                        .where(SkipRow.study_id == study_id, SkipRow.annotator == annotator)).all())
            for sid, a, b, _, who, jid in slots:
                if who == annotator and jid is None:
                    return sid, (a, b)
            used: dict[Pair, set[int]] = {}
            mine: set[Pair] = set()
            for _, a, b, slot, who, _ in slots:
                used.setdefault((a, b), set()).add(slot)
                if who == annotator:
                    mine.add((a, b))
            open_pairs = [p for p in pairs if p not in mine and p not in skipped and len(used.get(p, ())) < overlap]
            # Pairs others have started come first, so that pairs reach their overlap (and give agreement
            # data) one after another instead of all at once at the end; stable among equals.
            open_pairs.sort(key=lambda p: -len(used.get(p, ())))
            if not open_pairs:
                return None
            for p in open_pairs:
                taken = used.get(p, set())
                free = next(k for k in range(len(taken) + 1) if k not in taken)  # the lowest free slot number
                try:
                    with self._session(write=True) as s:
                        row = QueueSlotRow(study_id=study_id, generation_a_id=p[0], generation_b_id=p[1], slot=free,
                                           annotator=annotator)
                        s.add(row)
                        s.flush()
                        return row.id, p
                except IntegrityError:
                    break  # someone took this slot (or this annotator is in another tab): read again
        return None

    def slot(self, slot_id: int) -> dict[str, Any] | None:
        with self._session() as s:
            r = s.get(QueueSlotRow, slot_id)
            return None if r is None else {"id": r.id, "study_id": r.study_id, "pair": (r.generation_a_id, r.generation_b_id),
                                           "annotator": r.annotator, "judgment_id": r.judgment_id}

    def skip_slot(self, slot_id: int, comment: str = "") -> None:
        """The annotator skips the pair: their slot is freed for someone else, the skip is kept."""
        with self._session(write=True) as s:
            row = s.get(QueueSlotRow, slot_id)
            if row is None or row.judgment_id is not None:
                raise ValueError(f"queue slot #{slot_id} is not open; take the next pair")
            s.add(SkipRow(study_id=row.study_id, generation_a_id=row.generation_a_id, generation_b_id=row.generation_b_id,
                          annotator=row.annotator, comment=comment or ""))
            s.delete(row)

    def queue_frame(self, study_id: int | None = None) -> pd.DataFrame:
        """Every slot and skip: study_id, generation_a_id, generation_b_id, annotator, status
        (claimed / judged / skipped), judgment_id, at."""
        cols = ["study_id", "generation_a_id", "generation_b_id", "annotator", "status", "judgment_id", "at"]
        with self._session() as s:
            q1, q2 = select(QueueSlotRow), select(SkipRow)
            if study_id is not None:
                q1, q2 = q1.where(QueueSlotRow.study_id == study_id), q2.where(SkipRow.study_id == study_id)
            rows = [{"study_id": r.study_id, "generation_a_id": r.generation_a_id, "generation_b_id": r.generation_b_id,
                     "annotator": r.annotator, "status": "judged" if r.judgment_id else "claimed",
                     "judgment_id": r.judgment_id, "at": r.claimed_at} for r in s.scalars(q1)]
            rows += [{"study_id": r.study_id, "generation_a_id": r.generation_a_id, "generation_b_id": r.generation_b_id,
                      "annotator": r.annotator, "status": "skipped", "judgment_id": None, "at": r.created_at}
                     for r in s.scalars(q2)]
        return pd.DataFrame(rows, columns=cols)
