"""Changing a verdict is an explicit edit: the judgment keeps the latest verdict (``updated_at``)
and every earlier one moves to ``judgment_history``.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("judgments") as batch:
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "judgment_history",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("judgment_id", sa.Integer, sa.ForeignKey("judgments.id", ondelete="CASCADE"), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("objective_verdicts", sa.JSON, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("given_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_judgment_history_judgment_id", "judgment_history", ["judgment_id"])


def downgrade() -> None:
    op.drop_index("ix_judgment_history_judgment_id", "judgment_history")
    op.drop_table("judgment_history")
    with op.batch_alter_table("judgments") as batch:
        batch.drop_column("updated_at")
