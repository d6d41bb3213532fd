"""The curators' corrections: every corrected sentence, kept with its history.

A correction is one sentence whose labels a curator fixed: its words, the corrected
IOB2 labels, the labels the model predicted, where the sentence came from (a pasted
text's hash or a file name, plus the sentence index), the model version that served
it, the annotator and the time. The same sentence corrected twice keeps both rows:
the latest is *current* (the one that trains), the older ones are the audit trail.

Labels are checked before anything is written: unknown labels are refused, an
``I-`` that continues no entity is repaired to ``B-`` (and counted), so the store
never holds invalid IOB2. Each save, undo and delete is one transaction, so a
crash or a killed process never leaves half a correction. A save reports success only
once a separate read finds the committed row; a damaged or busy database is a
:class:`~curation.database.DatabaseError` that says what to do, and the SQLite file is
backed up every so many saves (:mod:`curation.backup`).

The corrections live in the one curation database (:mod:`curation.database`: the
SQLite file of the app's data folder, or PostgreSQL through ``TAGGER_DB_URL``) next to
the jobs and the model registry; the statements are SQLAlchemy Core, so one code path
serves both. On SQLite a write takes the lock up front, so concurrent saves wait their
turn instead of failing.

Example:

>>> import tempfile
>>> store = CorrectionsStore.open(data_dir=tempfile.mkdtemp())
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, delete, exists, func, insert, select
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.sql.selectable import Alias

from curation.database import Database, DatabaseDamagedError
from curation.schema import corrections_table
from tagger.bio import ENTITY_TYPE, Sentence, entity_spans, format_bio, repair_bio
from tagger.errors import TaggerError

if TYPE_CHECKING:
    from curation.backup import Backups

Clock = Callable[[], datetime]


class InvalidCorrectionError(TaggerError, ValueError):
    """A correction that cannot be stored as it is; the message names the fix."""


class CorrectionNotFoundError(TaggerError, LookupError):
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
class NewCorrection:
    """One sentence to save (:meth:`CorrectionsStore.save_many`), as ``save`` takes it."""

    words: Sequence[str]
    labels: Sequence[str]
    predicted: Sequence[str]
    source: str
    sentence_index: int
    model_version: str
    annotator: str


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
    # The BIO reader's own rule, so that every saved word survives export_bio and a read.
    from tagger.bio import token_problem

    if not words:
        raise InvalidCorrectionError("the sentence has no words; a correction needs at least one.")
    for index, word in enumerate(words, start=1):
        problem = token_problem(word) if isinstance(word, str) else "is not text"
        if problem is not None:
            raise InvalidCorrectionError(
                f"word {index} {word!r} {problem}, which a BIO file cannot store, so the "
                "correction was not saved. Remove the character from the text (or fix the "
                "uploaded BIO file), tag it again, then correct the sentence."
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
# The store
# ---------------------------------------------------------------------------


class CorrectionsStore:
    """Save, undo, delete, list and export corrections, each call one transaction.

    >>> import tempfile
    >>> store = CorrectionsStore.open(data_dir=tempfile.mkdtemp())
    >>> store.count()
    0
    """

    def __init__(
        self,
        database: Database,
        *,
        entity_types: Sequence[str] = (ENTITY_TYPE,),
        clock: Clock = _utc_now,
    ) -> None:
        self.database = database
        self.allowed_labels = _allowed_labels(entity_types)
        self.clock = clock
        # Imported here: `python -m curation.backup` must not find itself imported already.
        from curation.backup import Backups

        # SQLite only: on PostgreSQL backups are the operator's (README, Backups and restore).
        self.backups: Backups | None = Backups.maybe_of(database)

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        clock: Clock = _utc_now,
    ) -> CorrectionsStore:
        """The store in the database of ``url`` (else ``$TAGGER_DB_URL``, else the SQLite
        file of the app data folder ``data_dir``), shared with the jobs and the registry."""
        return cls(Database.open(url, data_dir=data_dir), clock=clock)

    # -- SQL ------------------------------------------------------------------------

    @staticmethod
    def _is_current(row: Alias, up_to_id: int | None) -> ColumnElement[bool]:
        # A row is current when no later row has its sentence key; "later" is by id,
        # not by clock, so a clock step backwards cannot resurrect an old version.
        newer = corrections_table.alias("newer")
        conditions = [newer.c.sentence_key == row.c.sentence_key, newer.c.id > row.c.id]
        if up_to_id is not None:
            conditions.append(newer.c.id <= up_to_id)
        return ~exists().where(*conditions)

    def _select(self, up_to_id: int | None = None) -> tuple[Alias, Select[Any]]:
        row = corrections_table.alias("c")
        return row, select(row, self._is_current(row, up_to_id).label("current"))

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

    def _fetch_all(self, query: Select[Any]) -> list[Correction]:
        with self.database.read() as connection:
            return [self._to_correction(found._mapping) for found in connection.execute(query)]

    @staticmethod
    def _last_id(connection: Connection, annotator: str | None = None) -> int | None:
        query = select(func.max(corrections_table.c.id))
        if annotator is not None:
            query = query.where(corrections_table.c.annotator == annotator)
        return connection.execute(query).scalar()

    def _delete(self, connection: Connection, correction_id: int | None) -> Correction | None:
        if correction_id is None:
            return None
        found = self._fetch_one(connection, correction_id)
        if found is not None:
            connection.execute(
                delete(corrections_table).where(corrections_table.c.id == correction_id)
            )
        return found

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

    # -- the rules --------------------------------------------------------------------

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
        on_busy: Callable[[], None] | None = None,
    ) -> SaveResult:
        """Store one corrected sentence in one transaction; it becomes current.

        Returns only once a separate read finds the committed row. Another process's
        lock is retried for a while (``on_busy`` is called once when that starts), then
        :class:`~curation.database.DatabaseBusyError`; a damaged file refuses with
        :class:`~curation.database.DatabaseDamagedError`.
        """
        sentence = NewCorrection(
            words, labels, predicted, source, sentence_index, model_version, annotator
        )
        return self.save_many([sentence], on_busy=on_busy)[0]

    def save_many(
        self,
        sentences: Sequence[NewCorrection],
        *,
        on_busy: Callable[[], None] | None = None,
        within: Callable[[Connection], None] | None = None,
    ) -> list[SaveResult]:
        """Store several corrected sentences in one transaction, each as :meth:`save` does.

        Args:
            sentences: the corrections; all are checked before anything is written.
            on_busy: called once when another process's lock makes the write wait.
            within: run inside the same transaction after the rows are written (e.g. the
                review queue marks its item reviewed); if it raises, nothing is stored.

        Returns only once a separate read finds every committed row.
        """
        prepared = [self._prepare(sentence) for sentence in sentences]
        now = _timestamp(self.clock())
        table = corrections_table
        new_ids: list[int] = []
        replaced_ids: list[int | None] = []
        with self.database.write(on_busy=on_busy) as connection:
            for row, _, _ in prepared:
                row = {**row, "created_at": now}
                replaced_ids.append(
                    connection.execute(
                        select(func.max(table.c.id)).where(
                            table.c.sentence_key == row["sentence_key"]
                        )
                    ).scalar()
                )
                inserted = insert(table).values(row).returning(table.c.id)
                new_id = int(connection.execute(inserted).scalar_one())
                if self._fetch_one(connection, new_id) is None:  # not even here: roll back
                    raise DatabaseDamagedError(
                        f"correction #{new_id} vanished from {self.database.message_path} "
                        "right after it was written"
                    )
                new_ids.append(new_id)
            if within is not None:
                within(connection)
        results = [
            SaveResult(self._read_back(new_id, words, labels), n_repaired, replaced)
            for new_id, (_, words, (labels, n_repaired)), replaced in zip(
                new_ids, prepared, replaced_ids, strict=True
            )
        ]
        if self.backups is not None and results:
            self.backups.after_save()
        return results

    def _prepare(
        self, sentence: NewCorrection
    ) -> tuple[dict[str, Any], tuple[str, ...], tuple[tuple[str, ...], int]]:
        """The row to insert (without its time), the checked words, the repaired labels."""
        checked_words = _check_words(sentence.words)
        checked = _check_labels(
            "the correction", sentence.labels, len(checked_words), self.allowed_labels
        )
        repaired_labels, n_repaired = repair_bio(checked)
        checked_predicted = _check_labels(
            "the prediction", sentence.predicted, len(checked_words), self.allowed_labels
        )
        index = sentence.sentence_index
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise InvalidCorrectionError(
                f"sentence_index {index!r} must be a non-negative integer."
            )
        clean_source = _check_text_field("source", sentence.source)
        row = {
            "sentence_key": sentence_key(clean_source, index, checked_words),
            "source": clean_source,
            "sentence_index": index,
            "words": json.dumps(list(checked_words), ensure_ascii=False),
            "labels": json.dumps(list(repaired_labels)),
            "predicted": json.dumps(list(checked_predicted)),
            "model_version": _check_text_field("model_version", sentence.model_version),
            "annotator": _check_text_field("annotator", sentence.annotator),
        }
        return row, checked_words, (repaired_labels, n_repaired)

    def _read_back(
        self, new_id: int, words: tuple[str, ...], labels: tuple[str, ...]
    ) -> Correction:
        saved = self.get(new_id)  # committed: a separate read must find it, as it was sent
        if saved is None or saved.words != words or saved.labels != labels:
            path = self.database.message_path
            raise DatabaseDamagedError(
                f"correction #{new_id} was written to {path} but cannot be read back",
                fix="your correction is still in the editor; keep it and see the message "
                "about the database above",
            )
        return saved

    def backup_if_due(self) -> Path | None:
        """A timed backup of the SQLite file when one is due (the worker polls this);
        never raises. None on PostgreSQL, where backups are the operator's."""
        return self.backups.if_due() if self.backups is not None else None

    def undo_last(self, annotator: str | None = None) -> Correction | None:
        """Remove the most recent save (of ``annotator`` if given); None if there is none.

        The sentence's previous correction, if any, becomes current again.
        """
        with self.database.write() as connection:
            return self._delete(connection, self._last_id(connection, annotator))

    def delete(self, correction_id: int) -> Correction:
        """Remove one correction; raises :class:`CorrectionNotFoundError` if it is gone."""
        with self.database.write() as connection:
            removed = self._delete(connection, correction_id)
        if removed is None:
            raise CorrectionNotFoundError(
                f"no correction has id {correction_id}; it may already be deleted. "
                "Refresh the list of corrections."
            )
        return removed

    def get(self, correction_id: int) -> Correction | None:
        with self.database.read() as connection:
            return self._fetch_one(connection, correction_id)

    def corrections(self, where: CorrectionFilter | None = None) -> list[Correction]:
        """Corrections matching ``where`` (default: all current ones), oldest first."""
        return self._matching(where or CorrectionFilter(), None)

    def current(self, *, up_to_id: int | None = None) -> list[Correction]:
        """The current correction of every sentence, considering only ids <= ``up_to_id``.

        A training job passes the last id it saw at its start, so a save that lands
        while it runs goes into the next job instead.
        """
        return self._matching(CorrectionFilter(), up_to_id)

    def _matching(self, where: CorrectionFilter, up_to_id: int | None) -> list[Correction]:
        row, query = self._select(up_to_id)
        conditions = self._filter_conditions(row, where)
        if up_to_id is not None:
            conditions.append(row.c.id <= up_to_id)
        if where.current_only:
            conditions.append(self._is_current(row, up_to_id))
        return self._fetch_all(query.where(*conditions).order_by(row.c.id))

    def history(self, key: str) -> list[Correction]:
        """Every save of one sentence (see :func:`sentence_key`), oldest first."""
        row, query = self._select()
        return self._fetch_all(query.where(row.c.sentence_key == key).order_by(row.c.id))

    def count(
        self,
        *,
        since: datetime | None = None,
        model_version: str | None = None,
        current_only: bool = True,
    ) -> int:
        """How many corrections; ``since`` a time, or saved while ``model_version`` served."""
        row = corrections_table.alias("c")
        conditions: list[ColumnElement[bool]] = []
        if since is not None:
            conditions.append(row.c.created_at > _timestamp(since))
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

    def training_sentences(self, *, up_to_id: int | None = None) -> list[Sentence]:
        """The current corrections as sentences to train on, oldest first."""
        return [correction.as_sentence() for correction in self.current(up_to_id=up_to_id)]

    def export_bio(self) -> str:
        """All current corrections in BC5CDR format (``""`` when there are none)."""
        sentences = self.training_sentences()
        return format_bio(sentences) if sentences else ""
