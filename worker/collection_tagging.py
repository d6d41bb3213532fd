"""Tag the documents of every collection with the model in service, a batch at a time.

The worker's poll loop calls :meth:`CollectionTagger.step_safely` whenever it found no
training job to run: a **step in the loop rather than a thread**, because

- tagging then never competes with training for the CPU cores (on the one-machine
  installation both would run on the same few cores and each would slow the other)
  nor for a GPU's memory (the loop unloads the tagger before it runs a job);
- Keras is never asked to predict in one thread while it trains in another;
- a step is one batch (:data:`BATCH_SIZE` documents, a few seconds on a CPU), so a job
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
    TITLE_SEPARATOR,
    CollectionStore,
    DocumentToTag,
    PredictedSentence,
)
from curation.registry import Registry

if TYPE_CHECKING:
    from tagger.spans import TaggedSentence
    from tagger.tagger import Tagger

BATCH_SIZE = 32
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
    """Predicted sentences of every document (text ones and BIO ones), in its order."""
    texts = [document for document in documents if document.words is None]
    bio = [document for document in documents if document.words is not None]
    by_id = dict(tag_texts(tagger, texts) + tag_bio(tagger, bio))
    return [(document.id, by_id[document.id]) for document in documents]


class CollectionTagger:
    """Keeps every collection tagged by the version in service; see the module docstring.

    Args:
        collections: the store of the collections' documents.
        registry: where the version in service and its folder are found.
        batch_size: documents tagged per step.
        load_tagger: loads a model folder (tests pass a cheaper runtime).
    """

    def __init__(
        self,
        collections: CollectionStore,
        registry: Registry,
        *,
        batch_size: int = BATCH_SIZE,
        load_tagger: Callable[[Path], Tagger] = load_serving_tagger,
    ) -> None:
        self.collections = collections
        self.registry = registry
        self.batch_size = batch_size
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
        pending = self.collections.documents_to_tag(version, self.batch_size)
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
