"""The one entity-level scorer: strict IOB2 (seqeval), in percent, with its counts.

Everything that reports a precision, recall or F1 -- ``python -m training.evaluate``,
training's per-epoch dev scores, the benchmarks and the app's Inspect page -- goes
through :func:`entity_scores`, so the same labels always give the same numbers.

How the labels are read: seqeval's ``mode="strict"`` with ``scheme=IOB2``. A mention
is a ``B-X`` followed by any ``I-X``; it counts as found only when the prediction has
exactly the same words and type. An ``I-X`` that continues nothing (after ``O``, at
the sentence start, or after another type) starts nothing: strict IOB2 reads it as no
mention at all, neither predicted nor gold. :func:`strict_spans` and
:func:`count_entities` use that same reading, so the counts always match the scores.

Undefined metrics: a ratio with a zero denominator is ``None``, never 0 and never 100.

* precision = correct / predicted is ``None`` when nothing was predicted;
* recall = correct / gold is ``None`` when there is no gold mention;
* F1 = 2 * correct / (gold + predicted), the harmonic mean of the two where both
  exist, is ``None`` only when both are ``None``. When just one side is empty F1 is
  0 (the usual convention, and what seqeval gives): a model that predicts nothing on a
  file with mentions, or predicts mentions on a file with none, did find none of what
  it should have, and there is something to compare.

So ``n_gold == n_pred == 0`` gives all three ``None``; ``n_pred == 0 < n_gold`` gives
precision ``None``, recall 0, F1 0; ``n_gold == 0 < n_pred`` gives precision 0, recall
``None``, F1 0.

This module needs only seqeval and the standard library (no Keras, no TensorFlow), so
the app and the benchmark environments import it.

Example:

>>> B, I, O = "B-Disease", "I-Disease", "O"
>>> gold = [[B, I, O, B], [O, B]]
>>> predicted = [[B, I, O, O], [O, I]]  # one found, one missed, one stray I-
>>> entity_scores(gold, predicted)
{'precision': 100.0, 'recall': 33.33, 'f1': 50.0, 'n_gold': 3, 'n_pred': 1, 'n_correct': 1}
>>> entity_scores([[O, O]], [[O, O]])["f1"] is None  # nothing to compare
True
>>> strict_spans([O, I, B, I, O])
[(2, 4, 'Disease')]
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Any

from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.scheme import IOB2, Entities, Tokens

SCORE_KEYS = ("precision", "recall", "f1", "n_gold", "n_pred", "n_correct")
_STRICT: dict[str, Any] = {"mode": "strict", "scheme": IOB2, "zero_division": 0}


def _lists(sequences: Sequence[Sequence[str]]) -> list[list[str]]:
    return [list(labels) for labels in sequences]


def strict_spans(labels: Sequence[str]) -> list[tuple[int, int, str]]:
    """One sentence's mentions as strict IOB2 reads them: ``(start, end_exclusive, type)``.

    Unlike :func:`tagger.bio.entity_spans` this never raises: a stray ``I-`` is no mention.
    """
    if not labels:
        return []
    found = Tokens(list(labels), scheme=IOB2, suffix=False).entities
    return sorted((entity.start, entity.end, entity.tag) for entity in found)


def count_entities(sequences: Sequence[Sequence[str]]) -> int:
    """Mentions as strict IOB2 reads them: an `I-` that continues nothing starts nothing.

    The same reading seqeval scores with, so the counts match its precision and recall
    even for arg-max predictions with stray `I-` labels.
    """
    return sum(len(found) for found in Entities(_lists(sequences), IOB2, suffix=False).entities)


def _percent(value: float) -> float:
    return round(100 * float(value), 2)


def entity_scores(
    gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]
) -> dict[str, Any]:
    """Strict IOB2 micro precision, recall and F1 in percent (2 decimals), or ``None``.

    Returns ``precision``, ``recall``, ``f1`` (``float`` or ``None`` where undefined, see
    the module docstring), ``n_gold`` and ``n_pred`` (mentions in each) and ``n_correct``
    (predicted mentions that match a gold one exactly: the true positives).
    """
    if len(gold) != len(predicted):
        raise ValueError(
            f"{len(gold)} gold sentences but {len(predicted)} predicted; "
            "give one label sequence per sentence on both sides."
        )
    for index, (expected, found) in enumerate(zip(gold, predicted, strict=True)):
        if len(expected) != len(found):
            raise ValueError(
                f"sentence {index}: {len(expected)} gold labels but {len(found)} predicted; "
                "give one label per word on both sides."
            )
    gold_lists, predicted_lists = _lists(gold), _lists(predicted)
    gold_entities = set(chain(*Entities(gold_lists, IOB2, suffix=False).entities))
    predicted_entities = set(chain(*Entities(predicted_lists, IOB2, suffix=False).entities))
    n_gold, n_pred = len(gold_entities), len(predicted_entities)
    scores: dict[str, Any] = {
        "precision": None,
        "recall": None,
        "f1": None,
        "n_gold": n_gold,
        "n_pred": n_pred,
        "n_correct": len(gold_entities & predicted_entities),
    }
    if n_pred:
        scores["precision"] = _percent(precision_score(gold_lists, predicted_lists, **_STRICT))
    if n_gold:
        scores["recall"] = _percent(recall_score(gold_lists, predicted_lists, **_STRICT))
    if n_gold or n_pred:
        scores["f1"] = _percent(f1_score(gold_lists, predicted_lists, **_STRICT))
    return scores


def best_f1_key(scores: dict[str, Any]) -> float:
    """A sort key for picking the best scores by F1: an undefined F1 ranks below any other."""
    f1 = scores.get("f1")
    return float("-inf") if f1 is None else float(f1)


def format_score(value: float | None, digits: int = 2, undefined: str = "n/a") -> str:
    """``66.67``, or ``undefined`` (``n/a``) for a metric with nothing to compare."""
    return undefined if value is None else f"{value:.{digits}f}"
