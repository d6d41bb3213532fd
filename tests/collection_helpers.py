"""Helpers for the collection, review and export tests: a version in service without a
model folder, and a stand-in tagger that labels words without a model."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, update

from curation.collections import (
    CollectionStore,
    DocumentToTag,
    PredictedSentence,
)
from curation.database import Database
from curation.schema import model_versions_table, serving_table
from tagger.documents import document_text

START = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
DISEASE_WORDS = frozenset({"fever", "failure", "renal", "seizures", "hepatitis"})


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def serve_version(database: Database, version: str) -> None:
    """Register ``version`` (a row only, no folder) and put it in service."""
    with database.write() as connection:
        connection.execute(
            insert(model_versions_table).values(
                version=version,
                parent=None,
                created_at=START,
                folder=f"versions/{version}",
                job_id=None,
                decision="promoted",
                note="test",
                metrics={},
                summary={},
                encoder_source="test",
            )
        )
        changed = connection.execute(
            update(serving_table).where(serving_table.c.slot == 1).values(version=version)
        ).rowcount
        if not changed:
            connection.execute(
                insert(serving_table).values(slot=1, version=version, changed_at=START, reason="t")
            )


def fake_sentences(
    document: DocumentToTag, score: Callable[[str], float] = lambda _word: 0.9
) -> list[PredictedSentence]:
    """Words and punctuation marks (a sentence ends at "."), disease words B-Disease."""
    if document.words is not None:
        return [_labelled(words, None, score) for words in document.words]
    text = document_text(document.title, document.text) or ""
    sentences: list[PredictedSentence] = []
    words: list[str] = []
    offsets: list[tuple[int, int]] = []
    for match in re.finditer(r"\w+|[^\w\s]", text):
        words.append(match.group())
        offsets.append((match.start(), match.end()))
        if match.group() == ".":
            sentences.append(_labelled(words, offsets, score))
            words, offsets = [], []
    if words:
        sentences.append(_labelled(words, offsets, score))
    return sentences


def _labelled(
    words: Sequence[str],
    offsets: Sequence[tuple[int, int]] | None,
    score: Callable[[str], float],
) -> PredictedSentence:
    labels = tuple("B-Disease" if word.lower() in DISEASE_WORDS else "O" for word in words)
    return PredictedSentence(
        tuple(words),
        None if offsets is None else tuple(offsets),
        labels,
        tuple(score(word) for word in words),
    )


def tag_everything(
    store: CollectionStore,
    version: str,
    score: Callable[[str], float] = lambda _word: 0.9,
) -> int:
    """Tag every pending document with :func:`fake_sentences`, as the worker would."""
    stored = 0
    while batch := store.documents_to_tag(version, 100):
        stored += store.store_tags_many(
            version, [(document.id, fake_sentences(document, score)) for document in batch]
        )
        if stored == 0:
            break
    return stored


def jsonl(records: Sequence[dict[str, object]]) -> bytes:
    import json

    return "".join(json.dumps(record) + "\n" for record in records).encode("utf-8")
