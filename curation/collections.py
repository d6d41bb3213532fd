"""Collections: many documents imported at once, tagged by the worker, reviewed in a queue.

A curator imports files into a named collection (:meth:`CollectionStore.import_files`);
the worker tags every document with the model in service (``worker.collection_tagging``,
through :meth:`CollectionStore.documents_to_tag` and :meth:`CollectionStore.store_tags`);
the review queue (:mod:`curation.review`) hands the documents to curators, the model's
most doubtful first.

Formats, by file extension:

- ``.txt``: one abstract per file, its external id the file name without the extension.
  The first line is the **title** when it is at most 300 characters long
  (:data:`tagger.documents.MAX_TITLE_CHARS`) and a blank line and more text follow it;
  otherwise the whole file is the text.
- ``.jsonl``: one ``{"id", "title", "text"}`` record per line (a PubMed export): ``id``
  an integer or a string (missing: ``<file>:<line>``), ``title`` optional, ``text``
  required. Blank lines are ignored.
- ``.xml``: PubMed XML (a search's "PubMed" export, an E-utilities ``efetch``, a baseline
  file): each ``PubmedArticle``'s PMID, title and abstract (:mod:`tagger.documents`).
- BIO (``.bio``, ``.iob``, ``.conll``, ``.tsv``): ``word<TAB or space>label`` lines read by
  :func:`tagger.bio.parse_bio`, a blank line between sentences. Documents are split at
  ``-DOCSTART-`` lines when the file has any; otherwise at runs of two or more blank
  lines when it has any; otherwise the whole file is one document. Their ids are
  ``<file>#<n>``, n counting from 1; only the words are kept (the model tags them).

A bad record (invalid JSON, no text, not UTF-8, an empty file, an id already in the
collection, a bad BIO line) becomes an :class:`ImportProblem` naming the file and line;
the good records are kept, all of one import in one transaction.

A document's *text* is its title, a blank line and its abstract
(:func:`tagger.documents.document_text`): the character offsets of tagged words index it.

Doubt: the model's per-word scores are the probability of each word's decoded label,
so ``sum(1 - p)`` over the words is the number of words the model expects to have
labelled wrongly (:func:`expected_word_errors`, named :data:`UNCERTAINTY_NAME`).

Example:

>>> import tempfile
>>> from curation.database import Database
>>> store = CollectionStore(Database.open(data_dir=tempfile.mkdtemp()))
>>> report = store.import_files(
...     "demo", [("a.jsonl", b'{"id": 1, "text": "Fever."}\\n{"id": 1, "text": "x"}\\n')],
...     imported_by="ada")
>>> report.added
1
>>> print(report.problems[0])
a.jsonl:2: id '1' is twice in this import (first at a.jsonl:1) — give each record its own id
>>> [(s.name, s.documents, s.tagged) for s in store.summaries()]
[('demo', 1, 0)]
"""

from __future__ import annotations

import io
import itertools
import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePath
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, and_, case, delete, func, insert, or_, select
from sqlalchemy import update as sql_update

from curation.database import Database, utc_now
from curation.schema import (
    collection_documents_table,
    collections_table,
    serving_table,
)
from tagger.bio import (
    DOCSTART,
    RESAVE_AS_UTF8,
    BioFormatError,
    BioRepairWarning,
    parse_bio,
    utf16_problem,
)
from tagger.documents import (
    JSONL_SHAPE,
    TextDocument,
    decode_text,
    jsonl_record,
    pubmed_xml_records,
    text_file_document,
)
from tagger.documents import RecordProblem as ImportProblem
from tagger.errors import TaggerError

Clock = Callable[[], datetime]

UNCERTAINTY_NAME = "expected word errors"
"""What :attr:`ReviewItem.uncertainty` counts, for the UI: sum over words of 1 − p(label)."""

DEFAULT_CLAIM_TTL_S = 1800.0  # a curator's claim on an item lapses after 30 minutes
MAX_NAME_CHARS = 200
TEXT_EXTENSIONS = (".txt",)
JSONL_EXTENSIONS = (".jsonl",)
PUBMED_XML_EXTENSIONS = (".xml",)
BIO_EXTENSIONS = (".bio", ".iob", ".conll", ".tsv")
UNREVIEWED, REVIEWED, SKIPPED, FLAGGED = "unreviewed", "reviewed", "skipped", "flagged"
# The statuses the worker keeps tagged with the version in service.
TAGGABLE_STATUSES = (UNREVIEWED, SKIPPED)

