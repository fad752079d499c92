"""Alembic environment: migrations run on the connection kms.store.schema.run_alembic hands over, inside the
transaction (and under the lock) that it holds; there is no alembic.ini and no URL here."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    # SQLite cannot ALTER most things: Alembic's batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
