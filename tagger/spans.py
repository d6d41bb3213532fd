"""What tagging returns: spans with character offsets, and tagged sentences.

Plain dataclasses with no Keras import, so the app and its test fakes can use them cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass


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
