"""What tagging returns: spans with character offsets, and tagged sentences.

Plain dataclasses with no Keras import, so the app and its test fakes can use them cheaply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tagger.decoding import spans_from_labels


@dataclass(frozen=True)
class Span:
    """An entity mention: `text == original[start:end]`; `score` in [0, 1]."""

    start: int
    end: int
    text: str
    label: str
    score: float
    sentence: int


@dataclass(frozen=True)
class TaggedSentence:
    """One sentence of a tagged text: words, their offsets, IOB2 labels and confidences."""

    words: tuple[str, ...]
    offsets: tuple[tuple[int, int], ...]
    start: int
    end: int
    labels: tuple[str, ...]
    scores: tuple[float, ...]


def spans_of(text: str, sentences: Sequence[TaggedSentence]) -> list[Span]:
    """Character spans of the entities in tagged sentences of `text`."""
    spans: list[Span] = []
    for index, sentence in enumerate(sentences):
        for word_span in spans_from_labels(sentence.labels, sentence.scores):
            start = sentence.offsets[word_span.start][0]
            end = sentence.offsets[word_span.end - 1][1]
            spans.append(Span(start, end, text[start:end], word_span.label, word_span.score, index))
    return spans
