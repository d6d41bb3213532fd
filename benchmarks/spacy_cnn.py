"""Non-transformer baseline: a spaCy 3 CNN NER model trained from scratch on BC5CDR-disease.

The pipeline is the one `spacy init config --lang en --pipeline ner --optimize efficiency`
writes: a blank English model, a `tok2vec` (hash embeddings of NORM/PREFIX/SUFFIX/SHAPE and
a 4-layer maxout CNN, width 96, no pretrained vectors) shared with a transition-based `ner`.
Its training settings come from the same config (Adam 0.001 with L2 0.01 and gradient
clipping 1.0, dropout 0.1, word-count batches compounding from 100 to 1000). The loop is
written out here so that devel is scored once per epoch with the project's one strict IOB2
seqeval scorer (`tagger.scoring.entity_scores`): the best-devel-F1 weights are kept and
training stops after `--patience` epochs without improvement, or after `--max-epochs`. Only
devel picks anything; test is tagged once, at the end. Words come pre-tokenised from the BIO
files, so spaCy's tokenizer is bypassed and the scores are per BC5CDR token.

`--threads N` caps the BLAS/OpenMP thread pools (set before numpy loads), as the speed
benchmark caps ours and the peer's; the inference record also says how many cores the pass
actually kept busy (CPU seconds / wall seconds).

Runs in the project's .venv (spaCy is a runtime dependency). `python -m benchmarks.run_all
--steps spacy` runs it and stores the result as `benchmarks/results/spacy.json`; by hand:

    .venv/bin/python benchmarks/spacy_cnn.py --data-dir "$BC5CDR_DIR" --threads 2 \\
        --out /tmp/spacy_cnn.json

A quick smoke run:

    .venv/bin/python benchmarks/spacy_cnn.py --data-dir "$BC5CDR_DIR" --max-epochs 1 \\
        --max-train-sentences 64 --max-eval-sentences 64 --out /tmp/spacy_smoke.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

# `tagger` lives at the repo root, which is not on sys.path when this file is run as a script.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
)


def limit_threads(threads: int | None) -> None:
    """Cap the BLAS/OpenMP pools; only effective before numpy is first imported."""
    if threads is not None:
        for variable in THREAD_VARIABLES:
            os.environ[variable] = str(threads)


if __name__ == "__main__":  # --threads must act before spaCy imports numpy
    _early = argparse.ArgumentParser(add_help=False)
    _early.add_argument("--threads", type=int, default=None)
    limit_threads(_early.parse_known_args()[0].threads)

import spacy  # noqa: E402
from spacy.cli.init_config import init_config  # noqa: E402
from spacy.language import Language  # noqa: E402
from spacy.tokens import Doc  # noqa: E402
from spacy.training import Example  # noqa: E402
from spacy.util import fix_random_seed, load_model_from_config, registry  # noqa: E402
from thinc.api import Config  # noqa: E402

from tagger.bio import OUTSIDE, Sentence, read_bio, repair_bio  # noqa: E402
from tagger.scoring import best_f1_key, entity_scores, format_score  # noqa: E402

SPLIT_FILES = {"train": "train.tsv", "devel": "devel.tsv", "test": "test.tsv"}
LATENCY_TEXT_WORDS = 250
LATENCY_RUNS = 20


# ---------------------------------------------------------------------------
# Command line and data
# ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line; --data-dir defaults to $BC5CDR_DIR."""
    parser = argparse.ArgumentParser(
        description="Train and time a spaCy CNN NER baseline from scratch."
    )
    default_data = os.environ.get("BC5CDR_DIR")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(default_data) if default_data else None,
        required=default_data is None,
        help="folder with train.tsv, devel.tsv, test.tsv (default: $BC5CDR_DIR)",
    )
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON")
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument(
        "--patience", type=int, default=3, help="epochs without a better devel F1 before stopping"
    )
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="cap BLAS/OpenMP threads (sets OMP/OPENBLAS/MKL/BLIS_NUM_THREADS; default: leave)",
    )
    parser.add_argument("--max-train-sentences", type=int, default=None, help="smoke runs")
    parser.add_argument(
        "--max-eval-sentences", type=int, default=None, help="smoke runs: devel and test"
    )
    return parser.parse_args(argv)


