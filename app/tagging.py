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
    """The whole text in one tagger call (``Tagger.analyze``: its sentences share batches
    and context), with its spans, as the Tag page shows it.

    Args:
        tagger: the model in service.
        text: the cleaned text (``app.inputs.clean_text``).
        source: the corrections' source name of the text (``curation.text_source``).
        notes: what cleaning the text changed, shown above the result.
    """
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
    """Every sentence of an uploaded file in one tagger call, compared with its labels.

    One ``Tagger.tag_words`` call over all sentences, as the library path is benchmarked
    (``benchmarks/app_paths.py``): the tagger sorts and batches the windows of the whole
    file, and ``progress`` is called once per batch, ``(batches done, batches)``.

    Args:
        tagger: the model in service.
        sentences: the file's sentences with its own labels.
        file_name: the upload's name, shown with the scores.
        digest: :func:`file_digest` of its bytes; the page reuses a result by it.
        progress: called after each batch; None for none.
        notes: what reading the file repaired, shown above the scores.
    """
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
