"""Rolling backups of the SQLite database, and the one command that restores one.

Backups are taken through SQLite's online backup API (``sqlite3.Connection.backup``,
a consistent copy while the app and the worker keep working) into ``backups/`` beside
the database file (by default ``data/backups/``), as
``tagger-<UTC time>.sqlite3``: written to a temporary file, checked with ``PRAGMA
quick_check``, flushed to disk, then renamed into place, so a backup is whole or absent.
A copy that fails the check is thrown away and the good backups are kept. The last
``$TAGGER_BACKUP_KEEP`` (10) are kept. A backup is taken after every
``$TAGGER_BACKUP_EVERY`` (50) saves of a process, and on a timer: at most every
``$TAGGER_BACKUP_INTERVAL_S`` (600) seconds when the database changed since the newest
backup, checked on every save and by the worker's poll loop. ``TAGGER_BACKUP_EVERY=0``
turns the backups off.

The command line (stop the app and the worker before a restore)::

    python -m curation.backup restore [--from FILE] [--app-data-dir DIR | --db URL]
    python -m curation.backup list
    python -m curation.backup now

``restore`` checks the backup (the newest that passes ``quick_check`` unless ``--from``
names one), keeps the current file aside as ``tagger.sqlite3.damaged-<time>`` (with its
``-wal``; never deleted) and puts a copy of the backup in its place. On PostgreSQL
backups are the operator's job (``pg_dump``, or the server's point-in-time recovery):
the command says so.

Example:

>>> import tempfile
>>> from curation.database import Database
>>> backups = Backups.of(Database.open(data_dir=tempfile.mkdtemp()))
>>> made = backups.now()
>>> made.name.startswith("tagger-") and made.parent.name
'backups'
>>> [path.name for path in backups.list()] == [made.name]
True
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from curation.database import (
    DB_URL_ENV,
    Database,
    DatabaseDamagedError,
    DatabaseError,
    resolve_database_url,
)
from curation.workers import worker_holds_lock
from tagger.errors import TaggerError, run_cli

logger = logging.getLogger(__name__)
PROG = "python -m curation.backup"
BACKUP_EVERY_ENV = "TAGGER_BACKUP_EVERY"
BACKUP_KEEP_ENV = "TAGGER_BACKUP_KEEP"
BACKUP_INTERVAL_ENV = "TAGGER_BACKUP_INTERVAL_S"
DEFAULT_EVERY = 50
DEFAULT_KEEP = 10
DEFAULT_INTERVAL_S = 600.0
BACKUP_DIR = "backups"
PREFIX = "tagger-"
SUFFIX = ".sqlite3"
DAMAGED_SUFFIX = ".damaged-"
_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"
POSTGRES_NOTE = (
    "the database is PostgreSQL: its backups are the operator's job (pg_dump on a "
    "schedule, or the server's continuous archiving and point-in-time recovery; see "
    "README, Backups and restore)"
)


def _env_number(name: str, default: float, *, integer: bool) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise DatabaseError(
            f"{name}={raw!r} is not a non-negative {'whole ' if integer else ''}number",
            fix=f"set {name} to e.g. {default:g}, or unset it",
        )
    return value


@dataclass(frozen=True)
class BackupPolicy:
    """When to back up and how many backups to keep (``every=0``: never on its own)."""

    every: int = DEFAULT_EVERY
    keep: int = DEFAULT_KEEP
    interval_s: float = DEFAULT_INTERVAL_S

    @classmethod
    def from_env(cls) -> BackupPolicy:
        return cls(
            every=int(_env_number(BACKUP_EVERY_ENV, DEFAULT_EVERY, integer=True)),
            keep=max(1, int(_env_number(BACKUP_KEEP_ENV, DEFAULT_KEEP, integer=True))),
            interval_s=_env_number(BACKUP_INTERVAL_ENV, DEFAULT_INTERVAL_S, integer=False),
        )


def quick_check(path: Path) -> str | None:
    """None when ``path`` is a readable SQLite file with a corrections table, else why not."""
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
            rows = [row[0] for row in connection.execute("PRAGMA quick_check")]
            if rows != ["ok"]:
                return "; ".join(rows)[:300]
            connection.execute("SELECT COUNT(*) FROM corrections").fetchone()
    except sqlite3.Error as error:
        return str(error)
    return None


def count_corrections(path: Path) -> int:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM corrections").fetchone()[0])


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _copy(source: Path, target_dir: Path, prefix: str) -> Path:
    """A consistent copy of ``source`` through the online backup API, flushed to disk,
    in a temporary file of ``target_dir``; the caller renames it into place."""
    target_dir.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=target_dir)
    os.close(descriptor)
    temporary = Path(name)
    try:
        with (
            closing(sqlite3.connect(source, timeout=30)) as src,
            closing(sqlite3.connect(temporary)) as dst,
        ):
            src.backup(dst)
            # A file of its own: no WAL beside it to lose on a copy or a rename.
            dst.execute("PRAGMA journal_mode=DELETE")
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


class Backups:
    """The rolling backups of one SQLite database file."""

    def __init__(
        self,
        database_file: Path,
        policy: BackupPolicy | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.database_file = Path(database_file)
        self.policy = policy or BackupPolicy.from_env()
        self.clock = clock
        self.folder = self.database_file.parent / BACKUP_DIR
        self._saves = 0
        self._opened_at = clock()

    @classmethod
    def of(cls, database: Database, policy: BackupPolicy | None = None) -> Backups:
        path = database.sqlite_path
        if path is None:
            if database.dialect == "postgresql":
                raise DatabaseError(POSTGRES_NOTE)
            raise DatabaseError(f"{database.display_url} is not a file; nothing to back up")
        return cls(path, policy)

    @classmethod
    def maybe_of(cls, database: Database) -> Backups | None:
        """The backups of a SQLite file, None for PostgreSQL or an in-memory database."""
        return None if database.sqlite_path is None else cls(database.sqlite_path)

    def list(self) -> list[Path]:
        """The backups, newest first."""
        if not self.folder.is_dir():
            return []
        found = [
            path
            for path in self.folder.glob(f"{PREFIX}*{SUFFIX}")
            if path.is_file() and _backup_time(path) is not None
        ]
        return sorted(found, key=lambda path: path.name, reverse=True)

    def now(self) -> Path:
        """Back up now; the new backup's path. Refuses a copy that fails ``quick_check``."""
        if not self.database_file.is_file():
            raise DatabaseError(f"{self.database_file} does not exist; there is nothing to back up")
        stamp = datetime.fromtimestamp(self.clock(), UTC).strftime(_TIME_FORMAT)
        temporary = _copy(self.database_file, self.folder, prefix=".backup-")
        problem = quick_check(temporary)
        if problem is not None:
            temporary.unlink(missing_ok=True)
            raise DatabaseDamagedError(
                f"the corrections database {self.database_file} is damaged ({problem}); "
                "no backup was made and the earlier backups are kept",
                fix=f"restore the latest backup with `{PROG} restore "
                f"--app-data-dir {self.database_file.parent}`",
            )
        target = self.folder / f"{PREFIX}{stamp}{SUFFIX}"
        os.replace(temporary, target)
        _fsync_dir(self.folder)
        self._saves = 0
        self._prune()
        logger.info("backed up %s to %s", self.database_file, target)
        return target

    def _prune(self) -> None:
        for old in self.list()[self.policy.keep :]:
            old.unlink(missing_ok=True)

    def _changed_since(self, moment: float) -> bool:
        for path in (self.database_file, Path(f"{self.database_file}-wal")):
            try:
                if path.stat().st_mtime > moment:
                    return True
            except FileNotFoundError:
                continue
        return False

    def due(self) -> bool:
        """The timer: ``interval_s`` since the newest backup (or since this process
        started, when there is none), and the database changed since."""
        if self.policy.every == 0:
            return False
        backups = self.list()
        last = _backup_time(backups[0]) if backups else None
        since = last if last is not None else self._opened_at
        # Changed: file times against the newest backup's file time (not the clock's).
        return self.clock() - since >= self.policy.interval_s and self._changed_since(
            backups[0].stat().st_mtime if backups else 0.0
        )

    def after_save(self) -> Path | None:
        """Count a save; back up after ``every`` saves or when the timer says so.

        Never raises: the save is committed already; a failed backup is logged.
        """
        self._saves += 1
        if self.policy.every and self._saves >= self.policy.every:
            return self._quietly()
        return self.if_due()

    def if_due(self) -> Path | None:
        """Back up when the timer says so (the worker's poll loop calls this); never raises."""
        try:
            due = self.due()
        except OSError:
            logger.warning("could not look at the backups in %s", self.folder, exc_info=True)
            return None
        return self._quietly() if due else None

    def _quietly(self) -> Path | None:
        try:
            return self.now()
        except (OSError, sqlite3.Error, TaggerError):
            logger.warning("backup of %s failed", self.database_file, exc_info=True)
            return None

    def restore(self, source: Path | None = None) -> tuple[Path, Path | None, int]:
        """Put a checked copy of ``source`` (default: the newest good backup) in place of
        the database file; returns the backup used, where the old file was kept aside
        (None when there was none) and how many corrections the restored file holds."""
        data_dir = self.database_file.parent
        if worker_holds_lock(data_dir):
            raise TaggerError(
                f"a training worker is running on {data_dir}",
                fix="stop it and the app (Ctrl-C in make run), then run the restore again",
            )
        chosen = self._pick(source)
        temporary = _copy(chosen, data_dir, prefix=f".{self.database_file.name}.restoring-")
        kept: Path | None = None
        if self.database_file.exists():
            stamp = datetime.fromtimestamp(self.clock(), UTC).strftime(_TIME_FORMAT)
            kept = self.database_file.with_name(f"{self.database_file.name}{DAMAGED_SUFFIX}{stamp}")
            for tail in ("-wal", "-shm"):  # the WAL may hold the newest saves: kept with it
                companion = Path(f"{self.database_file}{tail}")
                if companion.exists():
                    os.replace(companion, f"{kept}{tail}")
            os.replace(self.database_file, kept)
        os.replace(temporary, self.database_file)
        _fsync_dir(data_dir)
        return chosen, kept, count_corrections(self.database_file)

    def _pick(self, source: Path | None) -> Path:
        if source is not None:
            if not source.is_file():
                raise TaggerError(f"backup {source} does not exist", fix=f"see `{PROG} list`")
            problem = quick_check(source)
            if problem is not None:
                raise TaggerError(
                    f"backup {source} is damaged or not a corrections database ({problem})",
                    fix=f"pick another one from `{PROG} list`",
                )
            return source
        backups = self.list()
        for candidate in backups:
            if quick_check(candidate) is None:
                return candidate
            logger.warning("skipping %s: it fails quick_check", candidate)
        raise TaggerError(
            f"no usable backup in {self.folder}"
            + (f" ({len(backups)} found, all damaged)" if backups else ""),
            fix="pass one with --from FILE",
        )


