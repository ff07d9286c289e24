"""Studies (a comparison as data), each generation's study cell, and automatic judges' scores
and pairwise verdicts.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    # Plain ADD COLUMN (no batch copy of the table: SQLite would drop and rebuild ``generations``,
    # which the judgments' foreign keys forbid); the (study, cell) key is a unique index.
    if op.get_bind().dialect.name == "sqlite":  # SQLite adds a NULL-default column with a reference natively
        op.execute("ALTER TABLE generations ADD COLUMN study_id INTEGER REFERENCES studies (id)")
    else:
        op.add_column("generations", sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id"), nullable=True))
    op.add_column("generations", sa.Column("cell", sa.String(200), nullable=True))
    op.create_index("ix_generations_study_id", "generations", ["study_id"])
    op.create_index("uq_generations_study_cell", "generations", ["study_id", "cell"], unique=True)
    op.create_table(
        "judge_scores",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("generation_id", sa.Integer, sa.ForeignKey("generations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("judge", sa.String(200), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("self_scored", sa.Boolean, nullable=False),
        sa.Column("details", sa.JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("generation_id", "judge"),
    )
    op.create_index("ix_judge_scores_generation_id", "judge_scores", ["generation_id"])
    op.create_index("ix_judge_scores_judge", "judge_scores", ["judge"])
    op.create_table(
        "judge_verdicts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id"), nullable=True),
        sa.Column("judge", sa.String(200), nullable=False),
        sa.Column("generation_a_id", sa.Integer, sa.ForeignKey("generations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("generation_b_id", sa.Integer, sa.ForeignKey("generations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("consistent", sa.Boolean, nullable=False),
        sa.Column("details", sa.JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("judge", "generation_a_id", "generation_b_id"),
    )
    for col in ("study_id", "judge", "generation_a_id", "generation_b_id"):
        op.create_index(f"ix_judge_verdicts_{col}", "judge_verdicts", [col])


def downgrade() -> None:
    op.drop_table("judge_verdicts")
    op.drop_table("judge_scores")
    op.drop_index("uq_generations_study_cell", "generations")
    op.drop_index("ix_generations_study_id", "generations")
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("cell")
        batch.drop_column("study_id")
    op.drop_table("studies")