def load_split(data_dir: Path, split: str, limit: int | None) -> list[Sentence]:
    """The first `limit` sentences (all when None) of one split."""
    path = data_dir / SPLIT_FILES[split]
    if not path.is_file():
        raise SystemExit(
            f"{path}: no such file. Pass --data-dir (or set BC5CDR_DIR) to the folder "
            f"holding {', '.join(SPLIT_FILES.values())}."
        )
    sentences = read_bio(path)
    return sentences[:limit] if limit is not None else sentences


def log(message: str) -> None:
    print(f"[spacy_cnn] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Pipeline
# ---------------------------------------------------------------------------


def efficiency_ner_config(seed: int) -> Config:
    """The config `spacy init config -l en -p ner -o efficiency` writes, with our seed."""
    config = init_config(lang="en", pipeline=["ner"], optimize="efficiency", gpu=False)
    return config.merge({"system": {"seed": seed}, "training": {"seed": seed}})


def to_doc(nlp: Language, words: Sequence[str], labels: Sequence[str] | None = None) -> Doc:
    # Pre-tokenised words skip spaCy's tokenizer; `ents` takes IOB2 strings directly.
    return Doc(nlp.vocab, words=list(words), ents=list(labels) if labels else None)


def examples_of(nlp: Language, sentences: Iterable[Sentence]) -> list[Example]:
    return [Example(to_doc(nlp, s.words), to_doc(nlp, s.words, s.labels)) for s in sentences]


def iob_labels(doc: Doc) -> list[str]:
    return [
        OUTSIDE if token.ent_iob_ in ("O", "") else f"{token.ent_iob_}-{token.ent_type_}"
        for token in doc
    ]


def tag_all(nlp: Language, texts: Sequence[Sequence[str]]) -> list[list[str]]:
    """IOB2 labels per word, in input order, with spaCy's default pipe batching."""
    docs = (to_doc(nlp, words) for words in texts)
    return [iob_labels(doc) for doc in nlp.pipe(docs)]


def score(nlp: Language, sentences: Sequence[Sentence]) -> tuple[dict[str, Any], list[list[str]]]:
    predicted = tag_all(nlp, [s.words for s in sentences])
    return entity_scores([s.labels for s in sentences], predicted), predicted


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


def train_epoch(
    nlp: Language, examples: list[Example], training: dict[str, Any], seed: int
) -> tuple[float, float]:
    """One shuffled pass with the config's batcher and dropout; (wall seconds, NER loss)."""
    random.Random(seed).shuffle(examples)
    losses: dict[str, float] = {}
    start = time.perf_counter()
    for batch in training["batcher"](examples):
        nlp.update(batch, drop=training["dropout"], sgd=training["optimizer"], losses=losses)
    return time.perf_counter() - start, float(losses.get("ner", 0.0))


def train_keep_best(
    nlp: Language,
    config: Config,
    train: Sequence[Sentence],
    devel: Sequence[Sentence],
    args: argparse.Namespace,
) -> tuple[list[dict[str, Any]], int]:
    """Train with early stopping on devel F1; leave `nlp` at its best-devel weights."""
    examples = examples_of(nlp, train)
    nlp.initialize(lambda: examples)
    # Resolved once: the batch-size schedule is a generator that keeps compounding across
    # epochs, as in `spacy train`.
    training = registry.resolve(config["training"], validate=False)
    optimizer = training["optimizer"]
    history: list[dict[str, Any]] = []
    best_f1, best_epoch, best_bytes = float("-inf"), 0, nlp.to_bytes()
    for epoch in range(1, args.max_epochs + 1):
        seconds, loss = train_epoch(nlp, examples, training, args.seed + epoch)
        eval_start = time.perf_counter()
        # Score with the averaged weights when the optimizer keeps them, as spaCy does.
        with nlp.use_params(optimizer.averages):
            dev, _ = score(nlp, devel)
        history.append(
            {
                "epoch": epoch,
                "seconds": seconds,
                "train_loss": loss,
                "dev_eval_seconds": time.perf_counter() - eval_start,
                "dev": dev,
            }
        )
        log(f"epoch {epoch}: {seconds:.1f}s loss {loss:.1f} devel F1 {format_score(dev['f1'])}")
        if best_epoch == 0 or best_f1_key(dev) > best_f1:  # an undefined F1 ranks lowest
            best_f1, best_epoch = best_f1_key(dev), epoch
            with nlp.use_params(optimizer.averages):
                best_bytes = nlp.to_bytes()
        elif epoch - best_epoch >= args.patience:
            log(f"no better devel F1 for {args.patience} epochs: stopping")
            break
    nlp.from_bytes(best_bytes)
    return history, best_epoch


# ---------------------------------------------------------------------------
# Speed
# ---------------------------------------------------------------------------


def measure_inference(nlp: Language, test: Sequence[Sentence]) -> dict[str, Any]:
    """Words/s over the test set (file order, default batching) and 250-word latency."""
    texts = [s.words for s in test]
    tag_all(nlp, texts[:32])  # warm-up
    cpu_start, start = time.process_time(), time.perf_counter()
    tag_all(nlp, texts)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    n_words = sum(len(words) for words in texts)
    throughput = n_words / wall
    text: list[Sequence[str]] = []
    for words in texts:
        text.append(words)
        if sum(len(w) for w in text) >= LATENCY_TEXT_WORDS:
            break
    tag_all(nlp, text)
    timings = []
    for _ in range(LATENCY_RUNS):
        start = time.perf_counter()
        tag_all(nlp, text)
        timings.append((time.perf_counter() - start) * 1000)
    return {
        "words_per_s_file_order": throughput,
        "cores_busy": round(cpu / wall, 2),  # CPU seconds / wall seconds of the pass above
        "thread_limits": {v: os.environ.get(v) for v in THREAD_VARIABLES},
        "pipe_batch_size": nlp.batch_size,
        "latency_ms_250_words_median": statistics.median(timings),
        "latency_text_words": sum(len(words) for words in text),
        "latency_runs": LATENCY_RUNS,
        "n_words": n_words,
        "n_sentences": len(texts),
    }


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------


def recipe(args: argparse.Namespace, config: Config) -> dict[str, Any]:
    training = config["training"]
    return {
        "model": "spaCy tok2vec (MultiHashEmbed + MaxoutWindowEncoder) + ner, from scratch",
        "config": "spacy init config -l en -p ner -o efficiency",
        "tok2vec": dict(config["components"]["tok2vec"]["model"]["encode"]),
        "embed_rows": list(config["components"]["tok2vec"]["model"]["embed"]["rows"]),
        "optimizer": {k: v for k, v in training["optimizer"].items() if not k.startswith("@")},
        "batch_words": {
            k: v for k, v in training["batcher"]["size"].items() if not k.startswith("@")
        },
        "dropout": training["dropout"],
        "max_epochs": args.max_epochs,
        "patience_epochs": args.patience,
        "seed": args.seed,
        "max_train_sentences": args.max_train_sentences,
        "max_eval_sentences": args.max_eval_sentences,
        "threads": args.threads,
        "metric": "seqeval strict IOB2, micro, percent (tagger.scoring.entity_scores)",
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    train = load_split(args.data_dir, "train", args.max_train_sentences)
    devel = load_split(args.data_dir, "devel", args.max_eval_sentences)
    test = load_split(args.data_dir, "test", args.max_eval_sentences)
    fix_random_seed(args.seed)
    config = efficiency_ner_config(args.seed)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    history, best_epoch = train_keep_best(nlp, nlp.config, train, devel, args)
    scores, predicted = score(nlp, test)
    scores["n_invalid_i"] = sum(repair_bio(labels)[1] for labels in predicted)
    log(f"test (best epoch {best_epoch}): {json.dumps(scores)}")
    output = {
        "recipe": recipe(args, nlp.config),
        "versions": {
            "python": platform.python_version(),
            "spacy": spacy.__version__,
            "thinc": metadata.version("thinc"),
            "seqeval": metadata.version("seqeval"),
        },
        "data": {"n_train": len(train), "n_devel": len(devel), "n_test": len(test)},
        "epochs": history,
        "best_epoch": best_epoch,
        "test": scores,
        "inference": measure_inference(nlp, test),
        "peak_rss_mb_end": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(output, indent=2) + "\n")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
