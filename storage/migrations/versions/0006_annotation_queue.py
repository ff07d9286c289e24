"""The annotation queue: each annotator's slot on a study's pair (overlap enforced by a unique
slot number per pair), and skips.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pair = lambda: [  # noqa: E731
        sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id"), nullable=False),
        sa.Column("generation_a_id", sa.Integer, sa.ForeignKey("generations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("generation_b_id", sa.Integer, sa.ForeignKey("generations.id", ondelete="CASCADE"), nullable=False),
    ]
    op.create_table(
        "queue_slots",
        sa.Column("id", sa.Integer, primary_key=True),
        *pair(),
        sa.Column("slot", sa.Integer, nullable=False),
        sa.Column("annotator", sa.String(200), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("judgment_id", sa.Integer, sa.ForeignKey("judgments.id"), nullable=True),
        sa.UniqueConstraint("study_id", "generation_a_id", "generation_b_id", "slot", name="uq_queue_slot"),
        sa.UniqueConstraint("study_id", "generation_a_id", "generation_b_id", "annotator", name="uq_queue_annotator"),
    )
    op.create_index("ix_queue_slots_study_id", "queue_slots", ["study_id"])
    op.create_table(
        "skips",
        sa.Column("id", sa.Integer, primary_key=True),
        *pair(),
        sa.Column("annotator", sa.String(200), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("study_id", "generation_a_id", "generation_b_id", "annotator", name="uq_skip"),
    )
    op.create_index("ix_skips_study_id", "skips", ["study_id"])


def downgrade() -> None:
    op.drop_table("skips")
    op.drop_table("queue_slots")
