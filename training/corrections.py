"""The curators' corrections: every corrected sentence, kept with its history.

A correction is one sentence whose labels a curator fixed: its words, the corrected
IOB2 labels, the labels the model predicted, where the sentence came from (a pasted
text's hash or a file name, plus the sentence index), the model version that served
it, the annotator and the time. The same sentence corrected twice keeps both rows:
the latest is *current* (the one that trains), the older ones are the audit trail.

Labels are checked before anything is written: unknown labels are refused, an
``I-`` that continues no entity is repaired to ``B-`` (and counted), so the store
never holds invalid IOB2. Each save, undo and delete is one transaction, so a
crash or a killed process never leaves half a correction.

The SQL lives in the backends, the domain rules in :class:`CorrectionsStore`. Two
backends implement :class:`CorrectionsBackend` with the same table layout:

- :class:`SqliteCorrectionsBackend`: the embedded default, one SQLite file in the app's
  data folder (``<TAGGER_DATA_DIR>/corrections.sqlite3``) through the standard library,
  every commit flushed to disk (``synchronous=FULL``).
- :class:`SqlAlchemyCorrectionsBackend`: the corrections table in the database of
  ``TAGGER_DB_URL`` (PostgreSQL when curators outgrow one machine), next to the jobs
  and the model registry, through :mod:`training.db`'s engine.

:meth:`CorrectionsStore.connect` picks one: a database URL (given, or
``$TAGGER_DB_URL``) means SQLAlchemy, none means the SQLite file.

Example:

>>> import tempfile, pathlib
>>> store = CorrectionsStore.open(pathlib.Path(tempfile.mkdtemp()) / "corrections.sqlite3")
>>> saved = store.save(
...     words=["Heart", "failure", "."], labels=["I-Disease", "I-Disease", "O"],
...     predicted=["O", "O", "O"], source="text:0a1b", sentence_index=0,
...     model_version="v1", annotator="ada",
... )
>>> saved.repaired, saved.correction.labels
(1, ('B-Disease', 'I-Disease', 'O'))
>>> [s.labels for s in store.training_sentences()]
[('B-Disease', 'I-Disease', 'O')]
>>> store.export_bio()
'Heart\\tB-Disease\\nfailure\\tI-Disease\\n.\\tO\\n\\n'
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import (
    Column,
    ColumnElement,
    Index,
    Integer,
    Select,
    String,
    Table,
    Text,
    delete,
    exists,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.sql.selectable import Alias

from tagger.bio import ENTITY_TYPE, Sentence, entity_spans, format_bio, repair_bio
from training.db import DB_URL_ENV, Database, app_data_dir, metadata

DEFAULT_FILE_NAME = "corrections.sqlite3"
SCHEMA_VERSION = 1

Clock = Callable[[], datetime]


class InvalidCorrectionError(ValueError):
    """A correction that cannot be stored as it is; the message names the fix."""


class CorrectionNotFoundError(LookupError):
    """No correction has the id asked for (it was deleted or never existed)."""


@dataclass(frozen=True)
class Correction:
    """One saved correction. ``current`` is True for the latest save of its sentence."""

    id: int
    words: tuple[str, ...]
    labels: tuple[str, ...]
    predicted: tuple[str, ...]
    source: str
    sentence_index: int
    model_version: str
    annotator: str
    created_at: datetime
    current: bool

    @property
    def sentence_key(self) -> str:
        return sentence_key(self.source, self.sentence_index, self.words)

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def spans(self) -> list[tuple[int, int, str]]:
        """Corrected entities as ``(start_word, end_word_exclusive, type)``."""
        return entity_spans(self.labels)

    def span_texts(self) -> list[str]:
        return [" ".join(self.words[start:end]) for start, end, _ in self.spans()]

    def as_sentence(self) -> Sentence:
        return Sentence(self.words, self.labels)


@dataclass(frozen=True)
class SaveResult:
    """What :meth:`CorrectionsStore.save` stored and how many labels it had to repair."""

    correction: Correction
    repaired: int
    replaced: int | None  # id of the correction this one supersedes, if any


@dataclass(frozen=True)
class CorrectionFilter:
    """Which corrections to list. Text filters are case-insensitive substrings."""

    text: str = ""
    source: str = ""
    annotator: str = ""
    model_version: str = ""
    since: datetime | None = None
    current_only: bool = True


def sentence_key(source: str, sentence_index: int, words: Sequence[str]) -> str:
    """Identity of a sentence: the same source, index and words is the same sentence."""
    payload = json.dumps([source, sentence_index, list(words)], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def text_source(text: str) -> str:
    """The source name of a pasted text: its hash, so the same paste is the same source."""
    return "text:" + hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()[:16]


def file_source(file_name: str) -> str:
    return f"file:{file_name}"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _timestamp(moment: datetime) -> str:
    # One fixed-width UTC form, so timestamps compare correctly as strings in SQL.
    if moment.tzinfo is None:
        raise InvalidCorrectionError(
            f"time {moment.isoformat()} has no time zone; pass an aware datetime "
            "such as datetime.now(UTC)."
        )
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_timestamp(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


def _allowed_labels(entity_types: Sequence[str]) -> frozenset[str]:
    return frozenset(["O", *(f"{p}-{t}" for t in entity_types for p in ("B", "I"))])


def _check_words(words: Sequence[str]) -> tuple[str, ...]:
    if not words:
        raise InvalidCorrectionError("the sentence has no words; a correction needs at least one.")
    for index, word in enumerate(words, start=1):
        if not isinstance(word, str) or not word or any(ch.isspace() for ch in word):
            raise InvalidCorrectionError(
                f"word {index} {word!r} is empty or contains whitespace, which a BIO file "
                "cannot store. Pass the words exactly as the tagger split them."
            )
    return tuple(words)


def _check_labels(
    kind: str, labels: Sequence[str], n_words: int, allowed: frozenset[str]
) -> tuple[str, ...]:
    if len(labels) != n_words:
        raise InvalidCorrectionError(
            f"{kind} has {len(labels)} labels for {n_words} words; give one label per word."
        )
    for index, label in enumerate(labels, start=1):
        if label not in allowed:
            raise InvalidCorrectionError(
                f"{kind} label {index} {label!r} is unknown. "
                f"Use one of {', '.join(sorted(allowed))}."
            )
    return tuple(labels)


def _check_text_field(name: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidCorrectionError(f"{name} is empty; give a non-empty {name}.")
    return value.strip()


# ---------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CorrectionRow:
    """A correction as the backend stores it (without the derived ``current`` flag)."""

    sentence_key: str
    words: tuple[str, ...]
    labels: tuple[str, ...]
    predicted: tuple[str, ...]
    source: str
    sentence_index: int
    model_version: str
    annotator: str
    created_at: str


class CorrectionsBackend(Protocol):
    """What :class:`CorrectionsStore` needs from a database; each call is one transaction."""

    def insert(self, row: CorrectionRow) -> tuple[Correction, int | None]: ...
    def delete(self, correction_id: int) -> Correction | None: ...
    def delete_last(self, annotator: str | None) -> Correction | None: ...
    def get(self, correction_id: int) -> Correction | None: ...
    def select(self, where: CorrectionFilter, up_to_id: int | None) -> list[Correction]: ...
    def history(self, key: str) -> list[Correction]: ...
    def count(self, since: str | None, model_version: str | None, current_only: bool) -> int: ...
    def last_id(self) -> int | None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- AUTOINCREMENT: ids of deleted rows never return
    sentence_key TEXT NOT NULL,
    source TEXT NOT NULL,
    sentence_index INTEGER NOT NULL,
    words TEXT NOT NULL,                    -- JSON list of strings
    labels TEXT NOT NULL,                   -- JSON list, valid IOB2
    predicted TEXT NOT NULL,                -- JSON list
    model_version TEXT NOT NULL,
    annotator TEXT NOT NULL,
    created_at TEXT NOT NULL                -- UTC, YYYY-MM-DDTHH:MM:SS.ffffffZ
);
CREATE INDEX IF NOT EXISTS corrections_by_sentence ON corrections (sentence_key, id);
CREATE INDEX IF NOT EXISTS corrections_by_time ON corrections (created_at);
"""

