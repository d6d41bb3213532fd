"""Alembic's entry point; migrations run only through :func:`curation.migrate.upgrade`."""

from __future__ import annotations

from alembic import context

from curation.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "curation migrations run on start-up through curation.migrate.upgrade(); "
        "open the database with curation.database.Database.open() instead of the alembic CLI"
    )
# render_as_batch: SQLite alters a table by copying it, which batch mode does for us.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
