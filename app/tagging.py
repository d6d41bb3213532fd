"""Calls into the model for the pages: tag a pasted text, tag an uploaded file.

Both return the frozen results the pages keep in session state, so a rerun (a click
on a filter, say) never tags again.

Example::

    result = tag_text(tagger, "Cocaine-induced seizures.", source=text_source(text))
    [(span.text, round(span.score, 2)) for span in result.spans]
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import TYPE_CHECKING

from app.evaluation import compare
from app.state import CorrectionTarget, InspectResult, TagResult
from tagger.bio import Sentence
from tagger.spans import spans_of

if TYPE_CHECKING:
    from tagger import Tagger

Progress = Callable[[int, int], None]


def tag_text(tagger: Tagger, text: str, *, source: str, notes: Sequence[str] = ()) -> TagResult:
    started = perf_counter()
    sentences = tuple(tagger.analyze(text))
    return TagResult(
        text=text,
        source=source,
        sentences=sentences,
        spans=tuple(spans_of(text, sentences)),
        model_version=tagger.version,
        device=tagger.device,
        seconds=perf_counter() - started,
        notes=tuple(notes),
    )


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tag_file(
    tagger: Tagger,
    sentences: Sequence[Sentence],
    *,
    file_name: str,
    digest: str,
    progress: Progress | None = None,
    notes: Sequence[str] = (),
) -> InspectResult:
    started = perf_counter()
    predictions = tagger.tag_words([s.words for s in sentences], progress=progress)
    predicted = tuple(tuple(labels) for labels, _ in predictions)
    return InspectResult(
        file_name=file_name,
        digest=digest,
        gold=tuple(sentences),
        predicted=predicted,
        scores=tuple(tuple(scores) for _, scores in predictions),
        comparison=compare(sentences, predicted),
        model_version=tagger.version,
        device=tagger.device,
        seconds=perf_counter() - started,
        notes=tuple(notes),
    )


def target_from_text(result: TagResult, index: int) -> CorrectionTarget:
    sentence = result.sentences[index]
    return CorrectionTarget(
        words=tuple(sentence.words),
        predicted=tuple(sentence.labels),
        scores=tuple(sentence.scores),
        source=result.source,
        sentence_index=index,
        origin="pasted text",
        model_version=result.model_version,
    )


def target_from_file(result: InspectResult, index: int, source: str) -> CorrectionTarget:
    return CorrectionTarget(
        words=result.gold[index].words,
        predicted=result.predicted[index],
        scores=result.scores[index],
        source=source,
        sentence_index=index,
        origin=result.file_name,
        model_version=result.model_version,
        file_labels=result.gold[index].labels,
    )