_COLUMNS = (
    "id, sentence_key, source, sentence_index, words, labels, predicted, "
    "model_version, annotator, created_at"
)
# A row is current when no later row has its sentence key; "later" is by id, not by
# clock, so a clock step backwards cannot resurrect an old version.
_IS_CURRENT = (
    "NOT EXISTS (SELECT 1 FROM corrections AS newer "
    "WHERE newer.sentence_key = c.sentence_key AND newer.id > c.id{bound})"
)


class SqliteCorrectionsBackend:
    """Corrections in one SQLite file (WAL mode); all of the store's SQL is here.

    A connection per call keeps it safe for Streamlit's threads and for other
    processes (the training worker) reading the same file.
    """

    def __init__(self, path: str | Path, *, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path} has corrections schema {version}, newer than this code's "
                    f"{SCHEMA_VERSION}; update the app before opening it."
                )
            connection.executescript(_SCHEMA)
            connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one per operation.
        connection = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        connection.row_factory = sqlite3.Row
        # FULL: a save the curator saw succeed survives a power cut, not just a crash.
        connection.execute("PRAGMA synchronous=FULL")
        return connection

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as connection:
            connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    @staticmethod
    def _to_correction(row: sqlite3.Row, current: bool) -> Correction:
        return Correction(
            id=row["id"],
            words=tuple(json.loads(row["words"])),
            labels=tuple(json.loads(row["labels"])),
            predicted=tuple(json.loads(row["predicted"])),
            source=row["source"],
            sentence_index=row["sentence_index"],
            model_version=row["model_version"],
            annotator=row["annotator"],
            created_at=_parse_timestamp(row["created_at"]),
            current=current,
        )

    def _fetch_one(self, connection: sqlite3.Connection, correction_id: int) -> Correction | None:
        row = connection.execute(
            f"SELECT {_COLUMNS}, {_IS_CURRENT.format(bound='')} AS current "
            "FROM corrections AS c WHERE id = ?",
            (correction_id,),
        ).fetchone()
        return None if row is None else self._to_correction(row, bool(row["current"]))

    def insert(self, row: CorrectionRow) -> tuple[Correction, int | None]:
        with self._transaction(write=True) as connection:
            previous = connection.execute(
                "SELECT MAX(id) FROM corrections WHERE sentence_key = ?", (row.sentence_key,)
            ).fetchone()[0]
            cursor = connection.execute(
                "INSERT INTO corrections (sentence_key, source, sentence_index, words, labels, "
                "predicted, model_version, annotator, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.sentence_key,
                    row.source,
                    row.sentence_index,
                    json.dumps(list(row.words), ensure_ascii=False),
                    json.dumps(list(row.labels)),
                    json.dumps(list(row.predicted)),
                    row.model_version,
                    row.annotator,
                    row.created_at,
                ),
            )
            saved = self._fetch_one(connection, int(cursor.lastrowid or 0))
        assert saved is not None  # the row was inserted in this very transaction
        return saved, previous

    def delete(self, correction_id: int) -> Correction | None:
        with self._transaction(write=True) as connection:
            found = self._fetch_one(connection, correction_id)
            if found is not None:
                connection.execute("DELETE FROM corrections WHERE id = ?", (correction_id,))
        return found

    def delete_last(self, annotator: str | None) -> Correction | None:
        with self._transaction(write=True) as connection:
            if annotator is None:
                last = connection.execute("SELECT MAX(id) FROM corrections").fetchone()[0]
            else:
                last = connection.execute(
                    "SELECT MAX(id) FROM corrections WHERE annotator = ?", (annotator,)
                ).fetchone()[0]
            if last is None:
                return None
            found = self._fetch_one(connection, last)
            connection.execute("DELETE FROM corrections WHERE id = ?", (last,))
        return found

    def get(self, correction_id: int) -> Correction | None:
        with self._transaction(write=False) as connection:
            return self._fetch_one(connection, correction_id)

    def select(self, where: CorrectionFilter, up_to_id: int | None) -> list[Correction]:
        bound = "" if up_to_id is None else " AND newer.id <= :up_to_id"
        clauses, params = self._filter_clauses(where)
        if up_to_id is not None:
            clauses.append("c.id <= :up_to_id")
            params["up_to_id"] = up_to_id
        if where.current_only:
            clauses.append(_IS_CURRENT.format(bound=bound))
        sql = (
            f"SELECT {_COLUMNS}, {_IS_CURRENT.format(bound=bound)} AS current "
            f"FROM corrections AS c {self._where(clauses)} ORDER BY c.id"
        )
        with self._transaction(write=False) as connection:
            rows = connection.execute(sql, params).fetchall()
        return [self._to_correction(row, bool(row["current"])) for row in rows]

    @staticmethod
    def _filter_clauses(where: CorrectionFilter) -> tuple[list[str], dict[str, Any]]:
        clauses: list[str] = []
        params: dict[str, Any] = {}
        # instr(lower(...)) rather than LIKE: user text may contain % and _.
        for column, value in (
            ("words", where.text),
            ("source", where.source),
            ("annotator", where.annotator),
            ("model_version", where.model_version),
        ):
            if value:
                clauses.append(f"instr(lower(c.{column}), :{column}) > 0")
                params[column] = value.lower()
        if where.since is not None:
            clauses.append("c.created_at > :since")
            params["since"] = _timestamp(where.since)
        return clauses, params

    @staticmethod
    def _where(clauses: list[str]) -> str:
        return f"WHERE {' AND '.join(clauses)}" if clauses else ""

    def history(self, key: str) -> list[Correction]:
        with self._transaction(write=False) as connection:
            rows = connection.execute(
                f"SELECT {_COLUMNS}, {_IS_CURRENT.format(bound='')} AS current "
                "FROM corrections AS c WHERE sentence_key = ? ORDER BY id",
                (key,),
            ).fetchall()
        return [self._to_correction(row, bool(row["current"])) for row in rows]

    def count(self, since: str | None, model_version: str | None, current_only: bool) -> int:
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if since is not None:
            clauses.append("c.created_at > :since")
            params["since"] = since
        if model_version is not None:
            clauses.append("c.model_version = :model_version")
            params["model_version"] = model_version
        if current_only:
            clauses.append(_IS_CURRENT.format(bound=""))
        sql = f"SELECT COUNT(*) FROM corrections AS c {self._where(clauses)}"
        with self._transaction(write=False) as connection:
            return int(connection.execute(sql, params).fetchone()[0])

    def last_id(self) -> int | None:
        with self._transaction(write=False) as connection:
            return connection.execute("SELECT MAX(id) FROM corrections").fetchone()[0]


