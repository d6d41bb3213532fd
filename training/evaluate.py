"""Strict entity-level precision, recall and F1 (seqeval, IOB2), overall and by sentence length.

The scorer itself is :func:`tagger.scoring.entity_scores` (re-exported here with
``count_entities``): percent, and ``None`` for a metric with nothing to compare (no
prediction: precision; no gold mention: recall; neither: F1), printed as ``n/a``.

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

from tagger.bio import Sentence
from tagger.runtimes import RuntimeSetupError, add_serving_arguments
from tagger.scoring import count_entities, entity_scores, format_score

__all__ = [
    "LENGTH_BUCKETS",
    "count_entities",
    "entity_scores",
    "evaluate_predictions",
    "evaluate_tagger",
    "format_report",
    "main",
    "scores_by_length",
]

LENGTH_BUCKETS = ((1, 10), (11, 20), (21, 30), (31, 50), (51, 10_000))


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


def _score(value: float | None) -> str:
    return f"{format_score(value):>6}"


def format_report(metrics: dict[str, Any]) -> str:
    lines = [
        "strict entity-level (seqeval, IOB2)",
        f"precision {_score(metrics['precision'])}  recall {_score(metrics['recall'])}  "
        f"F1 {_score(metrics['f1'])}  gold {metrics['n_gold']}  predicted {metrics['n_pred']}",
        "by sentence length (words):",
    ]
    for name, bucket in metrics["by_length"].items():
        lines.append(
            f"  {name:>6}: F1 {_score(bucket['f1'])}  P {_score(bucket['precision'])}  "
            f"R {_score(bucket['recall'])}  sentences {bucket['sentences']}"
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
