"""Per-objective verdicts, weight presets, and sweeps (generations may belong to a sweep).

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "objective_verdicts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("judgment_id", sa.Integer, sa.ForeignKey("judgments.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("objective", sa.String(200), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.UniqueConstraint("judgment_id", "objective"),
    )
    op.create_table(
        "presets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("weights", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "sweeps",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        # A plain ADD COLUMN with REFERENCES: SQLite allows it for a nullable column, and it avoids
        # rebuilding the table (which foreign keys from judgments would block).
        op.execute("ALTER TABLE generations ADD COLUMN sweep_id INTEGER REFERENCES sweeps(id)")
    else:
        op.add_column("generations", sa.Column("sweep_id", sa.Integer, nullable=True))
        op.create_foreign_key("fk_generations_sweep_id", "generations", "sweeps", ["sweep_id"], ["id"])
    op.create_index("ix_generations_sweep_id", "generations", ["sweep_id"])


def downgrade() -> None:
    op.drop_index("ix_generations_sweep_id", "generations")
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("sweep_id")
    op.drop_table("sweeps")
    op.drop_table("presets")
    op.drop_table("objective_verdicts")
