"""A BIO file's own labels against the model's: strict entity scores and the errors.

An entity counts as found only when the model marks exactly the same words with the
same type. Precision, recall and F1 are :func:`tagger.scoring.entity_scores` (seqeval
strict IOB2, in percent), the very numbers ``python -m training.evaluate`` prints for
the same labels; a metric with nothing to compare is ``None`` (undefined). The
mention lists use the same strict reading (:func:`tagger.scoring.strict_spans`), so a
stray ``I-`` that continues nothing is no mention, and the lists always add up to the
counts behind the scores.

Example:

>>> from tagger.bio import Sentence
>>> gold = [Sentence(["Heart", "failure", "."], ["B-Disease", "I-Disease", "O"])]
>>> result = compare(gold, [("B-Disease", "O", "O")])
>>> result.f1, [m.text for m in result.false_positives]
(0.0, ['Heart'])
>>> print(compare(gold, [("O", "I-Disease", "O")]).precision)  # nothing predicted
None
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tagger.bio import Sentence
from tagger.scoring import entity_scores, strict_spans


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
    """Scores of the model against the file, and where they disagree.

    ``precision``, ``recall`` and ``f1`` are percent (2 decimals) from
    :func:`tagger.scoring.entity_scores`, or ``None`` where undefined: precision when
    the model predicted nothing, recall when the file has no mention, F1 when neither.
    """

    true_positives: int
    false_positives: tuple[Mention, ...]
    false_negatives: tuple[Mention, ...]
    disagreeing: tuple[int, ...]  # sentence indexes, ascending
    gold_count: int
    predicted_count: int
    precision: float | None
    recall: float | None
    f1: float | None


def _mentions(index: int, words: Sequence[str], labels: Sequence[str]) -> set[Mention]:
    return {
        Mention(index, start, end, label, " ".join(words[start:end]))
        for start, end, label in strict_spans(labels)
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
    scores = entity_scores([sentence.labels for sentence in gold], predicted)
    false_positives: list[Mention] = []
    false_negatives: list[Mention] = []
    disagreeing: list[int] = []
    for index, (sentence, labels) in enumerate(zip(gold, predicted, strict=True)):
        expected = _mentions(index, sentence.words, sentence.labels)
        found = _mentions(index, sentence.words, labels)
        false_positives.extend(sorted(found - expected, key=_position))
        false_negatives.extend(sorted(expected - found, key=_position))
        if expected != found:
            disagreeing.append(index)
    return Comparison(
        true_positives=scores["n_correct"],
        false_positives=tuple(false_positives),
        false_negatives=tuple(false_negatives),
        disagreeing=tuple(disagreeing),
        gold_count=scores["n_gold"],
        predicted_count=scores["n_pred"],
        precision=scores["precision"],
        recall=scores["recall"],
        f1=scores["f1"],
    )