documents = collection_documents_table


class CollectionError(TaggerError, ValueError):
    """A collection request that cannot be honoured; the message names the fix."""


class CollectionNotFoundError(CollectionError, LookupError):
    """No collection has the name asked for."""


@dataclass(frozen=True)
class ImportReport:
    """What one :meth:`CollectionStore.import_files` kept and what it refused."""

    collection: str
    added: int
    problems: tuple[ImportProblem, ...]
    files: int


@dataclass(frozen=True)
class CollectionSummary:
    """One collection's counts; ``tagged``: documents tagged by the version in service,
    ``pending``: unreviewed or skipped documents still waiting for that version's tags."""

    name: str
    documents: int
    tagged: int
    reviewed: int
    skipped: int
    flagged: int
    pending: int = 0


class TaggingProgress(NamedTuple):
    """How far the worker has got: ``tagged_by_current`` of ``total`` documents carry the
    tags of ``version`` (the one in service). ``total`` counts the documents the worker
    keeps tagged (unreviewed and skipped ones) plus reviewed or flagged ones that
    ``version`` tagged; reviewed and flagged documents keep their labels."""

    tagged_by_current: int
    total: int
    version: str | None


@dataclass(frozen=True)
class PredictedSentence:
    """One tagged sentence: words, their ``(start, end)`` offsets in the document's text
    (None for BIO documents, which have no text), IOB2 labels, and the probability of
    each word's label."""

    words: tuple[str, ...]
    offsets: tuple[tuple[int, int], ...] | None
    labels: tuple[str, ...]
    scores: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "words", tuple(self.words))
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "scores", tuple(float(score) for score in self.scores))
        if self.offsets is not None:
            offsets = tuple((int(start), int(end)) for start, end in self.offsets)
            object.__setattr__(self, "offsets", offsets)
        lengths = {len(self.labels), len(self.scores)}
        if self.offsets is not None:
            lengths.add(len(self.offsets))
        if lengths != {len(self.words)}:
            raise CollectionError(
                f"a tagged sentence has {len(self.words)} words but {len(self.labels)} labels "
                f"and {len(self.scores)} scores",
                fix="give one label, one score (and one offset pair) per word",
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "words": list(self.words),
            "offsets": None if self.offsets is None else [list(pair) for pair in self.offsets],
            "labels": list(self.labels),
            "scores": [round(score, 6) for score in self.scores],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PredictedSentence:
        offsets = data.get("offsets")
        return cls(
            tuple(data["words"]),
            None if offsets is None else tuple((start, end) for start, end in offsets),
            tuple(data["labels"]),
            tuple(data["scores"]),
        )


@dataclass(frozen=True)
class DocumentToTag:
    """A document the worker should tag: its title and text, or its BIO words."""

    id: int
    title: str | None
    text: str | None
    words: tuple[tuple[str, ...], ...] | None


@dataclass(frozen=True)
class ParsedDocument:
    """One good record of an imported file, before it is stored."""

    external_id: str
    title: str | None
    text: str | None
    words: tuple[tuple[str, ...], ...] | None
    file: str
    line: int


# ---------------------------------------------------------------------------
# Doubt
# ---------------------------------------------------------------------------


def expected_word_errors(sentences: Sequence[PredictedSentence]) -> float:
    """Sum over words of 1 − p(decoded label): the words the model expects to have wrong.

    >>> expected_word_errors([PredictedSentence(("a", "b"), None, ("O", "O"), (0.9, 0.6))])
    0.5
    """
    total = sum(1.0 - score for sentence in sentences for score in sentence.scores)
    return round(max(0.0, total), 6)


def per_100_words(errors: float, words: int) -> float:
    """Expected word errors per 100 words (0 for a document without words).

    >>> per_100_words(1.5, 300)
    0.5
    """
    return 100.0 * errors / words if words else 0.0


def sentences_to_json(sentences: Sequence[PredictedSentence]) -> str:
    return json.dumps([sentence.to_json() for sentence in sentences], ensure_ascii=False)


def sentences_from_json(payload: str | None) -> list[PredictedSentence]:
    if not payload:
        return []
    return [PredictedSentence.from_json(item) for item in json.loads(payload)]


# ---------------------------------------------------------------------------
# Reading files
# ---------------------------------------------------------------------------


@dataclass
class _Parsed:
    documents: list[ParsedDocument] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)


