"""The annotation queue: a study's pairs served to annotators, blind, until each has its overlap.

The pairs of a study are each setting's completion against the reference's on the same prompt and
sample (already generated: nobody waits for decoding). A pair is served until ``overlap``
annotators have it, never twice to one annotator (``storage.queue``: the database enforces both,
also under concurrent annotators). The sides are shuffled per (annotator, pair), the settings
never shown; a vote is recorded as a blind judgment of the stored pair (``swapped`` says how it
was shown), a skip as a skip (never a verdict, never in ratings).
"""

from __future__ import annotations

import hashlib

import pandas as pd
from dataclasses import dataclass
from typing import Any

from genarm_core.models.config import Setting
from genarm_core.evaluation.study import DEFAULT_OVERLAP
from storage.db import StorageError
from storage.store import JudgmentExists, Store

from .errors import AlreadyJudged, UserError
from .pairs import swap_verdict
from .records import Records
from genarm_core.evaluation.study import GROUND_TRUTH, cell_position, is_study_cell



@dataclass(frozen=True)
class QueueItem:
    """One served pair, as the page shows it: ``left`` / ``right`` are the displayed sides."""

    slot_id: int
    study_id: int
    annotator: str
    generation_ids: tuple[int, int]  # stored (A, B): the setting's, the reference's
    swapped: bool  # the stored B is shown on the left
    prompt: str
    left: str
    right: str


def study_pairs(store: Store, study_id: int) -> list[tuple[int, int]]:
    """(setting's generation, reference's generation) for every non-reference cell of a study, by
    prompt and sample (so that early annotators cover many prompts)."""
    study = store.study(study_id)
    if study is None:
        raise UserError(f"study: no study #{study_id}")
    reference = Setting.from_dict(study["config"].get("reference") or {"method": "base"})
    gens = store.generations_frame(study_id=study_id)
    if gens.empty:
        return []
    ref, others = {}, []
    for gid, cell, setting in zip(gens["id"], gens["cell"], gens["setting"]):
        if not is_study_cell(cell):
            continue
        pos = cell_position(cell)
        if Setting.from_dict(setting) == reference:
            ref[pos] = int(gid)
        else:
            others.append((pos, int(gid)))
    others.sort()
    return [(gid, ref[pos]) for pos, gid in others if pos in ref]


def ground_truth_pairs(store: Store, study_id: int) -> list[tuple[int, int]]:
    """The study's ground-truth pairs as (generation a, generation b), in the study file's order."""
    gens = store.generations_frame(study_id=study_id)
    if gens.empty:
        return []
    sides: dict[int, dict[str, int]] = {}
    for gid, cell in zip(gens["id"], gens["cell"]):
        m = GROUND_TRUTH.match(cell or "")
        if m:
            sides.setdefault(int(m.group(1)), {})[m.group(2)] = int(gid)
    return [(v["a"], v["b"]) for _, v in sorted(sides.items()) if set(v) == {"a", "b"}]


def _hash_unit(*parts: Any) -> float:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:4], "little") / 2**32


def _swapped(annotator: str, pair: tuple[int, int]) -> bool:
    """The side shuffle: fixed per (annotator, pair), so a reload shows the pair the same way."""
    return hashlib.sha256(f"{annotator}|{pair[0]}|{pair[1]}".encode()).digest()[0] % 2 == 1


