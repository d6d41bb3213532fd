"""One scorer: the app's Inspect numbers are `training.evaluate`'s, strict IOB2 (seqeval).

Both go through `tagger.scoring.entity_scores`; these tests pin that down on data with
stray `I-` labels (which strict IOB2 reads as no mention) and pin the undefined cases.
"""

from __future__ import annotations

import doctest
import random
import subprocess
import sys

import pytest
from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.scheme import IOB2

import app.evaluation
import tagger.scoring
from app.evaluation import compare
from tagger.bio import Sentence, repair_bio
from tagger.scoring import best_f1_key, count_entities, entity_scores, strict_spans
from tests.conftest import REPO_ROOT
from training import evaluate

B, I, O = "B-Disease", "I-Disease", "O"  # noqa: E741


def random_labels(rng: random.Random, length: int) -> list[str]:
    return rng.choices([B, I, O, O, O], k=length)


def corpus(seed: int) -> tuple[list[Sentence], list[list[str]]]:
    """Gold sentences (valid IOB2, as read_bio gives them) and raw arg-max-like predictions."""
    rng = random.Random(seed)
    gold: list[Sentence] = []
    predicted: list[list[str]] = []
    for _ in range(40):
        length = rng.randint(0, 12)
        labels, _ = repair_bio(random_labels(rng, length))
        gold.append(Sentence([f"w{i}" for i in range(length)], labels))
        predicted.append(random_labels(rng, length))  # stray I- labels left in
    return gold, predicted


def seqeval_percent(gold: list[list[str]], predicted: list[list[str]]) -> tuple[float, ...]:
    options = {"mode": "strict", "scheme": IOB2, "zero_division": 0}
    return tuple(
        round(100 * metric(gold, predicted, **options), 2)
        for metric in (precision_score, recall_score, f1_score)
    )


def test_doctests() -> None:
    for module in (tagger.scoring, app.evaluation):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_training_evaluate_uses_the_one_scorer() -> None:
    assert evaluate.entity_scores is entity_scores
    assert evaluate.count_entities is count_entities


@pytest.mark.parametrize("seed", range(5))
def test_the_app_and_the_cli_give_the_same_numbers(seed: int) -> None:
    gold, predicted = corpus(seed)
    assert any(I in labels and strict_spans(labels) != strict_spans(repair_bio(labels)[0])
               for labels in predicted)  # the data has stray I- labels that matter
    gold_labels = [list(sentence.labels) for sentence in gold]
    cli = evaluate.evaluate_predictions(gold, predicted)
    shown = compare(gold, [tuple(labels) for labels in predicted])
    assert (shown.precision, shown.recall, shown.f1) == (
        cli["precision"],
        cli["recall"],
        cli["f1"],
    )
    assert (shown.gold_count, shown.predicted_count, shown.true_positives) == (
        cli["n_gold"],
        cli["n_pred"],
        cli["n_correct"],
    )
    # ... and they are seqeval's strict IOB2 numbers, with error lists that add up.
    assert (cli["precision"], cli["recall"], cli["f1"]) == seqeval_percent(gold_labels, predicted)
    assert len(shown.false_positives) == shown.predicted_count - shown.true_positives
    assert len(shown.false_negatives) == shown.gold_count - shown.true_positives


def test_stray_inside_labels_are_no_mention_on_either_side() -> None:
    gold = [Sentence(["a", "b", "c", "d"], [O, B, I, O]), Sentence(["e", "f"], [B, O])]
    predicted = [(O, I, I, O), (B, O)]
    shown = compare(gold, predicted)
    scores = evaluate.entity_scores([s.labels for s in gold], predicted)
    assert scores == {
        "precision": 100.0,
        "recall": 50.0,
        "f1": 66.67,
        "n_gold": 2,
        "n_pred": 1,
        "n_correct": 1,
    }
    assert (shown.precision, shown.recall, shown.f1) == (100.0, 50.0, 66.67)
    assert [m.text for m in shown.false_negatives] == ["b c"] and shown.false_positives == ()


@pytest.mark.parametrize(
    ("gold", "predicted", "expected"),
    [
        ([[O, O]], [[O, O]], (None, None, None)),  # nothing to compare at all
        ([[]], [[]], (None, None, None)),
        ([[O, I]], [[I, O]], (None, None, None)),  # stray I- labels are no mentions
        ([[B, O]], [[O, O]], (None, 0.0, 0.0)),  # nothing predicted: no precision
        ([[O, O]], [[B, O]], (0.0, None, 0.0)),  # nothing to find: no recall
    ],
)
def test_undefined_metrics_are_none_never_zero_or_perfect(
    gold: list[list[str]], predicted: list[list[str]], expected: tuple[float | None, ...]
) -> None:
    scores = entity_scores(gold, predicted)
    assert (scores["precision"], scores["recall"], scores["f1"]) == expected
    sentences = [Sentence([f"w{i}" for i in range(len(g))], g) for g in gold]
    shown = compare(sentences, predicted)
    assert (shown.precision, shown.recall, shown.f1) == expected


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="2 gold sentences but 1 predicted"):
        entity_scores([[O], [O]], [[O]])
    with pytest.raises(ValueError, match="sentence 0: 2 gold labels but 1 predicted"):
        entity_scores([[O, O]], [[O]])


def test_an_undefined_f1_ranks_below_every_score() -> None:
    runs = [{"f1": None}, {"f1": 0.0}, {"f1": 12.5}]
    assert max(runs, key=best_f1_key) == {"f1": 12.5}
    assert max(runs[:2], key=best_f1_key) == {"f1": 0.0}


def test_the_scorer_imports_without_keras_or_training() -> None:
    code = (
        "import sys, tagger.scoring, app.evaluation; "
        "print(sorted(m for m in ('keras', 'tensorflow', 'training') if m in sys.modules))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert completed.stdout.strip() == "[]"
