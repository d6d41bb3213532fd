"""The layout before Alembic: every table the two-file installations had.

Revision ID: 0001
Revises: none

Creates what is missing and leaves what exists: an installation made before Alembic
already has some of these tables (with exactly these columns), a fresh one none. Later
changes to ``curation/schema.py`` get their own revision with ``op`` calls; this one
then stays the layout of its day (copy the table definitions in here before changing
them in schema.py).
"""

from __future__ import annotations

from alembic import op

from curation.schema import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    raise NotImplementedError("the baseline is not undone: restore a backup instead")