class Queue:
    def __init__(self, records: Records):
        self.records = records
        self.store = records.store

    def overlap(self, study_id: int) -> int:
        """Annotators per pair: fixed by the study (its file's ``overlap:``), not by each request."""
        study = self.store.study(study_id)
        if study is None:
            raise UserError(f"study: no study #{study_id}")
        return int(study["config"].get("overlap", DEFAULT_OVERLAP))

    def next(self, study_id: int, annotator: str, overlap: Any = None) -> QueueItem | None:
        """The annotator's open pair, or the next one they may judge; None when none is left.
        ``overlap``, when given, must be the study's own (a check, never a change)."""
        from .requests import name

        annotator = name(annotator, "annotator")
        if not annotator:
            raise UserError("annotator: type your name (the queue serves each pair once per annotator)")
        try:
            fixed = self.overlap(study_id)
            if overlap not in (None, "") and str(overlap).strip() not in (str(fixed), f"{fixed}.0"):
                raise UserError(f"overlap: study #{study_id} serves each pair to {fixed} annotators (its study file's "
                                f"overlap:); a request cannot change that, got {overlap!r}")
            claimed = self._claim_ground_truth(study_id, annotator)
            if claimed is None:
                claimed = self.store.claim_pair(study_id, annotator, study_pairs(self.store, study_id), fixed)
        except StorageError as exc:
            raise UserError(f"the queue was not read: {exc}") from None
        if claimed is None:
            return None
        return self.item(claimed[0])

    def _claim_ground_truth(self, study_id: int, annotator: str):
        """A ground-truth pair for this annotator, at the study's rate: the k-th pair they are served is
        one when a hash of (annotator, k) falls below the rate (so where they come is not predictable),
        while they have ground-truth pairs they have not seen. Every annotator may get every one."""
        gold = ground_truth_pairs(self.store, study_id)
        if not gold:
            return None
        q = self.store.queue_frame(study_id)
        mine = q[q["annotator"] == annotator]
        open_claim = mine[mine["status"] == "claimed"]
        if not open_claim.empty:
            return None  # claim_pair serves the open one again
        rate = float((self.store.study(study_id) or {}).get("config", {}).get("ground_truth_rate", 0.1))
        if _hash_unit(study_id, annotator, len(mine)) >= rate:
            return None
        seen = set(zip(mine["generation_a_id"], mine["generation_b_id"]))
        unseen = [p for p in gold if p not in seen]
        if not unseen:
            return None
        return self.store.claim_pair(study_id, annotator, unseen, overlap=1 << 30)

    def item(self, slot_id: Any, annotator: Any = None, judged: bool = False) -> QueueItem:
        """The served pair behind a slot id (the API's handle); ``annotator``, when given, must be its
        own. ``judged``: a slot already judged is found too (a vote sent again after its answer was
        lost; ``vote`` returns the stored judgment when the vote is the same)."""
        try:
            sid = int(slot_id)
        except (TypeError, ValueError, OverflowError):
            raise UserError(f"slot_id: a queue slot number, got {slot_id!r}") from None
        slot = self.store.slot(sid) if 0 < sid < 2**63 else None
        if slot is None or (slot["judgment_id"] is not None and not judged):
            raise UserError(f"slot_id: queue slot #{sid} is not open (judged, skipped or released); take the next pair")
        if annotator and str(annotator).strip() != slot["annotator"]:
            raise UserError(f"slot_id: queue slot #{sid} was not served to {str(annotator).strip()!r}; take the next pair")
        pair = tuple(slot["pair"])
        gens = self.store.generations_frame(study_id=slot["study_id"]).set_index("id")
        a, b = gens.loc[pair[0]], gens.loc[pair[1]]
        swapped = _swapped(slot["annotator"], pair)
        left, right = (b, a) if swapped else (a, b)
        return QueueItem(sid, slot["study_id"], slot["annotator"], pair, swapped, str(a["prompt"]), str(left["completion"]),
                         str(right["completion"]))

    def vote(self, item: QueueItem, shown_verdict: str, comment: str = "") -> int:
        """Record the annotator's verdict about the displayed sides and finish their slot, in one
        transaction that checks the slot is still theirs and holds this pair; returns the judgment id.
        Sent again (its answer lost), it returns the same judgment."""
        from .requests import text

        key = self.records.default_key("queue", item.study_id, item.slot_id, item.annotator)
        comment = text(comment, "comment", 5_000)
        try:
            return self.store.queue_vote(item.slot_id, item.annotator, item.generation_ids,
                                         swap_verdict(shown_verdict, item.swapped), comment or "", item.swapped, key)
        except JudgmentExists as exc:
            raise AlreadyJudged(f"{exc}; this vote was not stored", exc.judgment_id) from None
        except ValueError as exc:
            raise UserError(str(exc)) from None
        except StorageError as exc:
            raise UserError(f"the vote was not stored: {exc}. Vote again once the database is back") from None

    def skip(self, item: QueueItem, comment: str = "") -> None:
        from .requests import text

        comment = text(comment, "comment", 5_000)
        try:
            self.store.skip_slot(item.slot_id, comment)
        except ValueError as exc:
            raise UserError(str(exc)) from None

    def progress(self, study_id: int) -> dict[str, Any]:
        """Judged slots / needed (pairs × the study's overlap), pairs complete, skips, per annotator."""
        overlap = self.overlap(study_id)
        pairs = study_pairs(self.store, study_id)
        q = self.store.queue_frame(study_id)
        wanted = set(pairs)
        mask = pd.Series([(a, b) in wanted for a, b in zip(q["generation_a_id"], q["generation_b_id"])], index=q.index,
                         dtype=bool)
        q = q.loc[mask]  # not the ground truth
        judged = q[q["status"] == "judged"]
        per_pair = judged.groupby(["generation_a_id", "generation_b_id"]).size()
        per_annotator = {who: {"judged": int((part["status"] == "judged").sum()),
                               "skipped": int((part["status"] == "skipped").sum())}
                         for who, part in q.groupby("annotator")}
        return {"pairs": len(pairs), "overlap": overlap, "needed": len(pairs) * overlap, "judged": len(judged),
                "complete": int((per_pair >= overlap).sum()), "skipped": int((q["status"] == "skipped").sum()),
                "annotators": per_annotator}
