"""Strict entity-level precision, recall and F1 (seqeval, IOB2), overall and by sentence length.

Usage:
    python -m training.evaluate --model models/default --data test.tsv [--json]
        [--runtime auto|keras|onnx] [--precision float32|bfloat16|float16|int8]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.scheme import IOB2, Entities

from tagger.bio import Sentence
from tagger.runtimes import RuntimeSetupError, add_serving_arguments

LENGTH_BUCKETS = ((1, 10), (11, 20), (21, 30), (31, 50), (51, 10_000))


def entity_scores(
    gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]
) -> dict[str, Any]:
    """Strict IOB2 entity scores, in percent, with the entity counts behind them."""
    gold_lists = [list(labels) for labels in gold]
    predicted_lists = [list(labels) for labels in predicted]
    n_gold = count_entities(gold_lists)
    n_pred = count_entities(predicted_lists)
    if n_gold == 0 and n_pred == 0:
        return {"precision": 100.0, "recall": 100.0, "f1": 100.0, "n_gold": 0, "n_pred": 0}
    options = {"mode": "strict", "scheme": IOB2, "zero_division": 0}
    return {
        "precision": round(100 * precision_score(gold_lists, predicted_lists, **options), 2),
        "recall": round(100 * recall_score(gold_lists, predicted_lists, **options), 2),
        "f1": round(100 * f1_score(gold_lists, predicted_lists, **options), 2),
        "n_gold": n_gold,
        "n_pred": n_pred,
    }


def count_entities(sequences: list[list[str]]) -> int:
    """Entities as strict IOB2 reads them: an `I-` that continues nothing starts nothing.

    The same reading seqeval scores with, so the counts match its precision and recall
    even for arg-max predictions with stray `I-` labels.
    """
    return sum(len(found) for found in Entities(sequences, IOB2, suffix=False).entities)


def scores_by_length(
    gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]
) -> dict[str, dict[str, Any]]:
    """The same scores per sentence-length bucket (in words)."""
    buckets: dict[str, dict[str, Any]] = {}
    for low, high in LENGTH_BUCKETS:
        chosen = [i for i, labels in enumerate(gold) if low <= len(labels) <= high]
        if not chosen:
            continue
        name = f"{low}+" if high >= 10_000 else f"{low}-{high}"
        scores = entity_scores([gold[i] for i in chosen], [predicted[i] for i in chosen])
        buckets[name] = {**scores, "sentences": len(chosen)}
    return buckets


def evaluate_predictions(
    sentences: Sequence[Sentence], predicted: Sequence[Sequence[str]]
) -> dict[str, Any]:
    gold = [sentence.labels for sentence in sentences]
    return {
        **entity_scores(gold, predicted),
        "sentences": len(sentences),
        "by_length": scores_by_length(gold, predicted),
    }


def evaluate_tagger(tagger: Any, sentences: Sequence[Sentence]) -> dict[str, Any]:
    """Tag the words of `sentences` and score against their own labels."""
    predictions = tagger.tag_words([sentence.words for sentence in sentences])
    return evaluate_predictions(sentences, [labels for labels, _ in predictions])


def format_report(metrics: dict[str, Any]) -> str:
    lines = [
        "strict entity-level (seqeval, IOB2)",
        f"precision {metrics['precision']:6.2f}  recall {metrics['recall']:6.2f}  "
        f"F1 {metrics['f1']:6.2f}  gold {metrics['n_gold']}  predicted {metrics['n_pred']}",
        "by sentence length (words):",
    ]
    for name, bucket in metrics["by_length"].items():
        lines.append(
            f"  {name:>6}: F1 {bucket['f1']:6.2f}  P {bucket['precision']:6.2f}  "
            f"R {bucket['recall']:6.2f}  sentences {bucket['sentences']}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a trained model folder")
    add_serving_arguments(parser)
    parser.add_argument("--data", required=True, help="a BIO file with gold labels")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    from tagger.bio import BioFormatError, read_bio
    from tagger.model_folder import ModelFolderError
    from tagger.tagger import Tagger

    try:
        sentences = read_bio(args.data)
        metrics = evaluate_tagger(
            Tagger.load(args.model, runtime=args.runtime, precision=args.precision), sentences
        )
    except (BioFormatError, ModelFolderError, RuntimeSetupError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(metrics) if args.json else format_report(metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