def _parse_txt(file: str, data: bytes) -> _Parsed:
    parsed = _Parsed()
    outcome = text_file_document(file, data)
    if isinstance(outcome, ImportProblem):
        parsed.problems.append(outcome)
    else:
        parsed.documents.append(_parsed(outcome))
    return parsed


def _parsed(document: TextDocument) -> ParsedDocument:
    return ParsedDocument(
        document.external_id, document.title, document.text, None, document.file, document.line
    )


def _parse_pubmed_xml(file: str, data: bytes) -> _Parsed:
    parsed = _Parsed()
    for outcome in pubmed_xml_records(file, io.BytesIO(data)):
        if isinstance(outcome, ImportProblem):
            parsed.problems.append(outcome)
        else:
            parsed.documents.append(_parsed(outcome))
    return parsed


def _parse_jsonl(file: str, data: bytes) -> _Parsed:
    parsed = _Parsed()
    utf16 = utf16_problem(data)
    if utf16 is not None:
        parsed.problems.append(ImportProblem(file, None, utf16, RESAVE_AS_UTF8))
        return parsed
    lines = data.removeprefix(b"\xef\xbb\xbf").replace(b"\r\n", b"\n").split(b"\n")
    for number, raw in enumerate(lines, start=1):
        outcome = jsonl_record(file, number, raw)
        if isinstance(outcome, ImportProblem):
            parsed.problems.append(outcome)
        elif outcome is not None:
            parsed.documents.append(_parsed(outcome))
    if not parsed.documents and not parsed.problems:
        parsed.problems.append(
            ImportProblem(file, None, "the file is empty", f"write {JSONL_SHAPE}")
        )
    return parsed


def _is_blank(line: str) -> bool:
    return not line.strip(" \t")


def _is_docstart(line: str) -> bool:
    return line.split(maxsplit=1)[:1] == [DOCSTART]


def _bio_chunks(lines: list[str]) -> Iterator[tuple[int, list[str]]]:
    """The documents of a BIO file as (first line number, lines); see the module docstring."""
    if any(_is_docstart(line) for line in lines):
        starts = [index for index, line in enumerate(lines) if _is_docstart(line)]
        bounds = [-1, *starts, len(lines)]
        for before, after in itertools.pairwise(bounds):
            yield before + 2, lines[before + 1 : after]
        return
    start, blanks = 0, 0
    for index, line in enumerate(lines):
        if _is_blank(line):
            blanks += 1
            continue
        if blanks >= 2 and index - blanks > start:
            yield start + 1, lines[start : index - blanks]
            start = index
        blanks = 0
    yield start + 1, lines[start:]


def _parse_bio_file(file: str, data: bytes) -> _Parsed:
    parsed = _Parsed()
    decoded = decode_text(file, data)
    if isinstance(decoded, ImportProblem):
        parsed.problems.append(decoded)
        return parsed
    number = 0
    for first_line, lines in _bio_chunks(decoded.split("\n")):
        if all(_is_blank(line) for line in lines):
            continue
        number += 1
        try:
            with warnings.catch_warnings():
                # Only the words are kept: a repaired IOB1 label changes nothing here.
                warnings.simplefilter("ignore", BioRepairWarning)
                sentences = parse_bio("\n".join(lines), file)
        except BioFormatError as error:
            line = None if error.line is None else error.line + first_line - 1
            parsed.problems.append(ImportProblem(file, line, error.what, error.fix or ""))
            continue
        words = tuple(sentence.words for sentence in sentences)
        parsed.documents.append(
            ParsedDocument(f"{file}#{number}", None, None, words, file, first_line)
        )
    if number == 0:
        parsed.problems.append(
            ImportProblem(
                file,
                None,
                "the file is empty",
                "write one `word<TAB>label` per line and a blank line after each sentence",
            )
        )
    return parsed


