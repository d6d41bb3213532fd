"""Serving speed of ours against the Hugging Face peer at its best, in one run.

Ours: `Tagger.load` as it serves (ONNX Runtime on the CPU), over BC5CDR-disease test cut
into documents of ``--document-sentences`` sentences (context never crosses documents,
as when a curator tags abstracts), tokenisation to labels timed, one untimed warm-up
pass first; each row with the strict devel F1 it was chosen by and the test F1 of the
same timed pass. The peer: ``benchmarks/peer_hf.py --mode serve-sweep`` in
``.venv-bench`` right after, with the same thread count (torch fp32 and dynamic int8,
ONNX Runtime fp32 and int8 with the BERT fusions, each at batch sizes 1-64).

Usage::

    python -m benchmarks.serving --model models/default --data-dir $BC5CDR_DIR \\
        --threads 2 --out benchmarks/results/serving.json

Every F1 is strict entity-level (seqeval ``mode="strict"``, IOB2).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH_PYTHON = REPO / ".venv-bench" / "bin" / "python"
SCORE_KEYS = ("precision", "recall", "f1", "n_gold", "n_pred")


@dataclass(frozen=True)
class ServingConfig:
    """One way of serving our model: the `Tagger.load` arguments it differs by."""

    name: str
    precision: str = "int8"
    packed_context: int | str | None = "auto"  # "auto": the model's default


# The default first; the others show what each serving choice costs or buys. A choice
# that comes to the default's own windows (one chunk each, for a model trained without
# context) is measured once.
OUR_CONFIGS = (
    ServingConfig("default"),
    ServingConfig("packed, no context pieces", packed_context=0),
    ServingConfig("packed, 24 context pieces each side", packed_context=24),
    ServingConfig("one window per sentence chunk", packed_context=None),
    ServingConfig("float32", precision="float32"),
)


def distinct_configs(model: Path, configs: Sequence[ServingConfig]) -> list[ServingConfig]:
    """`configs` less those that serve `model` exactly as an earlier one does."""
    from tagger.model_folder import read_metadata
    from tagger.predict import default_packed_context

    default = default_packed_context(read_metadata(model).windows)
    seen: set[tuple[str, int | None]] = set()
    kept = []
    for config in configs:
        packing = default if config.packed_context == "auto" else config.packed_context
        key = (config.precision, packing if isinstance(packing, int) else None)
        if key not in seen:
            seen.add(key)
            kept.append(config)
    return kept


def documents_of(count: int, size: int) -> list[int]:
    """Sentence counts of consecutive documents of `size` sentences (the last shorter).

    >>> documents_of(25, 10)
    [10, 10, 5]
    """
    return [min(size, count - start) for start in range(0, count, size)]


def scores(sentences: Sequence[Any], labels: Sequence[Sequence[str]]) -> dict[str, Any]:
    from training.evaluate import evaluate_predictions

    result = evaluate_predictions(sentences, list(labels))
    return {key: result[key] for key in SCORE_KEYS}


def abstract_text(sentences: Sequence[Any], min_words: int = 250) -> tuple[str, int]:
    """The first sentences of `sentences` as one raw-text abstract of ≥ `min_words` words."""
    from tagger.text import detokenize

    words: list[str] = []
    for sentence in sentences:
        words.extend(sentence.words)
        if len(words) >= min_words:
            break
    return detokenize(words)[0], len(words)


def measure_ours(
    model: Path, data_dir: Path, config: ServingConfig, threads: int, document_sentences: int
) -> dict[str, Any]:
    from tagger.bio import read_bio
    from tagger.tagger import Tagger

    test = read_bio(data_dir / "test.tsv")
    devel = read_bio(data_dir / "devel.tsv")
    tagger = Tagger.load(
        model, runtime="onnx", precision=config.precision, packed_context=config.packed_context
    )
    runtime = tagger._predictor.runtime
    words = [sentence.words for sentence in test]
    documents = documents_of(len(words), document_sentences)
    tagger.tag_words(words, documents=documents)  # warm-up
    started = time.perf_counter()
    predicted = tagger.tag_words(words, documents=documents)
    seconds = time.perf_counter() - started
    devel_words = [sentence.words for sentence in devel]
    devel_predicted = tagger.tag_words(
        devel_words, documents=documents_of(len(devel_words), document_sentences)
    )
    text, text_words = abstract_text(test)
    for _ in range(3):
        tagger.tag(text)
    latencies = []
    for _ in range(20):
        started_one = time.perf_counter()
        tagger.tag(text)
        latencies.append(time.perf_counter() - started_one)
    n_words = sum(len(sentence) for sentence in words)
    windows = tagger._predictor.windows_for(words, documents=documents)
    return {
        "name": config.name,
        "precision": config.precision,
        "packed_context": tagger._predictor.packed_context,
        "threads": getattr(runtime, "threads", threads),
        "n_words": n_words,
        "documents": len(documents),
        "document_sentences": document_sentences,
        "tokens_read": sum(len(window.token_ids) for window in windows),
        "words_per_s": round(n_words / seconds, 1),
        "latency_ms_250_words_median": round(1000 * statistics.median(latencies), 1),
        "latency_text_words": text_words,
        "dev": scores(devel, [labels for labels, _ in devel_predicted]),
        "test": scores(test, [labels for labels, _ in predicted]),
    }


def peer_command(data_dir: Path, threads: int, out: Path, weights: Path | None) -> list[str]:
    command = [
        str(BENCH_PYTHON),
        "benchmarks/peer_hf.py",
        "--mode",
        "serve-sweep",
        "--data-dir",
        str(data_dir),
        "--threads",
        str(threads),
        "--out",
        str(out),
    ]
    return command + (["--weights", str(weights)] if weights else [])


def pin_threads(threads: int) -> set[int]:
    """Run this process (and the peer, which inherits it) on `threads` cores; returns the
    cores it could use before, to restore."""
    available = os.sched_getaffinity(0)
    if threads > len(available):
        raise SystemExit(f"--threads {threads}: this process may use {len(available)} cores")
    os.sched_setaffinity(0, sorted(available)[:threads])
    return available


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="our model folder")
    parser.add_argument("--data-dir", type=Path, required=True, help="BC5CDR-disease folder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--document-sentences", type=int, default=10)
    parser.add_argument("--peer-weights", type=Path, help="the peer's trained model folder")
    parser.add_argument("--no-peer", action="store_true", help="ours only (smoke runs)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    before = pin_threads(args.threads)
    try:
        return measure(args)
    finally:
        os.sched_setaffinity(0, before)


def measure(args: argparse.Namespace) -> int:
    ours = [
        measure_ours(args.model, args.data_dir, config, args.threads, args.document_sentences)
        for config in distinct_configs(args.model, OUR_CONFIGS)
    ]
    for row in ours:
        print(json.dumps({key: row[key] for key in ("name", "words_per_s")}), flush=True)
    result: dict[str, Any] = {"model": str(args.model), "threads": args.threads, "ours": ours}
    if not args.no_peer:
        peer_out = args.out.with_name(args.out.stem + "_peer_raw.json")
        command = peer_command(args.data_dir, args.threads, peer_out, args.peer_weights)
        subprocess.run(command, cwd=REPO, check=True)
        result["peer"] = json.loads(peer_out.read_text(encoding="utf-8"))
        result["peer_command"] = command
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