def _backup_time(path: Path) -> float | None:
    stamp = path.name[len(PREFIX) : -len(SUFFIX)]
    try:
        return datetime.strptime(stamp, _TIME_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from tagger.cli import ArgumentParser

    where = ArgumentParser(add_help=False)
    where.add_argument("--app-data-dir", type=Path, help="app data folder ($TAGGER_DATA_DIR)")
    where.add_argument("--db", dest="db_url", help=f"database URL (${DB_URL_ENV})")
    parser = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    restore = commands.add_parser(
        "restore", parents=[where], help="restore the newest good backup (or --from FILE)"
    )
    restore.add_argument("--from", dest="source", type=Path, help="the backup file to restore")
    commands.add_parser("list", parents=[where], help="list the backups, newest first")
    commands.add_parser("now", parents=[where], help="back up now")
    return parser


def _backups_for(db_url: str | None, data_dir: Path | None) -> Backups:
    # No Database.open: a damaged file must not stop its own restore.
    parsed = make_url(resolve_database_url(db_url, data_dir))
    if parsed.get_backend_name() == "postgresql":
        raise TaggerError(POSTGRES_NOTE)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        raise TaggerError(f"{parsed.render_as_string(hide_password=True)} is not a SQLite file")
    return Backups(Path(parsed.database))


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    backups = _backups_for(args.db_url, args.app_data_dir)
    if args.command == "list":
        found = backups.list()
        if not found:
            print(f"no backups in {backups.folder}")
        for path in found:
            print(f"{path}  {path.stat().st_size:,} bytes")
        return 0
    if args.command == "now":
        print(f"backed up {backups.database_file} to {backups.now()}")
        return 0
    chosen, kept, corrections = backups.restore(args.source)
    aside = f"; the previous file is kept as {kept}" if kept else ""
    print(f"restored {backups.database_file} from {chosen} ({corrections} corrections){aside}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(lambda: run(argv), prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
