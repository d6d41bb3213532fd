"""The layout before Alembic: every table the two-file installations had.

Revision ID: 0001
Revises: none

Creates what is missing and leaves what exists: an installation made before Alembic
already has some of these tables (with the columns of its day), a fresh one none.
Missing tables are created as ``curation/schema.py`` defines them now, so a fresh
database is at the newest layout after this revision alone; every later revision
therefore adds a column or an index only where it is missing (see 0002), and
``tests/test_migrations.py`` checks both paths (fresh, and the pre-Alembic files)
end at exactly ``schema.py``.
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