def parse_file(file: str, data: bytes) -> tuple[list[ParsedDocument], list[ImportProblem]]:
    """The documents of one file and the problems of its bad records (see the module doc)."""
    suffix = PurePath(file).suffix.lower()
    if suffix in TEXT_EXTENSIONS:
        parsed = _parse_txt(file, data)
    elif suffix in JSONL_EXTENSIONS:
        parsed = _parse_jsonl(file, data)
    elif suffix in PUBMED_XML_EXTENSIONS:
        parsed = _parse_pubmed_xml(file, data)
    elif suffix in BIO_EXTENSIONS:
        parsed = _parse_bio_file(file, data)
    else:
        known = ", ".join(
            (*TEXT_EXTENSIONS, *JSONL_EXTENSIONS, *PUBMED_XML_EXTENSIONS, *BIO_EXTENSIONS)
        )
        problem = ImportProblem(
            file,
            None,
            f"the file type {suffix or '(none)'!r} is not one the import reads",
            f"give the file one of the extensions {known}",
        )
        return [], [problem]
    return parsed.documents, parsed.problems


def check_collection_name(name: str) -> str:
    """The name, stripped; an empty, overlong or control-character name is refused."""
    clean = name.strip() if isinstance(name, str) else ""
    if not clean or len(clean) > MAX_NAME_CHARS or not clean.isprintable():
        raise CollectionError(
            f"the collection name {name!r} is empty, longer than {MAX_NAME_CHARS} characters "
            "or holds a control character",
            where="Collection",
            fix="name the collection in a few printable words, e.g. pubmed-query-1",
        )
    return clean


# ---------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------


def serving_version_in(connection: Connection) -> str | None:
    """The version in service, read from the registry's pointer row."""
    return connection.execute(select(serving_table.c.version)).scalar()


def collection_id_in(connection: Connection, name: str) -> int:
    """The id of collection ``name``; :class:`CollectionNotFoundError` if there is none."""
    found = connection.execute(
        select(collections_table.c.id).where(collections_table.c.name == name)
    ).scalar()
    if found is None:
        raise CollectionNotFoundError(
            f"there is no collection {name!r}",
            fix="pick one of the collections listed on the Collections page, or import "
            "files under this name first",
        )
    return int(found)


def claim_is_free(now: datetime, ttl_s: float) -> ColumnElement[bool]:
    """Nobody holds the document, or the claim is older than ``ttl_s`` and has lapsed."""
    return or_(
        documents.c.claimed_by.is_(None),
        documents.c.claimed_at < now - timedelta(seconds=ttl_s),
    )


