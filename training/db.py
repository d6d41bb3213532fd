"""One database for the training jobs and the model registry, chosen by one URL.

The embedded default is a SQLite file in the app's data folder
(``<TAGGER_DATA_DIR>/tagger.sqlite3``, WAL mode, a busy timeout). Where curators
outgrow one machine, set ``TAGGER_DB_URL`` (or ``--db``) to a PostgreSQL URL such
as ``postgresql+psycopg2://tagger:secret@db.internal/tagger``: the same SQLAlchemy
Core code runs on both, so nothing else changes.

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
...     connection.exec_driver_sql("SELECT 1").scalar()
1
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, MetaData, Table, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.types import TypeDecorator

DB_URL_ENV = "TAGGER_DB_URL"
DATA_DIR_ENV = "TAGGER_DATA_DIR"
DEFAULT_DATA_DIR = Path("data")
DEFAULT_DB_FILE = "tagger.sqlite3"
SQLITE_BUSY_TIMEOUT_S = 30.0
# Any constant works: it only has to be the same in every process that creates tables.
_SCHEMA_LOCK_KEY = 0x7461_6767  # "tagg"
_WRITE_OPTION = "tagger_write"

metadata = MetaData()


class DatabaseError(RuntimeError):
    """A database URL that cannot be used; the message names the fix."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every database (SQLite drops time zones otherwise)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"{value!r} has no time zone; pass an aware datetime (UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


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
        # NORMAL is safe in WAL mode; a power cut may only lose the last heartbeats.
        cursor.execute("PRAGMA synchronous=NORMAL")
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
        cls, url: str | None = None, *, data_dir: str | os.PathLike[str] | None = None
    ) -> Database:
        resolved = resolve_database_url(url, data_dir)
        return cls(_make_engine(resolved), resolved)

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

    def create_tables(self, tables: Sequence[Table]) -> None:
        """Create missing tables; safe when several processes start at once."""
        with self.write() as connection:
            if self.dialect == "postgresql":
                # Two processes' CREATE TABLE IF NOT EXISTS can still collide on
                # PostgreSQL's catalog; the advisory lock makes them take turns.
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_KEY})")
            metadata.create_all(connection, tables=list(tables), checkfirst=True)

    def dispose(self) -> None:
        self.engine.dispose()
