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

A SQLite file that another process holds locked is retried, each try with a short busy
timeout, for at most ``$TAGGER_DB_BUSY_RETRY_S`` seconds (10), then refused with
:class:`DatabaseBusyError`. On open, ``PRAGMA quick_check`` looks for damage: a file that
cannot be read at all is refused with :class:`DatabaseDamagedError`, one damaged in
places is opened for reading but refuses every write with that error, which names the
one restore command (:mod:`curation.backup`). A file replaced underneath (restored from
a backup) is noticed on the next transaction and reopened.

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

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from tagger.errors import TaggerError

DB_URL_ENV = "TAGGER_DB_URL"
DATA_DIR_ENV = "TAGGER_DATA_DIR"
DEFAULT_DATA_DIR = Path("data")
DEFAULT_DB_FILE = "tagger.sqlite3"
BUSY_RETRY_ENV = "TAGGER_DB_BUSY_RETRY_S"
DEFAULT_BUSY_RETRY_S = 10.0
SQLITE_BUSY_TIMEOUT_S = 1.0  # one try's wait for another process's lock; retried after
RESTORE_COMMAND = "python -m curation.backup restore"
# SQLite's primary result codes (the low byte of sqlite_errorcode).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_CORRUPT, _SQLITE_NOTADB = 5, 6, 11, 26
# Any constant works: it only has to be the same in every process that creates tables.
_SCHEMA_LOCK_KEY = 0x7461_6767  # "tagg"
_WRITE_OPTION = "tagger_write"

logger = logging.getLogger(__name__)


class DatabaseError(TaggerError, RuntimeError):
    """A database that cannot be used as it is; the message names the fix."""


class DatabaseDamagedError(DatabaseError):
    """The SQLite file is damaged: nothing is written to it until it is restored."""


class DatabaseBusyError(DatabaseError):
    """Another process held the database's lock for longer than the retries allow."""


def busy_retry_setting() -> float:
    """``$TAGGER_DB_BUSY_RETRY_S``: how long a write waits for another process's lock."""
    raw = os.environ.get(BUSY_RETRY_ENV, "").strip()
    if not raw:
        return DEFAULT_BUSY_RETRY_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise DatabaseError(
            f"{BUSY_RETRY_ENV}={raw!r} is not a number of seconds",
            fix=f"set {BUSY_RETRY_ENV} to e.g. 10, or unset it",
        )
    return value


def restore_command(path: Path) -> str:
    """The one command that restores the SQLite file ``path`` from its latest backup."""
    if path.name == DEFAULT_DB_FILE:
        return f"{RESTORE_COMMAND} --app-data-dir {path.parent}"
    return f"{RESTORE_COMMAND} --db sqlite:///{path}"


def damaged_error(path: Path, detail: str) -> DatabaseDamagedError:
    return DatabaseDamagedError(
        f"the corrections database {path} is damaged ({detail}); nothing can be saved to it",
        fix=f"stop the app and the worker, then restore the latest backup with "
        f"`{restore_command(path)}` (the damaged file is kept aside, never deleted)",
    )


