"""The review queue: a collection's tagged documents, one curator per item, doubt first.

:meth:`ReviewQueue.next_item` hands a curator one item of a collection:

1. the item the curator already holds there (a claim younger than ``claim_ttl_s``), so
   a restarted app or a closed browser resumes at the same item;
2. else it claims one with a conditional ``UPDATE ... WHERE`` nobody holds it (or the
   claim lapsed) and checks that one row changed, so two curators never hold the same
   item, on SQLite and PostgreSQL alike. Unreviewed items come first, skipped ones
   after all of them; within each, the highest :data:`~curation.collections.UNCERTAINTY_NAME`
   first (the items where a review is expected to fix the most words).

**Diversity rule.** Among the top :data:`DIVERSITY_CANDIDATES` candidates, an item whose
Jaccard similarity with any of the curator's last :data:`DIVERSITY_WINDOW` items in the
collection (served or reviewed) is at least :data:`DIVERSITY_THRESHOLD` is passed over,
so that near-duplicates (the same abstract imported twice, templated reports) do not
come one after another; the similarity is over lower-cased word 3-gram shingles, which
common words alone do not make similar. When every candidate is that similar, the top
one is served anyway.

Accepting or saving an item writes each of its sentences to the corrections store
exactly as the Correct page does (source ``collection:<name>/<external id>``), in one
transaction with the item's new status, and releases the claim.

**Mark everywhere.** :meth:`ReviewQueue.mark_everywhere` stores a span over every
occurrence of a word sequence (exact and case-sensitive: a curator marking ``AIDS`` must
not mark ``aids``) in the collection's unreviewed and skipped items as a pending mark:
an overlay kept apart from the model's labels, so it survives re-tagging, and applied
when the item is served.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, func, insert, or_, select, update
from sqlalchemy.engine import Row

from curation.collections import (
    DEFAULT_CLAIM_TTL_S,
    FLAGGED,
    REVIEWED,
    SKIPPED,
    TAGGABLE_STATUSES,
    UNREVIEWED,
    Clock,
    PredictedSentence,
    claim_is_free,
    collection_id_in,
    per_100_words,
    sentences_from_json,
)
from curation.corrections import CorrectionsStore, InvalidCorrectionError, NewCorrection
from curation.database import Database, utc_now
from curation.schema import collection_documents_table, collections_table, review_events_table
from tagger.bio import ENTITY_TYPE, repair_bio, token_problem
from tagger.documents import document_text
from tagger.errors import TaggerError

DIVERSITY_WINDOW = 5  # the curator's last items a candidate is compared with
DIVERSITY_CANDIDATES = 50  # how far down the queue the rule looks for a different item
DIVERSITY_THRESHOLD = 0.5  # Jaccard over word 3-gram shingles at which items count as alike
SHINGLE_SIZE = 3
SOURCE_PREFIX = "collection:"
_CLAIM_ATTEMPTS = 3  # rounds of candidates tried when other curators take them first
documents = collection_documents_table
events = review_events_table


class ReviewError(TaggerError, ValueError):
    """A review action that cannot be done as asked; the message names the fix."""


class ReviewConflictError(ReviewError):
    """Another curator holds the item, or it changed since it was served."""


class ItemNotFoundError(ReviewError, LookupError):
    """No item has the id asked for (its collection was deleted?)."""


@dataclass(frozen=True)
class ReviewFilter:
    """Which items of ``collection`` to serve.

    Args:
        collection: the collection's name.
        min_score: only items with at least this many expected word errors.
        max_score: only items with at most this many.
        has_spans: True: only items where the model predicted a span; False: only those
            without one; None: both.
        only_unreviewed: False also offers reviewed and flagged items again, after the rest.
        include_skipped: False never offers skipped items again.
    """

    collection: str
    min_score: float | None = None
    max_score: float | None = None
    has_spans: bool | None = None
    only_unreviewed: bool = True
    include_skipped: bool = True

    def statuses(self) -> tuple[str, ...]:
        """The statuses served, in the order their items come."""
        tiers = [UNREVIEWED]
        if self.include_skipped:
            tiers.append(SKIPPED)
        if not self.only_unreviewed:
            tiers += [REVIEWED, FLAGGED]
        return tuple(tiers)


@dataclass(frozen=True)
class ReviewSentence:
    """One sentence of an item: ``labels`` as served (the model's, pending marks applied,
    or a reviewer's), ``predicted`` the model's own, ``scores`` p(predicted label)."""

    words: tuple[str, ...]
    offsets: tuple[tuple[int, int], ...] | None
    labels: tuple[str, ...]
    predicted: tuple[str, ...]
    scores: tuple[float, ...]


@dataclass(frozen=True)
class ReviewProgress:
    """A collection's review counts, kept in the database."""

    reviewed: int
    skipped: int
    flagged: int
    total: int

    @property
    def unreviewed(self) -> int:
        return self.total - self.reviewed - self.skipped - self.flagged


@dataclass(frozen=True)
class ReviewItem:
    """One document to review, as the model in service (or a reviewer) labelled it.

    ``text`` is what ``offsets`` index (title, blank line, abstract; None for BIO
    documents). ``progress`` places it in its collection (for the progress bar).
    """

    id: int
    collection: str
    external_id: str
    title: str | None
    text: str | None
    sentences: tuple[ReviewSentence, ...]
    model_version: str
    uncertainty: float
    uncertainty_per_100_words: float
    status: str
    reviewer: str | None
    reviewed_at: datetime | None
    flag_note: str | None
    source_file: str
    source_line: int
    progress: ReviewProgress

    @property
    def source(self) -> str:
        """The source of its corrections: ``collection:<name>/<external id>``."""
        return item_source(self.collection, self.external_id)

    @property
    def word_count(self) -> int:
        return sum(len(sentence.words) for sentence in self.sentences)


def item_source(collection: str, external_id: str) -> str:
    """
    >>> item_source("pubmed-1", "12345")
    'collection:pubmed-1/12345'
    """
    return f"{SOURCE_PREFIX}{collection}/{external_id}"


# ---------------------------------------------------------------------------
# Similarity and marks (pure)
# ---------------------------------------------------------------------------


def shingles(words: Sequence[str], size: int = SHINGLE_SIZE) -> frozenset[tuple[str, ...]]:
    """Lower-cased word ``size``-grams (the words themselves for a shorter text).

    >>> sorted(shingles(["Renal", "failure", "in", "rats"]))
    [('failure', 'in', 'rats'), ('renal', 'failure', 'in')]
    """
    lowered = [word.lower() for word in words]
    if len(lowered) < size:
        return frozenset((word,) for word in lowered)
    return frozenset(tuple(lowered[i : i + size]) for i in range(len(lowered) - size + 1))


def jaccard(first: frozenset[Any], second: frozenset[Any]) -> float:
    """
    >>> jaccard(frozenset({1, 2, 3}), frozenset({2, 3, 4}))
    0.5
    """
    if not first and not second:
        return 0.0
    return len(first & second) / len(first | second)


def _occurrences(words: Sequence[str], target: Sequence[str]) -> list[int]:
    n = len(target)
    return [i for i in range(len(words) - n + 1) if tuple(words[i : i + n]) == tuple(target)]


def apply_marks(
    words: Sequence[str], labels: Sequence[str], marks: Sequence[dict[str, Any]]
) -> tuple[str, ...]:
    """Labels with every pending mark (``{"words": [...], "label": "Disease"}``) applied.

    >>> apply_marks(["renal", "failure", "and", "renal", "failure"], ["O"] * 5,
    ...             [{"words": ["renal", "failure"], "label": "Disease"}])
    ('B-Disease', 'I-Disease', 'O', 'B-Disease', 'I-Disease')
    """
    result = list(labels)
    for mark in marks:
        target, label = mark["words"], mark["label"]
        for start in _occurrences(words, target):
            result[start] = f"B-{label}"
            for index in range(start + 1, start + len(target)):
                result[index] = f"I-{label}"
        # An I- right after a mark continued an entity the mark cut: repair_bio restarts it.
    return repair_bio(result)[0]


def _text_pattern(target: Sequence[str]) -> re.Pattern[str]:
    """The words of ``target`` in raw text, with or without whitespace between them."""
    body = r"\s*".join(re.escape(word) for word in target)
    before = r"(?<!\w)" if target[0][:1].isalnum() else ""
    after = r"(?!\w)" if target[-1][-1:].isalnum() else ""
    return re.compile(before + body + after)


# ---------------------------------------------------------------------------
# The queue
# ---------------------------------------------------------------------------


class ReviewQueue:
    """Serve, accept, save, skip, flag and release items; see the module docstring.

    Args:
        database: the curation database.
        corrections: where accepted and saved items go, as the Correct page saves.
        clock: the current UTC time (tests pass a fake one).
        claim_ttl_s: seconds after which a claim lapses and another curator may get the item.
    """

    def __init__(
        self,
        database: Database,
        corrections: CorrectionsStore,
        *,
        clock: Clock = utc_now,
        claim_ttl_s: float = DEFAULT_CLAIM_TTL_S,
    ) -> None:
        self.database = database
        self.corrections = corrections
        self.clock = clock
        self.claim_ttl_s = claim_ttl_s

    # -- serving -------------------------------------------------------------------------

    def next_item(self, curator: str, where: ReviewFilter) -> ReviewItem | None:
        """The curator's held item in ``where.collection``, else a newly claimed one;
        None when no item matches."""
        curator = _check_curator(curator)
        for _ in range(_CLAIM_ATTEMPTS):
            now = self.clock()
            with self.database.read() as connection:
                collection_id = collection_id_in(connection, where.collection)
                held = self._held(connection, collection_id, curator, now)
                candidates = (
                    []
                    if held is not None
                    else self._candidates(connection, collection_id, curator, where, now)
                )
            if held is not None:
                if self._matches(held, where):
                    self._refresh_claim(held.id, curator, now)
                    return self.item(held.id)
                self.release(held.id, curator)
                continue
            if not candidates:
                return None
            for candidate in candidates:
                if self._claim(candidate, collection_id, curator, now, where.statuses()):
                    return self.item(candidate)
        return None

    def _eligible(self, where: ReviewFilter) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = [documents.c.sentences.is_not(None)]
        if where.min_score is not None:
            conditions.append(documents.c.uncertainty >= where.min_score)
        if where.max_score is not None:
            conditions.append(documents.c.uncertainty <= where.max_score)
        if where.has_spans is not None:
            conditions.append(documents.c.has_spans == where.has_spans)
        return conditions

    def _held(
        self, connection: Connection, collection_id: int, curator: str, now: datetime
    ) -> Row[Any] | None:
        fresh = documents.c.claimed_at >= now - timedelta(seconds=self.claim_ttl_s)
        return connection.execute(
            select(documents)
            .where(
                documents.c.collection_id == collection_id,
                documents.c.claimed_by == curator,
                fresh,
            )
            .order_by(documents.c.claimed_at.desc())
            .limit(1)
        ).first()

    def _matches(self, row: Row[Any], where: ReviewFilter) -> bool:
        if row.status not in where.statuses() or row.sentences is None:
            return False
        score = row.uncertainty or 0.0
        if where.min_score is not None and score < where.min_score:
            return False
        if where.max_score is not None and score > where.max_score:
            return False
        return where.has_spans is None or bool(row.has_spans) == where.has_spans

    def _candidates(
        self,
        connection: Connection,
        collection_id: int,
        curator: str,
        where: ReviewFilter,
        now: datetime,
    ) -> list[int]:
        """Ids to try to claim, in order: the top of the first status tier with any item,
        diverse ones first (the diversity rule)."""
        free = or_(claim_is_free(now, self.claim_ttl_s), documents.c.claimed_by == curator)
        for status in where.statuses():
            rows = connection.execute(
                select(documents.c.id, documents.c.sentences)
                .where(
                    documents.c.collection_id == collection_id,
                    documents.c.status == status,
                    free,
                    *self._eligible(where),
                )
                .order_by(documents.c.uncertainty.desc(), documents.c.id)
                .limit(DIVERSITY_CANDIDATES)
            ).all()
            if rows:
                recent = self._recent_shingles(connection, collection_id, curator)
                return _diverse_first(
                    [(row.id, _document_shingles(row.sentences)) for row in rows], recent
                )
        return []

    def _recent_shingles(
        self, connection: Connection, collection_id: int, curator: str
    ) -> list[frozenset[tuple[str, ...]]]:
        ids = connection.execute(
            select(events.c.document_id)
            .where(events.c.collection_id == collection_id, events.c.curator == curator)
            .order_by(events.c.id.desc())
            .limit(DIVERSITY_WINDOW * 4)
        ).scalars()
        recent = list(dict.fromkeys(ids))[:DIVERSITY_WINDOW]
        if not recent:
            return []
        rows = connection.execute(
            select(documents.c.sentences).where(documents.c.id.in_(recent))
        ).scalars()
        return [_document_shingles(payload) for payload in rows]

    def _claim(
        self,
        document_id: int,
        collection_id: int,
        curator: str,
        now: datetime,
        statuses: Sequence[str],
    ) -> bool:
        """Claim one item if nobody holds it and it is still in one of ``statuses``;
        True when this curator now holds it."""
        with self.database.write() as connection:
            claimed = connection.execute(
                update(documents)
                .where(
                    documents.c.id == document_id,
                    documents.c.status.in_(statuses),
                    claim_is_free(now, self.claim_ttl_s),
                )
                .values(claimed_by=curator, claimed_at=now)
            ).rowcount
            if claimed != 1:
                return False
            # One item per curator and collection: an older claim of theirs lapses now.
            connection.execute(
                update(documents)
                .where(
                    documents.c.collection_id == collection_id,
                    documents.c.claimed_by == curator,
                    documents.c.id != document_id,
                )
                .values(claimed_by=None, claimed_at=None)
            )
            self._event(connection, document_id, collection_id, curator, "served", now)
        return True

    def _refresh_claim(self, document_id: int, curator: str, now: datetime) -> None:
        with self.database.write() as connection:
            connection.execute(
                update(documents)
                .where(documents.c.id == document_id, documents.c.claimed_by == curator)
                .values(claimed_at=now)
            )

    @staticmethod
    def _event(
        connection: Connection,
        document_id: int,
        collection_id: int,
        curator: str,
        action: str,
        now: datetime,
    ) -> None:
        connection.execute(
            insert(events).values(
                document_id=document_id,
                collection_id=collection_id,
                curator=curator,
                action=action,
                at=now,
            )
        )

    # -- reading items --------------------------------------------------------------------

    def item(self, item_id: int) -> ReviewItem:
        """One item as it would be served now; :class:`ItemNotFoundError` if it is gone."""
        with self.database.read() as connection:
            row = self._row(connection, item_id)
            progress = self._progress(connection, row.collection_id)
        return _to_item(row, progress)

    @staticmethod
    def _row(connection: Connection, item_id: int) -> Row[Any]:
        row = connection.execute(
            select(documents, collections_table.c.name.label("collection_name"))
            .join(collections_table)
            .where(documents.c.id == item_id)
        ).first()
        if row is None:
            raise ItemNotFoundError(
                f"there is no review item {item_id}; its collection may have been deleted",
                fix="reload the Review page",
            )
        return row

    def reviewed_items(self, collection: str) -> list[ReviewItem]:
        """The collection's reviewed items with the labels their reviewers stored, in
        the order they were imported (for exports)."""
        with self.database.read() as connection:
            collection_id = collection_id_in(connection, collection)
            progress = self._progress(connection, collection_id)
            rows = connection.execute(
                select(documents, collections_table.c.name.label("collection_name"))
                .join(collections_table)
                .where(documents.c.collection_id == collection_id, documents.c.status == REVIEWED)
                .order_by(documents.c.id)
            ).all()
        return [_to_item(row, progress) for row in rows]

    def progress(self, collection: str) -> ReviewProgress:
        """How many of the collection's items are reviewed, skipped, flagged, in all."""
        with self.database.read() as connection:
            return self._progress(connection, collection_id_in(connection, collection))

    @staticmethod
    def _progress(connection: Connection, collection_id: int) -> ReviewProgress:
        def count(status: str) -> Any:
            return func.sum(case((documents.c.status == status, 1), else_=0))

        row = connection.execute(
            select(count(REVIEWED), count(SKIPPED), count(FLAGGED), func.count()).where(
                documents.c.collection_id == collection_id
            )
        ).one()
        return ReviewProgress(*(int(value or 0) for value in row))

    # -- what the curator did ----------------------------------------------------------------

    def accept(self, item_id: int, curator: str) -> ReviewItem:
        """The labels as served become the curator's corrections; the item is reviewed."""
        curator = _check_curator(curator)
        item = self.item(item_id)
        return self._store_review(item, curator, [s.labels for s in item.sentences], "accepted")

    def save(self, item_id: int, curator: str, labels: Sequence[Sequence[str]]) -> ReviewItem:
        """The curator's labels (one sequence per sentence) become corrections; the item
        is reviewed. Wrong lengths and unknown labels are refused, naming the sentence."""
        curator = _check_curator(curator)
        item = self.item(item_id)
        checked = self._check_labels(item, labels)
        return self._store_review(item, curator, checked, "saved")

    def _check_labels(
        self, item: ReviewItem, labels: Sequence[Sequence[str]]
    ) -> list[tuple[str, ...]]:
        where = f"item {item.collection}/{item.external_id}"
        if isinstance(labels, str) or len(labels) != len(item.sentences):
            raise ReviewError(
                f"{len(labels)} label sequences were given for {len(item.sentences)} sentences",
                where=where,
                fix="give one list of labels per sentence of the item",
            )
        checked: list[tuple[str, ...]] = []
        for number, (sentence, given) in enumerate(zip(item.sentences, labels, strict=True), 1):
            sentence_where = f"{where}, sentence {number}"
            if isinstance(given, str) or len(given) != len(sentence.words):
                raise ReviewError(
                    f"{len(given)} labels were given for {len(sentence.words)} words",
                    where=sentence_where,
                    fix="give one label per word",
                )
            try:
                checked.append(self.corrections.prepare_labels(given)[0])
            except InvalidCorrectionError as error:
                raise ReviewError(
                    str(error).rstrip("."), where=sentence_where, fix="use the labels offered"
                ) from None
        return checked

    def _store_review(
        self,
        item: ReviewItem,
        curator: str,
        labels: Sequence[Sequence[str]],
        action: str,
    ) -> ReviewItem:
        now = self.clock()
        corrections = [
            NewCorrection(
                words=sentence.words,
                labels=sentence_labels,
                predicted=sentence.predicted,
                source=item.source,
                sentence_index=index,
                model_version=item.model_version,
                annotator=curator,
            )
            for index, (sentence, sentence_labels) in enumerate(
                zip(item.sentences, labels, strict=True)
            )
        ]
        stored_labels = json.dumps([list(repair_bio(list(s))[0]) for s in labels])

        def mark_reviewed(connection: Connection) -> None:
            self._finish(
                connection,
                item,
                curator,
                action,
                now,
                status=REVIEWED,
                reviewed_labels=stored_labels,
                pending_marks=None,
            )

        self.corrections.save_many(corrections, within=mark_reviewed)
        return self.item(item.id)

    def _finish(
        self,
        connection: Connection,
        item: ReviewItem,
        curator: str,
        action: str,
        now: datetime,
        **values: Any,
    ) -> None:
        """Set the item's status (and release its claim) unless another curator holds it
        or it was re-tagged since it was served; either refuses and rolls back."""
        mine_or_free = or_(claim_is_free(now, self.claim_ttl_s), documents.c.claimed_by == curator)
        changed = connection.execute(
            update(documents)
            .where(
                documents.c.id == item.id,
                mine_or_free,
                documents.c.model_version == item.model_version,
            )
            .values(reviewer=curator, reviewed_at=now, claimed_by=None, claimed_at=None, **values)
        ).rowcount
        if changed != 1:
            raise ReviewConflictError(
                f"item {item.collection}/{item.external_id} is held by another curator or "
                "was tagged again since it was shown; nothing was stored",
                fix="reload the Review page to get the item as it is now",
            )
        collection_id = connection.execute(
            select(documents.c.collection_id).where(documents.c.id == item.id)
        ).scalar_one()
        self._event(connection, item.id, collection_id, curator, action, now)

    def skip(self, item_id: int, curator: str) -> ReviewItem:
        """Put the item after every unreviewed one; release the claim."""
        return self._set_status(item_id, curator, "skipped", status=SKIPPED)

    def flag(self, item_id: int, curator: str, note: str = "") -> ReviewItem:
        """Set the item aside for a second look, with a note; release the claim."""
        clean = (note or "").strip() or None
        return self._set_status(item_id, curator, "flagged", status=FLAGGED, flag_note=clean)

    def _set_status(self, item_id: int, curator: str, action: str, **values: Any) -> ReviewItem:
        curator = _check_curator(curator)
        item = self.item(item_id)
        now = self.clock()
        with self.database.write() as connection:
            self._finish(connection, item, curator, action, now, **values)
        return self.item(item_id)

    def release(self, item_id: int, curator: str) -> bool:
        """Give the item back to the queue; False when the curator did not hold it."""
        curator = _check_curator(curator)
        now = self.clock()
        with self.database.write() as connection:
            released = connection.execute(
                update(documents)
                .where(documents.c.id == item_id, documents.c.claimed_by == curator)
                .values(claimed_by=None, claimed_at=None)
            ).rowcount
            if released:
                collection_id = connection.execute(
                    select(documents.c.collection_id).where(documents.c.id == item_id)
                ).scalar_one()
                self._event(connection, item_id, collection_id, curator, "released", now)
        return bool(released)

    # -- mark everywhere -------------------------------------------------------------------

    def mark_everywhere(
        self,
        collection: str,
        words: Sequence[str],
        label: str = ENTITY_TYPE,
        *,
        exclude_item: int | None = None,
    ) -> int:
        """Mark ``words`` as a ``label`` span wherever they occur (exact, case-sensitive)
        in the collection's unreviewed and skipped items; returns how many items changed."""
        target = self._check_mark(words, label)
        mark = {"words": list(target), "label": label}
        pattern = _text_pattern(target)
        changed = 0
        with self.database.write() as connection:
            collection_id = collection_id_in(connection, collection)
            for row in self._mark_candidates(connection, collection_id, target, exclude_item):
                marks = json.loads(row.pending_marks) if row.pending_marks else []
                if mark in marks or not _contains(row, target, pattern):
                    continue
                connection.execute(
                    update(documents)
                    .where(documents.c.id == row.id)
                    .values(pending_marks=json.dumps([*marks, mark], ensure_ascii=False))
                )
                changed += 1
        return changed

    def _check_mark(self, words: Sequence[str], label: str) -> tuple[str, ...]:
        if isinstance(words, str) or not words:
            raise ReviewError(
                "no words to mark", where="Mark everywhere", fix="select the words of a mention"
            )
        for number, word in enumerate(words, start=1):
            problem = token_problem(word) if isinstance(word, str) else "is not text"
            if problem is not None:
                raise ReviewError(
                    f"word {number} {word!r} {problem}",
                    where="Mark everywhere",
                    fix="select whole words of the text",
                )
        if f"B-{label}" not in self.corrections.allowed_labels:
            types = sorted(x[2:] for x in self.corrections.allowed_labels if x != "O")
            raise ReviewError(
                f"{label!r} is not an entity type",
                where="Mark everywhere",
                fix=f"use one of {', '.join(sorted(set(types)))}",
            )
        return tuple(words)

    @staticmethod
    def _mark_candidates(
        connection: Connection,
        collection_id: int,
        target: Sequence[str],
        exclude_item: int | None,
    ) -> list[Row[Any]]:
        # A cheap prefilter in SQL: every candidate holds the first word somewhere.
        first = target[0]
        holds_first = or_(
            documents.c.sentences.contains(first, autoescape=True),
            documents.c.words.contains(first, autoescape=True),
            documents.c.text.contains(first, autoescape=True),
            documents.c.title.contains(first, autoescape=True),
        )
        conditions: list[ColumnElement[bool]] = [
            documents.c.collection_id == collection_id,
            documents.c.status.in_(TAGGABLE_STATUSES),
            holds_first,
        ]
        if exclude_item is not None:
            conditions.append(documents.c.id != exclude_item)
        return list(
            connection.execute(
                select(
                    documents.c.id,
                    documents.c.sentences,
                    documents.c.words,
                    documents.c.title,
                    documents.c.text,
                    documents.c.pending_marks,
                ).where(and_(*conditions))
            ).all()
        )


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _check_curator(curator: str) -> str:
    clean = curator.strip() if isinstance(curator, str) else ""
    if not clean:
        raise ReviewError(
            "no curator is named", where="Annotator", fix="enter your name as Annotator"
        )
    return clean


def _document_shingles(payload: str | None) -> frozenset[tuple[str, ...]]:
    words = [word for sentence in sentences_from_json(payload) for word in sentence.words]
    return shingles(words)


def _diverse_first(
    candidates: Sequence[tuple[int, frozenset[tuple[str, ...]]]],
    recent: Sequence[frozenset[tuple[str, ...]]],
) -> list[int]:
    """Candidate ids, those unlike every recent item first (each group in queue order).

    >>> a, b = frozenset({("x",)}), frozenset({("y",)})
    >>> _diverse_first([(1, a), (2, b)], [a])
    [2, 1]
    """
    diverse, alike = [], []
    for document_id, document_shingles in candidates:
        similar = any(jaccard(document_shingles, seen) >= DIVERSITY_THRESHOLD for seen in recent)
        (alike if similar else diverse).append(document_id)
    return diverse + alike


def _contains(row: Row[Any], target: Sequence[str], pattern: re.Pattern[str]) -> bool:
    """Whether a document holds the words: in its tagged or BIO words, or, not tagged
    yet, in its raw text."""
    if row.sentences:
        sentences = [s.words for s in sentences_from_json(row.sentences)]
    elif row.words:
        sentences = [tuple(words) for words in json.loads(row.words)]
    else:
        text = document_text(row.title, row.text) or ""
        return pattern.search(text) is not None
    return any(_occurrences(words, target) for words in sentences)


def _to_item(row: Row[Any], progress: ReviewProgress) -> ReviewItem:
    predicted = sentences_from_json(row.sentences)
    marks = json.loads(row.pending_marks) if row.pending_marks else []
    reviewed = json.loads(row.reviewed_labels) if row.reviewed_labels else None
    sentences = tuple(
        _review_sentence(sentence, marks, None if reviewed is None else reviewed[index])
        for index, sentence in enumerate(predicted)
    )
    uncertainty = float(row.uncertainty or 0.0)
    words = sum(len(sentence.words) for sentence in sentences)
    return ReviewItem(
        id=row.id,
        collection=row.collection_name,
        external_id=row.external_id,
        title=row.title,
        text=document_text(row.title, row.text),
        sentences=sentences,
        model_version=row.model_version or "",
        uncertainty=uncertainty,
        uncertainty_per_100_words=per_100_words(uncertainty, words),
        status=row.status,
        reviewer=row.reviewer,
        reviewed_at=row.reviewed_at,
        flag_note=row.flag_note,
        source_file=row.source_file,
        source_line=row.source_line,
        progress=progress,
    )


def _review_sentence(
    sentence: PredictedSentence, marks: Sequence[dict[str, Any]], reviewed: list[str] | None
) -> ReviewSentence:
    labels = (
        tuple(reviewed)
        if reviewed is not None
        else apply_marks(sentence.words, sentence.labels, marks)
    )
    return ReviewSentence(
        sentence.words, sentence.offsets, labels, sentence.labels, sentence.scores
    )
