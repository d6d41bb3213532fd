"""Strict entity-level precision, recall and F1 (seqeval, IOB2), overall and by sentence length.

The scorer itself is :func:`tagger.scoring.entity_scores` (re-exported here with
``count_entities``): percent, and ``None`` for a metric with nothing to compare (no
prediction: precision; no gold mention: recall; neither: F1), printed as ``n/a``.

Usage:
    python -m training.evaluate [--model MODEL] --data test.tsv [--json]
        [--runtime auto|keras|onnx] [--precision float32|bfloat16|float16|int8]

``--model`` is a model folder, a version id in the registry or ``current``; without it,
the version in service (the registry folder is ``$TAGGER_REGISTRY_DIR``, default
``models``). A mistake is one line on stderr and exit status 2.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tagger.bio import Sentence
from tagger.cli import ArgumentParser, add_model_argument, load_tagger
from tagger.errors import TaggerError, run_cli
from tagger.runtimes import add_serving_arguments
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


PROG = "python -m training.evaluate"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    add_model_argument(parser)
    add_serving_arguments(parser)
    parser.add_argument("--data", required=True, help="a BIO file with gold labels")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tagger.bio import read_bio

    try:
        sentences = read_bio(args.data)
    except OSError as error:
        raise TaggerError(
            f"cannot read {args.data} ({error.strerror or error})",
            where="--data",
            fix="pass --data a BIO file with gold labels, such as test.tsv",
        ) from None
    tagger = load_tagger(args.model, runtime=args.runtime, precision=args.precision, prog=PROG)
    metrics = evaluate_tagger(tagger, sentences)
    print(json.dumps(metrics) if args.json else format_report(metrics))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status 0, or 2 after one `python -m training.evaluate: error: ...` line."""
    return run_cli(lambda: run(argv), prog=PROG)


if __name__ == "__main__":
    raise SystemExit(main())
