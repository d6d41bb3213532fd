"""Bring a database to this code's schema on start-up, and fold in the two-file layout.

:func:`upgrade` runs on every :meth:`curation.database.Database.open`, inside the
schema lock, so the app and the worker starting at once take turns and the second
finds nothing to do:

1. Alembic upgrades the schema to head (``curation/migrations/versions``). A database
   made before Alembic has no ``alembic_version`` table; the baseline revision adds
   only the tables it lacks, keeping every row of those it has.
2. An installation of the two-file layout kept its corrections in
   ``<data folder>/corrections.sqlite3`` beside ``tagger.sqlite3``. Every row of that
   file is copied into the one database with its id, in one transaction, and the old
   file is renamed ``corrections.sqlite3.imported`` (kept, never deleted). A crash
   in between repeats the copy on the next start, and rows already there are skipped,
   so nothing is copied twice.

Example:

>>> import tempfile
>>> from curation.database import Database
>>> database = Database.open(data_dir=tempfile.mkdtemp())
>>> schema_revision(database) == head_revision()
True
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, func, insert, select, text
from sqlalchemy.exc import DBAPIError

from curation.database import Database, DatabaseError
from curation.schema import corrections_table

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
LEGACY_CORRECTIONS_FILE = "corrections.sqlite3"
IMPORTED_SUFFIX = ".imported"
_CORRECTION_COLUMNS = (
    "id",
    "sentence_key",
    "source",
    "sentence_index",
    "words",
    "labels",
    "predicted",
    "model_version",
    "annotator",
    "created_at",
)


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None  # the baseline always exists
    return head


def schema_revision(database: Database) -> str | None:
    with database.read() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(database: Database, *, legacy_dir: Path | None = None) -> int:
    """Migrate to head and import a two-file installation's corrections; returns how
    many corrections were imported (0 when there was nothing to import)."""
    try:
        with database.schema_lock() as connection:
            command.upgrade(alembic_config(connection), "head")
            imported = _import_legacy_corrections(connection, legacy_dir)
    except CommandError as error:
        raise DatabaseError(
            f"the database {database.display_url} has a schema this code does not know "
            f"({error})",
            fix="update the tagger (git pull, then make run) before opening this database; "
            "it was written by a newer version",
        ) from None
    except DBAPIError as error:
        raise DatabaseError(
            f"the database {database.display_url} cannot be opened or migrated "
            f"({type(error.orig).__name__}: {error.orig})",
            fix="check that TAGGER_DB_URL (or --db) names a reachable database you may "
            "write to; for a damaged SQLite file restore it from a backup",
        ) from None
    if imported is not None:
        _set_aside(imported[0])
        return imported[1]
    return 0


def _import_legacy_corrections(
    connection: Connection, legacy_dir: Path | None
) -> tuple[Path, int] | None:
    if legacy_dir is None:
        return None
    source = Path(legacy_dir) / LEGACY_CORRECTIONS_FILE
    if not source.is_file():
        return None
    rows, high_water = _read_legacy_rows(source)
    table = corrections_table
    existing = {
        row.id: row._mapping
        for row in connection.execute(
            select(table).where(table.c.id.in_([row["id"] for row in rows]))
        )
    }
    new_rows = []
    for row in rows:
        found = existing.get(row["id"])
        if found is None:
            new_rows.append(row)
        elif any(found[column] != row[column] for column in _CORRECTION_COLUMNS):
            raise DatabaseError(
                f"{source} and the database both hold a correction with id {row['id']}, "
                "with different contents",
                fix=f"move {source} aside if its corrections are already in the database, "
                "or point TAGGER_DB_URL at the database it belongs with",
            )
    if new_rows:
        connection.execute(insert(table), new_rows)
    _keep_ids_unused(connection, high_water)
    return source, len(new_rows)


def _keep_ids_unused(connection: Connection, high_water: int) -> None:
    """Move the id sequence past every id the old file ever gave out: the ids of deleted
    corrections never come back (explicit ids would otherwise leave it behind)."""
    top = connection.execute(select(func.max(corrections_table.c.id))).scalar() or 0
    top = max(top, high_water)
    if top == 0:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT setval(pg_get_serial_sequence('corrections', 'id'), :top)"), {"top": top}
        )
        return
    updated = connection.execute(
        text("UPDATE sqlite_sequence SET seq = MAX(seq, :top) WHERE name = 'corrections'"),
        {"top": top},
    ).rowcount
    if not updated:
        connection.execute(
            text("INSERT INTO sqlite_sequence (name, seq) VALUES ('corrections', :top)"),
            {"top": top},
        )


def _read_legacy_rows(source: Path) -> tuple[list[dict[str, Any]], int]:
    """The old file's rows, and the highest id it ever gave out (deleted ones included)."""
    try:
        with closing(sqlite3.connect(source, timeout=30.0)) as legacy:
            legacy.row_factory = sqlite3.Row
            # Fold the WAL into the file: the renamed file must hold every row on its own.
            legacy.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            found = legacy.execute(
                f"SELECT {', '.join(_CORRECTION_COLUMNS)} FROM corrections ORDER BY id"
            ).fetchall()
            sequence = legacy.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'corrections'"
            ).fetchone()
        rows = [dict(row) for row in found]
        for row in rows:
            json.loads(row["words"])  # a row the store could not read back stops the import
    except (sqlite3.DatabaseError, ValueError) as error:
        raise DatabaseError(
            f"{source} (corrections of an earlier version) cannot be read ({error})",
            fix=f"restore {source} from a backup, or move it aside to start without "
            "those corrections",
        ) from None
    return rows, int(sequence[0]) if sequence else 0


def _set_aside(source: Path) -> None:
    target = source.with_name(source.name + IMPORTED_SUFFIX)
    source.replace(target)
    for leftover in ("-wal", "-shm"):
        Path(f"{source}{leftover}").unlink(missing_ok=True)