def _sqlite_code(error: BaseException) -> int | None:
    code = getattr(getattr(error, "orig", error), "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


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


def busy_error(path: Path, waited_s: float) -> DatabaseBusyError:
    return DatabaseBusyError(
        f"the corrections database {path} is busy (another process holds its lock; "
        f"tried for {waited_s:g} s); nothing was written",
        fix=f"try again in a moment; if it stays busy, find the process that holds {path} "
        f"open, or raise {BUSY_RETRY_ENV}",
    )


@dataclass
class Database:
    """An engine plus the two kinds of transaction the stores use.

    ``damaged`` is what ``PRAGMA quick_check`` (or a read) found wrong with the SQLite
    file, None while nothing is known to be: once set, :meth:`write` refuses.
    """

    engine: Engine
    url: str
    damaged: str | None = None
    busy_retry_s: float = field(default_factory=busy_retry_setting)
    _file_id: tuple[int, int] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        migrate: bool = True,
    ) -> Database:
        """Connect, check a SQLite file for damage, and bring the schema to this code's
        version (``migrate=False``: as is).

        An installation of the two-file layout (``corrections.sqlite3`` beside the jobs
        database) has its corrections moved in here, all of them, on first open.
        """
        resolved = resolve_database_url(url, data_dir)
        database = cls(_make_engine(resolved), resolved)
        database._check_file()
        if database.sqlite_path is not None:
            database.damaged = database.quick_check()
        if database.damaged is not None:
            from curation.migrate import head_revision, schema_revision

            logger.error("%s", damaged_error(database.message_path, database.damaged))
            # Readable enough to serve reads at this code's schema, or refused outright.
            if migrate and schema_revision(database) != head_revision():
                raise damaged_error(database.message_path, database.damaged)
        elif migrate:
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

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file; None for PostgreSQL and an in-memory database."""
        parsed = make_url(self.url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return None
        return Path(parsed.database)

    @property
    def message_path(self) -> Path:
        return self.sqlite_path or Path(self.display_url)

    def quick_check(self) -> str | None:
        """None when ``PRAGMA quick_check`` finds nothing wrong, else what it found."""
        try:
            with self.engine.connect() as connection:
                rows = [row[0] for row in connection.exec_driver_sql("PRAGMA quick_check")]
        except DBAPIError as error:
            if _sqlite_code(error) in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
                return str(error.orig)
            raise self._translate(error) from None
        if rows == ["ok"]:
            return None
        return "; ".join(rows)[:300]

    def _check_file(self) -> None:
        """Notice a SQLite file replaced underneath (a restore): reconnect and recheck it."""
        path = self.sqlite_path
        if path is None:
            return
        try:
            stat = path.stat()
        except FileNotFoundError:
            if self._file_id is None:
                return  # a new database: the first connection creates the file
            raise DatabaseError(
                f"the corrections database {path} has disappeared",
                fix=f"restore it from the latest backup with `{restore_command(path)}`",
            ) from None
        file_id = (stat.st_dev, stat.st_ino)
        if self._file_id is None:
            self._file_id = file_id
        elif file_id != self._file_id:
            logger.warning("%s was replaced (restored from a backup?): reopening it", path)
            self.engine.dispose()
            self._file_id = file_id
            self.damaged = self.quick_check()

    def _translate(self, error: DBAPIError) -> Exception:
        """SQLite's damage and lock errors, and an unreachable server, as clear errors."""
        if self.dialect == "sqlite":
            code = _sqlite_code(error)
            if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
                self.damaged = self.damaged or str(error.orig)
                return damaged_error(self.message_path, str(error.orig))
            if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
                return busy_error(self.message_path, self.busy_retry_s)
        elif isinstance(error, OperationalError):
            return DatabaseError(
                f"the database {self.display_url} cannot be used ({error.orig})".strip(),
                fix="check that the database server is running and that TAGGER_DB_URL names it",
            )
        return error

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except DBAPIError as error:
            translated = self._translate(error)
            if translated is error:
                raise
            raise translated from None

    def _begin_write(self, on_busy: Callable[[], None] | None) -> tuple[Connection, Any]:
        """A connection in a write transaction, retrying another process's lock."""
        deadline = time.monotonic() + self.busy_retry_s
        told = False
        while True:
            connection = self.engine.connect()
            connection.execution_options(**{_WRITE_OPTION: True})
            try:
                return connection, connection.begin()
            except DBAPIError as error:
                connection.close()
                busy = _sqlite_code(error) in (_SQLITE_BUSY, _SQLITE_LOCKED)
                if not busy or time.monotonic() >= deadline:
                    raise
                if on_busy is not None and not told:
                    told = True
                    on_busy()
                time.sleep(0.05)

    @contextmanager
    def write(self, *, on_busy: Callable[[], None] | None = None) -> Iterator[Connection]:
        """A transaction that will write; committed on success, rolled back on error.

        Refused (:class:`DatabaseDamagedError`) on a damaged file. Another process's
        lock is retried for ``busy_retry_s`` (``on_busy`` is called once when it starts
        waiting), then refused with :class:`DatabaseBusyError`.
        """
        self._check_file()
        if self.damaged is not None:
            raise damaged_error(self.message_path, self.damaged)
        with self._translated():
            connection, transaction = self._begin_write(on_busy)
            with connection, transaction:
                yield connection

    @contextmanager
    def read(self) -> Iterator[Connection]:
        self._check_file()
        with self._translated(), self.engine.connect() as connection, connection.begin():
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