# The same layout as _SCHEMA, so either backend can open the other's SQLite file.
corrections_table = Table(
    "corrections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sentence_key", String(32), nullable=False),
    Column("source", Text, nullable=False),
    Column("sentence_index", Integer, nullable=False),
    Column("words", Text, nullable=False),  # JSON list of strings
    Column("labels", Text, nullable=False),  # JSON list, valid IOB2
    Column("predicted", Text, nullable=False),  # JSON list
    Column("model_version", Text, nullable=False),
    Column("annotator", Text, nullable=False),
    # Fixed-width UTC text (see _timestamp): compares correctly as text everywhere.
    Column("created_at", Text, nullable=False),
    Index("corrections_by_sentence", "sentence_key", "id"),
    Index("corrections_by_time", "created_at"),
    sqlite_autoincrement=True,  # ids of deleted rows never return
)


class SqlAlchemyCorrectionsBackend:
    """Corrections in any database :mod:`training.db` opens (SQLite or PostgreSQL).

    The statements are SQLAlchemy Core, so one code path serves both; each method is
    one transaction of :class:`training.db.Database` (on SQLite a write takes the
    lock up front, so concurrent saves wait their turn instead of failing).

    Example:

    >>> import tempfile
    >>> database = Database.open(f"sqlite:///{tempfile.mkdtemp()}/tagger.sqlite3")
    >>> store = CorrectionsStore(SqlAlchemyCorrectionsBackend(database))
    >>> store.count()
    0
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        database.create_tables([corrections_table])

    @staticmethod
    def _is_current(row: Alias, up_to_id: int | None) -> ColumnElement[bool]:
        # "Later" is by id, not by clock, as in _IS_CURRENT.
        newer = corrections_table.alias("newer")
        conditions = [newer.c.sentence_key == row.c.sentence_key, newer.c.id > row.c.id]
        if up_to_id is not None:
            conditions.append(newer.c.id <= up_to_id)
        return ~exists().where(*conditions)

    def _select(self, up_to_id: int | None = None) -> tuple[Alias, Select[Any]]:
        row = corrections_table.alias("c")
        query = select(row, self._is_current(row, up_to_id).label("current"))
        return row, query

    @staticmethod
    def _to_correction(row: RowMapping) -> Correction:
        return Correction(
            id=row["id"],
            words=tuple(json.loads(row["words"])),
            labels=tuple(json.loads(row["labels"])),
            predicted=tuple(json.loads(row["predicted"])),
            source=row["source"],
            sentence_index=row["sentence_index"],
            model_version=row["model_version"],
            annotator=row["annotator"],
            created_at=_parse_timestamp(row["created_at"]),
            current=bool(row["current"]),
        )

    def _fetch_one(self, connection: Connection, correction_id: int) -> Correction | None:
        row, query = self._select()
        found = connection.execute(query.where(row.c.id == correction_id)).first()
        return None if found is None else self._to_correction(found._mapping)

    def _fetch_all(self, connection: Connection, query: Select[Any]) -> list[Correction]:
        return [self._to_correction(found._mapping) for found in connection.execute(query)]

    @staticmethod
    def _last_id(connection: Connection, annotator: str | None = None) -> int | None:
        query = select(func.max(corrections_table.c.id))
        if annotator is not None:
            query = query.where(corrections_table.c.annotator == annotator)
        return connection.execute(query).scalar()

    def insert(self, row: CorrectionRow) -> tuple[Correction, int | None]:
        table = corrections_table
        with self.database.write() as connection:
            previous = connection.execute(
                select(func.max(table.c.id)).where(table.c.sentence_key == row.sentence_key)
            ).scalar()
            new_id = connection.execute(
                insert(table)
                .values(
                    sentence_key=row.sentence_key,
                    source=row.source,
                    sentence_index=row.sentence_index,
                    words=json.dumps(list(row.words), ensure_ascii=False),
                    labels=json.dumps(list(row.labels)),
                    predicted=json.dumps(list(row.predicted)),
                    model_version=row.model_version,
                    annotator=row.annotator,
                    created_at=row.created_at,
                )
                .returning(table.c.id)
            ).scalar_one()
            saved = self._fetch_one(connection, int(new_id))
        assert saved is not None  # the row was inserted in this very transaction
        return saved, previous

    def _delete(self, connection: Connection, correction_id: int | None) -> Correction | None:
        if correction_id is None:
            return None
        found = self._fetch_one(connection, correction_id)
        if found is not None:
            connection.execute(
                delete(corrections_table).where(corrections_table.c.id == correction_id)
            )
        return found

    def delete(self, correction_id: int) -> Correction | None:
        with self.database.write() as connection:
            return self._delete(connection, correction_id)

    def delete_last(self, annotator: str | None) -> Correction | None:
        with self.database.write() as connection:
            return self._delete(connection, self._last_id(connection, annotator))

    def get(self, correction_id: int) -> Correction | None:
        with self.database.read() as connection:
            return self._fetch_one(connection, correction_id)

    def select(self, where: CorrectionFilter, up_to_id: int | None) -> list[Correction]:
        row, query = self._select(up_to_id)
        conditions = self._filter_conditions(row, where)
        if up_to_id is not None:
            conditions.append(row.c.id <= up_to_id)
        if where.current_only:
            conditions.append(self._is_current(row, up_to_id))
        with self.database.read() as connection:
            return self._fetch_all(connection, query.where(*conditions).order_by(row.c.id))

    @staticmethod
    def _filter_conditions(row: Alias, where: CorrectionFilter) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        for column, value in (
            ("words", where.text),
            ("source", where.source),
            ("annotator", where.annotator),
            ("model_version", where.model_version),
        ):
            if value:
                # autoescape: user text may contain % and _, which must match literally.
                conditions.append(
                    func.lower(row.c[column]).contains(value.lower(), autoescape=True)
                )
        if where.since is not None:
            conditions.append(row.c.created_at > _timestamp(where.since))
        return conditions

    def history(self, key: str) -> list[Correction]:
        row, query = self._select()
        with self.database.read() as connection:
            return self._fetch_all(
                connection, query.where(row.c.sentence_key == key).order_by(row.c.id)
            )

    def count(self, since: str | None, model_version: str | None, current_only: bool) -> int:
        row = corrections_table.alias("c")
        conditions: list[ColumnElement[bool]] = []
        if since is not None:
            conditions.append(row.c.created_at > since)
        if model_version is not None:
            conditions.append(row.c.model_version == model_version)
        if current_only:
            conditions.append(self._is_current(row, None))
        query = select(func.count()).select_from(row).where(*conditions)
        with self.database.read() as connection:
            return int(connection.execute(query).scalar_one())

    def last_id(self) -> int | None:
        with self.database.read() as connection:
            return self._last_id(connection)


# ---------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------


class CorrectionsStore:
    """Save, undo, delete, list and export corrections; the rules, not the SQL.

    >>> import tempfile, pathlib
    >>> store = CorrectionsStore.open(pathlib.Path(tempfile.mkdtemp()) / "c.sqlite3")
    >>> store.count()
    0
    """

    def __init__(
        self,
        backend: CorrectionsBackend,
        *,
        entity_types: Sequence[str] = (ENTITY_TYPE,),
        clock: Clock = _utc_now,
    ) -> None:
        self.backend = backend
        self.allowed_labels = _allowed_labels(entity_types)
        self.clock = clock

    @classmethod
    def open(cls, path: str | Path, *, clock: Clock = _utc_now) -> CorrectionsStore:
        """A store in the SQLite file ``path`` (created with its folder if missing)."""
        return cls(SqliteCorrectionsBackend(path), clock=clock)

    @classmethod
    def in_folder(cls, data_dir: str | Path, *, clock: Clock = _utc_now) -> CorrectionsStore:
        """The store in an app data folder: ``<data_dir>/corrections.sqlite3``."""
        return cls.open(Path(data_dir) / DEFAULT_FILE_NAME, clock=clock)

    @classmethod
    def on_database(cls, database: Database, *, clock: Clock = _utc_now) -> CorrectionsStore:
        """The store in ``database``'s ``corrections`` table (sharing its engine)."""
        return cls(SqlAlchemyCorrectionsBackend(database), clock=clock)

    @classmethod
    def connect(
        cls,
        url: str | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        clock: Clock = _utc_now,
    ) -> CorrectionsStore:
        """The store the app and the worker share: in the database of ``url`` (else
        ``$TAGGER_DB_URL``) with the jobs and the registry; without either, the SQLite
        file in the app data folder (``data_dir``, else ``$TAGGER_DATA_DIR``, else ``data``).

        >>> import tempfile
        >>> store = CorrectionsStore.connect(f"sqlite:///{tempfile.mkdtemp()}/tagger.sqlite3")
        >>> type(store.backend).__name__
        'SqlAlchemyCorrectionsBackend'
        """
        resolved = url or os.environ.get(DB_URL_ENV, "").strip()
        if resolved:
            return cls.on_database(Database.open(resolved), clock=clock)
        return cls.in_folder(app_data_dir(data_dir), clock=clock)

    def prepare_labels(self, labels: Sequence[str]) -> tuple[tuple[str, ...], int]:
        """Labels as they would be stored: unknown labels refused, IOB1 slips repaired.

        Returns the repaired labels and how many were changed; the app shows both
        before the curator saves.
        """
        checked = _check_labels("the correction", labels, len(labels), self.allowed_labels)
        return repair_bio(checked)

    def save(
        self,
        *,
        words: Sequence[str],
        labels: Sequence[str],
        predicted: Sequence[str],
        source: str,
        sentence_index: int,
        model_version: str,
        annotator: str,
    ) -> SaveResult:
        """Store one corrected sentence in one transaction; it becomes current."""
        checked_words = _check_words(words)
        checked = _check_labels("the correction", labels, len(checked_words), self.allowed_labels)
        repaired_labels, n_repaired = repair_bio(checked)
        checked_predicted = _check_labels(
            "the prediction", predicted, len(checked_words), self.allowed_labels
        )
        if not isinstance(sentence_index, int) or sentence_index < 0:
            raise InvalidCorrectionError(
                f"sentence_index {sentence_index!r} must be a non-negative integer."
            )
        clean_source = _check_text_field("source", source)
        row = CorrectionRow(
            sentence_key=sentence_key(clean_source, sentence_index, checked_words),
            words=checked_words,
            labels=repaired_labels,
            predicted=checked_predicted,
            source=clean_source,
            sentence_index=sentence_index,
            model_version=_check_text_field("model_version", model_version),
            annotator=_check_text_field("annotator", annotator),
            created_at=_timestamp(self.clock()),
        )
        saved, replaced = self.backend.insert(row)
        return SaveResult(saved, n_repaired, replaced)

    def undo_last(self, annotator: str | None = None) -> Correction | None:
        """Remove the most recent save (of ``annotator`` if given); None if there is none.

        The sentence's previous correction, if any, becomes current again.
        """
        return self.backend.delete_last(annotator)

    def delete(self, correction_id: int) -> Correction:
        """Remove one correction; raises :class:`CorrectionNotFoundError` if it is gone."""
        removed = self.backend.delete(correction_id)
        if removed is None:
            raise CorrectionNotFoundError(
                f"no correction has id {correction_id}; it may already be deleted. "
                "Refresh the list of corrections."
            )
        return removed

    def get(self, correction_id: int) -> Correction | None:
        return self.backend.get(correction_id)

    def corrections(self, where: CorrectionFilter | None = None) -> list[Correction]:
        """Corrections matching ``where`` (default: all current ones), oldest first."""
        return self.backend.select(where or CorrectionFilter(), None)

    def current(self, *, up_to_id: int | None = None) -> list[Correction]:
        """The current correction of every sentence, considering only ids <= ``up_to_id``.

        A training job passes the last id it saw at its start, so a save that lands
        while it runs goes into the next job instead.
        """
        return self.backend.select(CorrectionFilter(), up_to_id)

    def history(self, key: str) -> list[Correction]:
        """Every save of one sentence (see :func:`sentence_key`), oldest first."""
        return self.backend.history(key)

    def count(
        self,
        *,
        since: datetime | None = None,
        model_version: str | None = None,
        current_only: bool = True,
    ) -> int:
        """How many corrections; ``since`` a time, or saved while ``model_version`` served."""
        since_text = None if since is None else _timestamp(since)
        return self.backend.count(since_text, model_version, current_only)

    def last_id(self) -> int | None:
        return self.backend.last_id()

    def training_sentences(self, *, up_to_id: int | None = None) -> list[Sentence]:
        """The current corrections as sentences to train on, oldest first."""
        return [correction.as_sentence() for correction in self.current(up_to_id=up_to_id)]

    def export_bio(self) -> str:
        """All current corrections in BC5CDR format (``""`` when there are none)."""
        sentences = self.training_sentences()
        return format_bio(sentences) if sentences else ""
