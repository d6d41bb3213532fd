"""The review queue: collections, their documents, and the curators' review events.

Revision ID: 0003
Revises: 0002

The baseline creates missing tables from ``curation/schema.py`` as it is today, so a
database created fresh already has these three tables: each is created (with its
indexes) only where it is missing.
"""

from __future__ import annotations

from alembic import op

from curation.schema import (
    collection_documents_table,
    collections_table,
    review_events_table,
)

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# In dependency order: each table's foreign keys name only tables before it.
_TABLES = (collections_table, collection_documents_table, review_events_table)


def upgrade() -> None:
    for table in _TABLES:
        table.create(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    for table in reversed(_TABLES):
        table.drop(op.get_bind(), checkfirst=True)
