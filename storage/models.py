"""ORM tables (SQLAlchemy 2.0 typed mappings). Rows never leave the storage package.

The schema's history lives in ``storage/migrations``; this module is the head revision.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class ModelSetRow(Base):
    """What was loaded: the base and each objective's ARM (paths, revisions, hashes, adapters, templates)."""

    __tablename__ = "model_sets"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SweepRow(Base):
    """A weight sweep: its grid, prompts and settings; its generations point back to it."""

    __tablename__ = "sweeps"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StudyRow(Base):
    """A study: a comparison as data (model set, prompts, settings, samples, decoding, judges); its
    generations point back to it, one per cell (setting × prompt × sample)."""

    __tablename__ = "studies"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    #: A hash of what decides the completions (not the judges): the same study run again resumes.
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class QueueSlotRow(Base):
    """One annotator's place on one pair of a study's annotation queue: claimed when served, done
    when judged (its judgment). ``slot`` (0 .. overlap − 1) is unique per pair, so a pair is never
    served to more annotators than its overlap, however many take slots at once."""

    __tablename__ = "queue_slots"
    # AUTOINCREMENT: SQLite would otherwise reuse the id of a released claim for the next one, and a
    # stale page still holding the old id would vote on someone else's slot (PostgreSQL never reuses).
    __table_args__ = (UniqueConstraint("study_id", "generation_a_id", "generation_b_id", "slot", name="uq_queue_slot"),
                      UniqueConstraint("study_id", "generation_a_id", "generation_b_id", "annotator", name="uq_queue_annotator"),
                      {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    generation_a_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"))
    generation_b_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"))
    slot: Mapped[int] = mapped_column(Integer)
    annotator: Mapped[str] = mapped_column(String(200))
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    judgment_id: Mapped[Optional[int]] = mapped_column(ForeignKey("judgments.id"), nullable=True)


class SkipRow(Base):
    """A pair an annotator skipped: never a verdict, never in ratings; the pair is not served to them again."""

    __tablename__ = "skips"
    __table_args__ = (UniqueConstraint("study_id", "generation_a_id", "generation_b_id", "annotator", name="uq_skip"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    generation_a_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"))
    generation_b_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"))
    annotator: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class GenerationRow(Base):
    """One completion with every setting that produced it."""

    __tablename__ = "generations"
    __table_args__ = (Index("uq_generations_study_cell", "study_id", "cell", unique=True),
                      Index("uq_generations_uid", "uid", unique=True))
    id: Mapped[int] = mapped_column(primary_key=True)
    #: Made before the first attempt to store it (``storage.spool``): a retry of a generation that was
    #: stored after all (its answer lost) is recognised, never stored twice. None for rows from before.
    uid: Mapped[Optional[str]] = mapped_column(String(36))
    model_set_id: Mapped[Optional[int]] = mapped_column(ForeignKey("model_sets.id"), index=True)
    sweep_id: Mapped[Optional[int]] = mapped_column(ForeignKey("sweeps.id"), index=True)
    study_id: Mapped[Optional[int]] = mapped_column(ForeignKey("studies.id"), index=True)
    #: The study cell this completion fills ("setting index/prompt index/sample"); None outside studies.
    cell: Mapped[Optional[str]] = mapped_column(String(200))
    prompt: Mapped[str] = mapped_column(Text)
    prompt_messages: Mapped[Optional[list[Any]]] = mapped_column(JSON)
    completion: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(String(32))
    weights: Mapped[dict[str, float]] = mapped_column(JSON)
    #: The decoding setting as data: {"method", "weights" (non-zero, by objective), "n"}.
    setting: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    beta: Mapped[float] = mapped_column(Float)
    temperature: Mapped[float] = mapped_column(Float)
    top_k: Mapped[int] = mapped_column(Integer)
    top_p: Mapped[float] = mapped_column(Float)
    max_new_tokens: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    n_tokens: Mapped[int] = mapped_column(Integer)
    latency_s: Mapped[float] = mapped_column(Float)
    finish_reason: Mapped[str] = mapped_column(String(16))
    scores: Mapped[dict[str, float]] = mapped_column(JSON)
    trace: Mapped[Optional[list[Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class JudgmentRow(Base):
    """A person's verdict on two generations of the same prompt."""

    __tablename__ = "judgments"
    #: A key belongs to its annotator: one annotator's key never finds, blocks or answers with another's vote.
    __table_args__ = (UniqueConstraint("annotator", "idempotency_key", name="uq_judgments_annotator_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    generation_a_id: Mapped[int] = mapped_column(ForeignKey("generations.id"), index=True)
    generation_b_id: Mapped[int] = mapped_column(ForeignKey("generations.id"), index=True)
    verdict: Mapped[str] = mapped_column(String(16))  # A | B | tie | both_bad
    annotator: Mapped[str] = mapped_column(String(200), default="", index=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    blind: Mapped[bool] = mapped_column(Boolean, default=False)
    swapped: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The client's key for this vote: the same key with the same content returns the stored
    #: judgment; with other content it is refused (a change of verdict is an explicit edit).
    idempotency_key: Mapped[Optional[str]] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    #: When the verdict was last changed by an edit (None: never); earlier verdicts are in ``judgment_history``.
    updated_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    objective_verdicts: Mapped[list["ObjectiveVerdictRow"]] = relationship(back_populates="judgment", cascade="all, delete-orphan")
    history: Mapped[list["JudgmentHistoryRow"]] = relationship(back_populates="judgment", cascade="all, delete-orphan",
                                                               order_by="JudgmentHistoryRow.id")


class ObjectiveVerdictRow(Base):
    """One objective's verdict within a judgment (e.g. more harmless: B)."""

    __tablename__ = "objective_verdicts"
    __table_args__ = (UniqueConstraint("judgment_id", "objective"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    judgment_id: Mapped[int] = mapped_column(ForeignKey("judgments.id", ondelete="CASCADE"), index=True)
    objective: Mapped[str] = mapped_column(String(200))
    verdict: Mapped[str] = mapped_column(String(16))
    judgment: Mapped[JudgmentRow] = relationship(back_populates="objective_verdicts")


class JudgmentHistoryRow(Base):
    """A verdict a judgment held before an edit replaced it (the judgment row keeps the latest)."""

    __tablename__ = "judgment_history"
    id: Mapped[int] = mapped_column(primary_key=True)
    judgment_id: Mapped[int] = mapped_column(ForeignKey("judgments.id", ondelete="CASCADE"), index=True)
    verdict: Mapped[str] = mapped_column(String(16))
    objective_verdicts: Mapped[dict[str, str]] = mapped_column(JSON)
    comment: Mapped[str] = mapped_column(Text, default="")
    #: When this verdict was given (the judgment's creation, or the edit that set it).
    given_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    replaced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    judgment: Mapped[JudgmentRow] = relationship(back_populates="history")


class JudgeScoreRow(Base):
    """A judge's score of one generation (a reward model's value, a rule's 0/1, a metric)."""

    __tablename__ = "judge_scores"
    __table_args__ = (UniqueConstraint("generation_id", "judge"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    generation_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"), index=True)
    judge: Mapped[str] = mapped_column(String(200), index=True)
    value: Mapped[Optional[float]] = mapped_column(Float)  # None: the judge does not apply to this completion
    #: True when the judge is one of the models that steered the generation (an ARM scoring its own output).
    self_scored: Mapped[bool] = mapped_column(Boolean, default=False)
    details: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JudgeVerdictRow(Base):
    """A pairwise judge's verdict on two generations of the same prompt (A = ``generation_a_id``)."""

    __tablename__ = "judge_verdicts"
    __table_args__ = (UniqueConstraint("judge", "generation_a_id", "generation_b_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[Optional[int]] = mapped_column(ForeignKey("studies.id"), index=True)
    judge: Mapped[str] = mapped_column(String(200), index=True)
    generation_a_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"), index=True)
    generation_b_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"), index=True)
    verdict: Mapped[str] = mapped_column(String(16))  # A | B | tie
    #: Whether the verdicts in the two orders agreed (position bias check); False gives a tie.
    consistent: Mapped[bool] = mapped_column(Boolean, default=True)
    details: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PresetRow(Base):
    """A named weight setting saved from the dashboard."""

    __tablename__ = "presets"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    weights: Mapped[dict[str, float]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MetaRow(Base):
    """Server-wide values kept with the data (e.g. the secret that makes default vote keys unguessable)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class JobRow(Base):
    """A study queued for a worker: who asked, its spec (the study as data), where it stands."""

    __tablename__ = "jobs"
    __table_args__ = ({"sqlite_autoincrement": True},)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # "study"
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: queued | running | done | failed | cancelled
    status: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    worker: Mapped[Optional[str]] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    study_id: Mapped[Optional[int]] = mapped_column(ForeignKey("studies.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    #: the worker's last sign of life: a running job whose heartbeat is old is taken over by another worker
    heartbeat_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
