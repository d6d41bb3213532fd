"""model_versions.weights_sha256: the weights' hash, checked before a version is served.

Revision ID: 0002
Revises: 0001

Versions registered before this revision get NULL; the registry computes and stores
their hash on their first verification (:meth:`curation.registry.Registry.verify`).
The baseline creates missing tables from ``curation/schema.py`` as it is today, so a
database created fresh already has the column: it is added only where it is missing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("model_versions")}
    if "weights_sha256" in columns:
        return
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("weights_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("weights_sha256")
