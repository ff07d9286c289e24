"""Ownership and durability: an idempotency key is unique per annotator (not across everyone), a
generation carries an id made before its first write (a retry never stores it twice), queue slot
ids are never reused (SQLite AUTOINCREMENT), and a ``meta`` table for server-wide values.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("generations") as batch:
        batch.add_column(sa.Column("uid", sa.String(36), nullable=True))
    op.create_index("uq_generations_uid", "generations", ["uid"], unique=True)
    op.drop_index("ix_judgments_idempotency_key", "judgments")
    with op.batch_alter_table("judgments") as batch:
        batch.create_unique_constraint("uq_judgments_annotator_key", ["annotator", "idempotency_key"])
    # Rebuilt on SQLite so that its ids become AUTOINCREMENT (never reused); rows are copied.
    with op.batch_alter_table("queue_slots", recreate="always", table_kwargs={"sqlite_autoincrement": True}):
        pass
    op.create_table("meta", sa.Column("key", sa.String(64), primary_key=True), sa.Column("value", sa.Text, nullable=False))


def downgrade() -> None:
    op.drop_table("meta")
    with op.batch_alter_table("judgments") as batch:
        batch.drop_constraint("uq_judgments_annotator_key", type_="unique")
    op.create_index("ix_judgments_idempotency_key", "judgments", ["idempotency_key"], unique=True)
    op.drop_index("uq_generations_uid", "generations")
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("uid")
