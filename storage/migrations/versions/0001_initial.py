"""The first schema: model sets, generations, judgments.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_sets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "generations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_set_id", sa.Integer, sa.ForeignKey("model_sets.id"), nullable=True, index=True),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("prompt_messages", sa.JSON, nullable=True),
        sa.Column("completion", sa.Text, nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("weights", sa.JSON, nullable=False),
        sa.Column("beta", sa.Float, nullable=False),
        sa.Column("temperature", sa.Float, nullable=False),
        sa.Column("top_k", sa.Integer, nullable=False),
        sa.Column("top_p", sa.Float, nullable=False),
        sa.Column("max_new_tokens", sa.Integer, nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("n_tokens", sa.Integer, nullable=False),
        sa.Column("latency_s", sa.Float, nullable=False),
        sa.Column("finish_reason", sa.String(16), nullable=False),
        sa.Column("scores", sa.JSON, nullable=False),
        sa.Column("trace", sa.JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_table(
        "judgments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("generation_a_id", sa.Integer, sa.ForeignKey("generations.id"), nullable=False, index=True),
        sa.Column("generation_b_id", sa.Integer, sa.ForeignKey("generations.id"), nullable=False, index=True),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("annotator", sa.String(200), nullable=False, index=True),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("blind", sa.Boolean, nullable=False),
        sa.Column("swapped", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("judgments")
    op.drop_table("generations")
    op.drop_table("model_sets")