class CollectionStore:
    """Import, list, delete collections, and the worker's side of tagging them.

    Args:
        database: the curation database.
        clock: the current UTC time (tests pass a fake one).
        claim_ttl_s: seconds after which a curator's claim on a document lapses; a
            claimed document is not re-tagged under the curator's eyes.
    """

    def __init__(
        self,
        database: Database,
        *,
        clock: Clock = utc_now,
        claim_ttl_s: float = DEFAULT_CLAIM_TTL_S,
    ) -> None:
        self.database = database
        self.clock = clock
        self.claim_ttl_s = claim_ttl_s

    # -- import -----------------------------------------------------------------------

    def import_files(
        self, collection: str, files: Sequence[tuple[str, bytes]], *, imported_by: str
    ) -> ImportReport:
        """Add the good records of ``files`` (name, content) to ``collection`` (created if
        new), in one transaction; every refused record is in the report's problems."""
        name = check_collection_name(collection)
        importer = (imported_by or "").strip() or "unknown"
        parsed: list[ParsedDocument] = []
        problems: list[ImportProblem] = []
        for file, data in files:
            found, refused = parse_file(file, data)
            parsed.extend(found)
            problems.extend(refused)
        now = self.clock()
        with self.database.write() as connection:
            collection_id = self._ensure_collection(connection, name, importer, now)
            existing = set(
                connection.execute(
                    select(documents.c.external_id).where(
                        documents.c.collection_id == collection_id
                    )
                ).scalars()
            )
            rows, duplicates = self._new_rows(parsed, existing, collection_id, importer, now)
            problems.extend(duplicates)
            if rows:
                connection.execute(insert(documents), rows)
        problems.sort(key=lambda problem: (problem.file, problem.line or 0))
        return ImportReport(name, len(rows), tuple(problems), len(files))

    @staticmethod
    def _ensure_collection(connection: Connection, name: str, by: str, now: datetime) -> int:
        found = connection.execute(
            select(collections_table.c.id).where(collections_table.c.name == name)
        ).scalar()
        if found is not None:
            return int(found)
        inserted = (
            insert(collections_table)
            .values(name=name, created_by=by, created_at=now)
            .returning(collections_table.c.id)
        )
        return int(connection.execute(inserted).scalar_one())

    @staticmethod
    def _new_rows(
        parsed: Sequence[ParsedDocument],
        existing: set[str],
        collection_id: int,
        importer: str,
        now: datetime,
    ) -> tuple[list[dict[str, Any]], list[ImportProblem]]:
        rows: list[dict[str, Any]] = []
        problems: list[ImportProblem] = []
        first_seen: dict[str, str] = {}
        for document in parsed:
            if document.external_id in existing:
                problems.append(
                    ImportProblem(
                        document.file,
                        document.line,
                        f"id {document.external_id!r} is already in this collection",
                        "give the record another id, or import it into another collection",
                    )
                )
                continue
            if document.external_id in first_seen:
                problems.append(
                    ImportProblem(
                        document.file,
                        document.line,
                        f"id {document.external_id!r} is twice in this import "
                        f"(first at {first_seen[document.external_id]})",
                        "give each record its own id",
                    )
                )
                continue
            first_seen[document.external_id] = f"{document.file}:{document.line}"
            rows.append(
                {
                    "collection_id": collection_id,
                    "external_id": document.external_id,
                    "title": document.title,
                    "text": document.text,
                    "words": None
                    if document.words is None
                    else json.dumps([list(words) for words in document.words], ensure_ascii=False),
                    "source_file": document.file,
                    "source_line": document.line,
                    "imported_by": importer,
                    "imported_at": now,
                    "status": UNREVIEWED,
                }
            )
        return rows, problems

    # -- listing ------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Every collection's name, alphabetically."""
        with self.database.read() as connection:
            query = select(collections_table.c.name).order_by(collections_table.c.name)
            return list(connection.execute(query).scalars())

    def summaries(self) -> list[CollectionSummary]:
        """Every collection with its counts, alphabetically."""
        with self.database.read() as connection:
            serving = serving_version_in(connection)
            rows = connection.execute(self._summary_query(serving)).all()
        return [
            CollectionSummary(
                name=row.name,
                documents=int(row.documents),
                tagged=int(row.tagged or 0),
                reviewed=int(row.reviewed or 0),
                skipped=int(row.skipped or 0),
                flagged=int(row.flagged or 0),
                pending=int(row.pending or 0),
            )
            for row in rows
        ]

    @staticmethod
    def _summary_query(serving: str | None) -> Any:
        def count_where(condition: ColumnElement[bool]) -> Any:
            return func.sum(case((condition, 1), else_=0))

        tagged = documents.c.model_version == serving if serving else documents.c.id.is_(None)
        waiting = and_(documents.c.status.in_(TAGGABLE_STATUSES), ~tagged)
        return (
            select(
                collections_table.c.name,
                func.count(documents.c.id).label("documents"),
                count_where(tagged).label("tagged"),
                count_where(documents.c.status == REVIEWED).label("reviewed"),
                count_where(documents.c.status == SKIPPED).label("skipped"),
                count_where(documents.c.status == FLAGGED).label("flagged"),
                count_where(waiting).label("pending"),
            )
            .select_from(collections_table.outerjoin(documents))
            .group_by(collections_table.c.id, collections_table.c.name)
            .order_by(collections_table.c.name)
        )

    def delete_collection(self, name: str) -> int:
        """Remove a collection and its documents (corrections saved from it stay);
        returns how many documents went."""
        with self.database.write() as connection:
            collection_id = collection_id_in(connection, name)
            removed = connection.execute(
                delete(documents).where(documents.c.collection_id == collection_id)
            ).rowcount
            connection.execute(
                delete(collections_table).where(collections_table.c.id == collection_id)
            )
        return int(removed)

    def check_exists(self, name: str) -> None:
        """Raise :class:`CollectionNotFoundError` (naming the fix) unless ``name`` exists."""
        with self.database.read() as connection:
            collection_id_in(connection, name)

    def text_lines(self, name: str, *, batch: int = 500) -> Iterator[str]:
        """The collection's text for adapting the encoder to it, one line a document
        (its title, then its text) or, for BIO documents, one line a sentence; line
        breaks inside a text become spaces. Read in batches of ``batch`` documents.

        Raises:
            CollectionNotFoundError: no collection has that name.
        """
        with self.database.read() as connection:
            collection_id = collection_id_in(connection, name)
        last_id = 0
        while True:
            query = (
                select(documents.c.id, documents.c.title, documents.c.text, documents.c.words)
                .where(documents.c.collection_id == collection_id, documents.c.id > last_id)
                .order_by(documents.c.id)
                .limit(batch)
            )
            with self.database.read() as connection:
                rows = connection.execute(query).all()
            if not rows:
                return
            for row in rows:
                if row.words is not None:
                    for sentence in json.loads(row.words):
                        yield " ".join(sentence)
                    continue
                line = " ".join(part for part in (row.title, row.text) if part)
                if line.strip():
                    yield " ".join(line.split())
            last_id = rows[-1].id

    # -- tagging (the worker) ---------------------------------------------------------------

    def documents_to_tag(self, version: str, limit: int) -> list[DocumentToTag]:
        """Up to ``limit`` unreviewed or skipped documents that ``version`` has not tagged
        and no curator holds: never-tagged ones first, then the oldest."""
        query = (
            select(documents.c.id, documents.c.title, documents.c.text, documents.c.words)
            .where(
                documents.c.status.in_(TAGGABLE_STATUSES),
                or_(documents.c.model_version.is_(None), documents.c.model_version != version),
                claim_is_free(self.clock(), self.claim_ttl_s),
            )
            .order_by(case((documents.c.model_version.is_(None), 0), else_=1), documents.c.id)
            .limit(limit)
        )
        with self.database.read() as connection:
            rows = connection.execute(query).all()
        return [
            DocumentToTag(
                row.id,
                row.title,
                row.text,
                None if row.words is None else tuple(tuple(s) for s in json.loads(row.words)),
            )
            for row in rows
        ]

    def store_tags(
        self, document_id: int, version: str, sentences: Sequence[PredictedSentence]
    ) -> bool:
        """Store ``version``'s tags of one document and its doubt; False when it was
        reviewed or claimed meanwhile (it is then left as it is)."""
        return self.store_tags_many(version, [(document_id, sentences)]) == 1

    def store_tags_many(
        self, version: str, tagged: Sequence[tuple[int, Sequence[PredictedSentence]]]
    ) -> int:
        """:meth:`store_tags` for a batch, in one transaction; how many were stored."""
        now = self.clock()
        stored = 0
        with self.database.write() as connection:
            for document_id, sentences in tagged:
                words = sum(len(sentence.words) for sentence in sentences)
                values = {
                    "model_version": version,
                    "tagged_at": now,
                    "sentences": sentences_to_json(sentences),
                    "word_count": words,
                    "uncertainty": expected_word_errors(sentences),
                    "has_spans": any(
                        label != "O" for sentence in sentences for label in sentence.labels
                    ),
                    "tag_error": None,
                }
                stored += self._update_taggable(connection, document_id, now, values)
        return stored

    def record_tag_failure(self, document_id: int, version: str, error: str) -> bool:
        """Mark a document that ``version`` could not tag, so it is not tried again until
        another version is in service; it is not offered for review meanwhile."""
        now = self.clock()
        values = {
            "model_version": version,
            "tagged_at": now,
            "sentences": None,
            "word_count": None,
            "uncertainty": None,
            "has_spans": None,
            "tag_error": error[:2000],
        }
        with self.database.write() as connection:
            return self._update_taggable(connection, document_id, now, values) == 1

    def _update_taggable(
        self, connection: Connection, document_id: int, now: datetime, values: dict[str, Any]
    ) -> int:
        statement = (
            sql_update(documents)
            .where(
                documents.c.id == document_id,
                documents.c.status.in_(TAGGABLE_STATUSES),
                claim_is_free(now, self.claim_ttl_s),
            )
            .values(**values)
        )
        return int(connection.execute(statement).rowcount)

    def tagging_progress(self, collection: str) -> TaggingProgress:
        """``(tagged_by_current, total, version)``; see :class:`TaggingProgress`."""
        with self.database.read() as connection:
            collection_id = collection_id_in(connection, collection)
            version = serving_version_in(connection)
            current = documents.c.model_version == version if version else documents.c.id.is_(None)
            counted = or_(documents.c.status.in_(TAGGABLE_STATUSES), current)
            row = connection.execute(
                select(
                    func.sum(case((and_(current, counted), 1), else_=0)),
                    func.sum(case((counted, 1), else_=0)),
                ).where(documents.c.collection_id == collection_id)
            ).one()
        return TaggingProgress(int(row[0] or 0), int(row[1] or 0), version)
