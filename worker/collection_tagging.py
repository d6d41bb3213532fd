"""Tag the documents of every collection with the model in service, a batch at a time.

The worker's poll loop calls :meth:`CollectionTagger.step_safely` whenever it found no
training job to run: a **step in the loop rather than a thread**, because

- tagging then never competes with training for the CPU cores (on the one-machine
  installation both would run on the same few cores and each would slow the other)
  nor for a GPU's memory (the loop unloads the tagger before it runs a job);
- Keras is never asked to predict in one thread while it trains in another;
- a step tags up to :data:`BATCH_SIZE` documents and :data:`STEP_WORDS` words in one
  tagger call (one per kind: texts, BIO), a few seconds on a CPU (see there), so a job
  queued meanwhile waits at most that long.

The cost: while a job trains, new collections wait for it to finish.

Each step tags up to :data:`BATCH_SIZE` documents that the version in service has not
tagged (:meth:`curation.collections.CollectionStore.documents_to_tag`: never-tagged
ones first, then those an earlier version tagged, so unreviewed documents are re-tagged
after a promotion; reviewed, flagged and claimed ones are left alone). The tagger is
(re)loaded when the registry's version in service changes.

A document's title and abstract are tagged as **separate passages**: context never
crosses from the title into the abstract, so a title's labels do not depend on the
abstract, as for a text pasted on the Tag page; the offsets of both index the
document's text (title, blank line, abstract). BIO documents are tagged from their
words, each document its own context (``Tagger.tag_words(..., documents=...)``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from curation.collections import (
    CollectionStore,
    DocumentToTag,
    PredictedSentence,
)
from curation.registry import Registry
from tagger.documents import TITLE_SEPARATOR

if TYPE_CHECKING:
    from tagger.spans import TaggedSentence
    from tagger.tagger import Tagger

# Documents per step, at most. A step is one tagger call per kind of document, and the
# tagger runs the windows of a call in batches of 64 sorted by length, so a step should
# hand it many: a 10-sentence BC5CDR document is about 260 words and 5.4 packed windows
# (benchmarks/app_paths.py on the test set), so 128 of them make some 700 windows, 11
# batches with only the last one part full, where 32 made 3 (174 windows, the last batch
# three quarters full) and 4 times the calls. It stays short: 128 such documents are
# about 33,000 words, some 4.6 s at the 7,280 words/s BENCHMARKS.md measured on 2 CPU
# cores, and a training job queued meanwhile waits at most one step.
BATCH_SIZE = 128
# Words per step, at most (the first document always goes, however long): documents vary,
# and what bounds a queued job's wait is the words tagged, not the documents. 40,000 lets
# 128 typical documents through and keeps a step near 5.5 s at that speed.
STEP_WORDS = 40_000
logger = logging.getLogger("worker")
Tagged = tuple[int, list[PredictedSentence]]


def load_serving_tagger(folder: Path) -> Tagger:
    """The tagger as the app serves it (ONNX Runtime on a CPU, Keras on a GPU)."""
    from tagger.tagger import Tagger

    return Tagger.load(folder)


def _shifted(sentence: TaggedSentence, shift: int) -> PredictedSentence:
    offsets = tuple((start + shift, end + shift) for start, end in sentence.offsets)
    return PredictedSentence(sentence.words, offsets, sentence.labels, sentence.scores)


def tag_texts(tagger: Tagger, documents: Sequence[DocumentToTag]) -> list[Tagged]:
    """Title and text of each document as separate passages, in one batched pass."""
    passages: list[str] = []
    shifts: list[list[int]] = []
    for document in documents:
        text = document.text or ""
        if document.title:
            passages += [document.title, text]
            shifts.append([0, len(document.title) + len(TITLE_SEPARATOR)])
        else:
            passages.append(text)
            shifts.append([0])
    analyzed = iter(tagger.analyze_many(passages))
    tagged: list[Tagged] = []
    for document, document_shifts in zip(documents, shifts, strict=True):
        sentences = [
            _shifted(sentence, shift) for shift in document_shifts for sentence in next(analyzed)
        ]
        tagged.append((document.id, sentences))
    return tagged


def tag_bio(tagger: Tagger, documents: Sequence[DocumentToTag]) -> list[Tagged]:
    """Pre-split words of each document, each document its own context."""
    groups = [document.words or () for document in documents]
    flat = [words for group in groups for words in group]
    predictions = iter(tagger.tag_words(flat, documents=[len(group) for group in groups]))
    tagged: list[Tagged] = []
    for document, group in zip(documents, groups, strict=True):
        sentences = []
        for words in group:
            labels, scores = next(predictions)
            sentences.append(PredictedSentence(words, None, labels, scores))
        tagged.append((document.id, sentences))
    return tagged


def tag_documents(tagger: Tagger, documents: Sequence[DocumentToTag]) -> list[Tagged]:
    """Predicted sentences of every document (text ones and BIO ones), in its order.

    All text documents go to the tagger in one call and all BIO ones in another, each
    document its own context, so the labels do not depend on how documents are grouped.
    """
    texts = [document for document in documents if document.words is None]
    bio = [document for document in documents if document.words is not None]
    tagged = (tag_texts(tagger, texts) if texts else []) + (tag_bio(tagger, bio) if bio else [])
    by_id = dict(tagged)
    return [(document.id, by_id[document.id]) for document in documents]


def word_estimate(document: DocumentToTag) -> int:
    """Words of a BIO document; a text's whitespace-separated tokens (a little under the
    words the tagger splits it into, which separates punctuation)."""
    if document.words is not None:
        return sum(len(sentence) for sentence in document.words)
    return len((document.title or "").split()) + len((document.text or "").split())


def within_words(documents: Sequence[DocumentToTag], budget: int) -> list[DocumentToTag]:
    """The first documents whose words add up to at most ``budget``; at least one.

    >>> docs = [DocumentToTag(i, None, "word " * n, None) for i, n in enumerate([3, 4, 5])]
    >>> [d.id for d in within_words(docs, 7)], [d.id for d in within_words(docs, 2)]
    ([0, 1], [0])
    """
    taken: list[DocumentToTag] = []
    words = 0
    for document in documents:
        words += word_estimate(document)
        if taken and words > budget:
            break
        taken.append(document)
    return taken


class CollectionTagger:
    """Keeps every collection tagged by the version in service; see the module docstring.

    Args:
        collections: the store of the collections' documents.
        registry: where the version in service and its folder are found.
        batch_size: documents tagged per step, at most.
        step_words: words tagged per step, at most (a longer first document goes alone).
        load_tagger: loads a model folder (tests pass a cheaper runtime).
    """

    def __init__(
        self,
        collections: CollectionStore,
        registry: Registry,
        *,
        batch_size: int = BATCH_SIZE,
        step_words: int = STEP_WORDS,
        load_tagger: Callable[[Path], Tagger] = load_serving_tagger,
    ) -> None:
        self.collections = collections
        self.registry = registry
        self.batch_size = batch_size
        self.step_words = step_words
        self.load_tagger = load_tagger
        self._loaded: tuple[str, Tagger] | None = None
        self._refused: str | None = None  # a version that failed to load: logged once

    @property
    def loaded_version(self) -> str | None:
        return None if self._loaded is None else self._loaded[0]

    def unload(self) -> None:
        """Drop the tagger (before a training job, which wants the memory)."""
        self._loaded = None

    def _tagger_for(self, version: str) -> Tagger:
        if self._loaded is None or self._loaded[0] != version:
            self._loaded = None
            folder = self.registry.verify(version).folder
            self._loaded = (version, self.load_tagger(folder))
            logger.info("collections: tagging with version %s", version)
        return self._loaded[1]

    def step(self) -> int:
        """Tag one batch with the version in service; how many documents were stored."""
        version = self.registry.serving_version()
        if version is None:
            return 0
        pending = within_words(
            self.collections.documents_to_tag(version, self.batch_size), self.step_words
        )
        if not pending:
            return 0
        tagger = self._tagger_for(version)
        try:
            tagged = tag_documents(tagger, pending)
        except Exception:
            logger.warning("collections: a batch failed; tagging its documents one by one")
            return self._one_by_one(tagger, version, pending)
        return self.collections.store_tags_many(version, tagged)

    def _one_by_one(self, tagger: Tagger, version: str, pending: Sequence[DocumentToTag]) -> int:
        """Find the document that fails; it is marked, so the next steps pass it by."""
        stored = 0
        for document in pending:
            try:
                tagged = tag_documents(tagger, [document])
            except Exception as error:
                logger.exception("collections: document %d cannot be tagged", document.id)
                self.collections.record_tag_failure(
                    document.id, version, f"{type(error).__name__}: {error}"
                )
                continue
            stored += self.collections.store_tags_many(version, tagged)
        return stored

    def step_safely(self) -> int:
        """:meth:`step` for the poll loop: a failure is logged (once per version) and
        counts as nothing tagged, so the worker keeps claiming jobs."""
        try:
            stored = self.step()
        except Exception:
            version = self.registry.serving_version()
            if version != self._refused:
                logger.exception("collections: cannot tag with version %s", version)
                self._refused = version
            return 0
        self._refused = None
        return stored
