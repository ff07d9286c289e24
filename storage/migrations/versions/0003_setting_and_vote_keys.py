"""Each generation's setting as its own column (method, weights, N as data); an idempotency key
per judgment, so that a vote sent again (its answer lost) is stored once.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("generations") as batch:
        batch.add_column(sa.Column("setting", sa.JSON, nullable=True))
    with op.batch_alter_table("judgments") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(200), nullable=True))
    op.create_index("ix_judgments_idempotency_key", "judgments", ["idempotency_key"], unique=True)
    # Earlier rows: the setting from their method, weights (zeros dropped) and N.
    gens = sa.table("generations", sa.column("id", sa.Integer), sa.column("method", sa.String),
                    sa.column("weights", sa.JSON), sa.column("settings", sa.JSON), sa.column("setting", sa.JSON))
    conn = op.get_bind()
    for row in conn.execute(sa.select(gens.c.id, gens.c.method, gens.c.weights, gens.c.settings)):
        n = int((row.settings or {}).get("n", 1)) if row.method == "best_of_n" else 1
        weights = {} if row.method == "base" else {k: v for k, v in sorted((row.weights or {}).items()) if v}
        conn.execute(gens.update().where(gens.c.id == row.id).values(setting={"method": row.method, "weights": weights, "n": n}))


def downgrade() -> None:
    op.drop_index("ix_judgments_idempotency_key", "judgments")
    with op.batch_alter_table("judgments") as batch:
        batch.drop_column("idempotency_key")
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("setting")
