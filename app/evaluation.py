"""A BIO file's own labels against the model's: exact-match entity scores and errors.

An entity counts as found only when the model marks exactly the same words with the
same type (the CoNLL convention, as seqeval computes it for IOB2).

Example:

>>> from tagger.bio import Sentence
>>> gold = [Sentence(["Heart", "failure", "."], ["B-Disease", "I-Disease", "O"])]
>>> result = compare(gold, [("B-Disease", "O", "O")])
>>> round(result.f1, 2), [m.text for m in result.false_positives]
(0.0, ['Heart'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tagger.bio import Sentence, entity_spans


@dataclass(frozen=True)
class Mention:
    """Words ``[start, end)`` of sentence ``sentence`` (0-based) form one entity."""

    sentence: int
    start: int
    end: int
    label: str
    text: str


@dataclass(frozen=True)
class Comparison:
    """Scores of the model against the file, and where they disagree."""

    true_positives: int
    false_positives: tuple[Mention, ...]
    false_negatives: tuple[Mention, ...]
    disagreeing: tuple[int, ...]  # sentence indexes, ascending
    gold_count: int
    predicted_count: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.predicted_count if self.predicted_count else 0.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.gold_count if self.gold_count else 0.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def _mentions(index: int, words: Sequence[str], labels: Sequence[str]) -> set[Mention]:
    return {
        Mention(index, start, end, label, " ".join(words[start:end]))
        for start, end, label in entity_spans(labels)
    }


def _position(mention: Mention) -> tuple[int, int]:
    return mention.start, mention.end


def compare(gold: Sequence[Sentence], predicted: Sequence[Sequence[str]]) -> Comparison:
    """Compare each sentence's file labels with the model's labels for the same words."""
    if len(gold) != len(predicted):
        raise ValueError(
            f"{len(gold)} file sentences but {len(predicted)} predictions; "
            "tag every sentence of the file once."
        )
    true_positives = 0
    false_positives: list[Mention] = []
    false_negatives: list[Mention] = []
    disagreeing: list[int] = []
    gold_count = predicted_count = 0
    for index, (sentence, labels) in enumerate(zip(gold, predicted, strict=True)):
        expected = _mentions(index, sentence.words, sentence.labels)
        found = _mentions(index, sentence.words, labels)
        gold_count += len(expected)
        predicted_count += len(found)
        true_positives += len(expected & found)
        false_positives.extend(sorted(found - expected, key=_position))
        false_negatives.extend(sorted(expected - found, key=_position))
        if expected != found:
            disagreeing.append(index)
    return Comparison(
        true_positives,
        tuple(false_positives),
        tuple(false_negatives),
        tuple(disagreeing),
        gold_count,
        predicted_count,
    )
