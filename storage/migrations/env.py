"""Alembic environment: runs on the connection that ``storage.db`` hands over."""

from alembic import context

from storage.models import Base

config = context.config
connection = config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
