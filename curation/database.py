"""The one curation database, chosen by one URL, migrated to this code's schema on open.

The embedded default is one SQLite file in the app's data folder
(``<TAGGER_DATA_DIR>/tagger.sqlite3``, WAL mode, every commit flushed to disk, a busy
timeout). Where curators outgrow one machine, set ``TAGGER_DB_URL`` (or ``--db``) to a
PostgreSQL URL such as ``postgresql+psycopg2://tagger:secret@db.internal/tagger``: the
same SQLAlchemy Core code runs on both, so nothing else changes. :meth:`Database.open`
applies the Alembic migrations (:mod:`curation.migrate`) before anything reads a table.

Two kinds of transaction, both short:

- :meth:`Database.write` takes the write lock up front on SQLite (``BEGIN IMMEDIATE``).
  A deferred transaction that reads, then writes, can fail at once with "database is
  locked" when another process wrote in between; an immediate one waits its turn
  (busy timeout) instead.
- :meth:`Database.read` is a plain (deferred) transaction, so polling never blocks.

Example:

>>> import tempfile
>>> database = Database.open(data_dir=tempfile.mkdtemp())
>>> database.dialect
'sqlite'
>>> with database.read() as connection:
...     connection.exec_driver_sql("SELECT COUNT(*) FROM corrections").scalar()
0
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tagger.errors import TaggerError

DB_URL_ENV = "TAGGER_DB_URL"
DATA_DIR_ENV = "TAGGER_DATA_DIR"
DEFAULT_DATA_DIR = Path("data")
DEFAULT_DB_FILE = "tagger.sqlite3"
SQLITE_BUSY_TIMEOUT_S = 30.0
# Any constant works: it only has to be the same in every process that creates tables.
_SCHEMA_LOCK_KEY = 0x7461_6767  # "tagg"
_WRITE_OPTION = "tagger_write"

class DatabaseError(TaggerError, RuntimeError):
    """A database that cannot be used as it is; the message names the fix."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def app_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The app's data folder: ``data_dir``, else ``$TAGGER_DATA_DIR``, else ``data``."""
    if data_dir is not None:
        return Path(data_dir)
    return Path(os.environ.get(DATA_DIR_ENV, "").strip() or DEFAULT_DATA_DIR)


def default_database_url(data_dir: str | os.PathLike[str] | None = None) -> str:
    """``sqlite:///<app data folder>/tagger.sqlite3``."""
    return f"sqlite:///{app_data_dir(data_dir) / DEFAULT_DB_FILE}"


def resolve_database_url(
    url: str | None = None, data_dir: str | os.PathLike[str] | None = None
) -> str:
    """An explicit URL, else ``$TAGGER_DB_URL``, else the SQLite file in the data folder."""
    return url or os.environ.get(DB_URL_ENV, "").strip() or default_database_url(data_dir)


def _configure_sqlite(engine: Engine) -> None:
    """WAL, a busy timeout, and BEGIN issued by us (pysqlite's own is too late)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # None: pysqlite emits no BEGIN of its own, so ours below is the only one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a save the curator saw succeed survives a power cut, not just a crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise DatabaseError(
            f"database URL {url!r} is not a URL ({error}); use e.g. sqlite:///data/tagger.sqlite3 "
            f"or postgresql+psycopg2://user:password@host/dbname in --db or {DB_URL_ENV}"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        _configure_sqlite(engine)
        return engine
    if backend == "postgresql":
        # pre_ping: a worker idles for hours between jobs; its pooled connections may die.
        return create_engine(url, pool_pre_ping=True)
    raise DatabaseError(
        f"database URL {parsed.render_as_string(hide_password=True)!r} uses {backend!r}; "
        "the tagger supports sqlite:/// and postgresql+psycopg2:// URLs"
    )


@dataclass
class Database:
    """An engine plus the two kinds of transaction the stores use."""

    engine: Engine
    url: str

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        migrate: bool = True,
    ) -> Database:
        """Connect and bring the schema to this code's version (``migrate=False``: as is).

        An installation of the two-file layout (``corrections.sqlite3`` beside the jobs
        database) has its corrections moved in here, all of them, on first open.
        """
        resolved = resolve_database_url(url, data_dir)
        database = cls(_make_engine(resolved), resolved)
        if migrate:
            from curation.migrate import upgrade

            upgrade(database, legacy_dir=app_data_dir(data_dir))
        return database

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def display_url(self) -> str:
        """The URL without its password, for logs and the app."""
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that will write; committed on success, rolled back on error."""
        with self.engine.connect() as connection:
            connection.execution_options(**{_WRITE_OPTION: True})
            with connection.begin():
                yield connection

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as connection, connection.begin():
            yield connection

    @contextmanager
    def schema_lock(self) -> Iterator[Connection]:
        """A write transaction that also holds the schema lock: migrations take turns."""
        with self.write() as connection:
            if self.dialect == "postgresql":
                # On SQLite BEGIN IMMEDIATE already serialises; PostgreSQL needs a lock
                # so that two processes starting at once never both create a table.
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_KEY})")
            yield connection

    def dispose(self) -> None:
        self.engine.dispose()
