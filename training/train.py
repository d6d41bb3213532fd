"""Fine-tune a BERT disease tagger and save it as a self-contained model folder.

Usage:
    python -m training.train --out models/default [--encoder ENC] [--data-dir DIR]
        [--recipe NAME] [--epochs N] [--lr LR] [--batch-size N] [--max-steps N] ...

`--help` lists the recipes and their values. A mistake (missing data, an impossible
window flag, an encoder that cannot be loaded) is one line on stderr and exit status 2,
checked before any training starts.

AdamW with linear warm-up and decay, gradient clipping, a fixed seed, Keras' progress bar,
strict entity F1 on `devel` after every epoch, and the best-dev weights kept (early stopping).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tagger.bio import Sentence
from tagger.cli import ArgumentParser
from tagger.decoding import DECODERS
from tagger.encoders import Encoder, load_encoder
from tagger.errors import TaggerError, run_cli
from tagger.model import MaskedTokenCrossEntropy, build_token_classifier
from tagger.model_folder import LoadedModel, ModelMetadata, save_model_folder
from tagger.scoring import best_f1_key, format_score
from tagger.tagger import Tagger, scoring_tagger
from tagger.tokenization import WordPieceEncoder
from training.datasets import WindowBatches, training_windows
from training.evaluate import evaluate_predictions
from training.fit_loop import fit_batches
from training.multitask import (
    DEFAULT_AUX_ENTITY_TYPE,
    DEFAULT_AUX_WEIGHT,
    AuxiliaryTask,
    load_auxiliary_task,
    multitask_losses,
    multitask_trainer,
)
from training.recipes import RECIPES, TrainSettings, describe_recipes, recipe, settings_as_json
from training.schedule import bert_adamw

LABELS = ("O", "B-Disease", "I-Disease")
EpochHook = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    tagger: Tagger
    history: list[dict[str, Any]]
    best_epoch: int
    seconds_per_epoch: list[float]


SCORE_KEYS = ("precision", "recall", "f1", "n_gold", "n_pred")


def dev_scores(tagger: Tagger, dev: Sequence[Sentence]) -> dict[str, Any]:
    """Strict P/R/F1 and counts of ``tagger`` on ``dev``, as every epoch records them
    (on ONNX Runtime float32 on a CPU-only machine: :func:`tagger.tagger.scoring_tagger`)."""
    predictions = scoring_tagger(tagger).tag_words([sentence.words for sentence in dev])
    scores = evaluate_predictions(dev, [labels for labels, _ in predictions])
    return {key: scores[key] for key in SCORE_KEYS}


def training_metadata(encoder: Encoder, settings: TrainSettings) -> ModelMetadata:
    """The ``model.json`` of a model fine-tuned from ``encoder`` with ``settings``, before
    any result is known (no metrics, version or history yet)."""
    return ModelMetadata(
        labels=list(LABELS),
        lowercase=encoder.lowercase,
        backbone_config=encoder.backbone.get_config(),
        windows=settings.windows,
        dropout=settings.dropout,
        decoder=settings.decoder,
        encoder_source=encoder.source,
        training=settings_as_json(settings),
    )


class DevEvaluation(keras.callbacks.Callback):
    """Strict dev F1 after each epoch; keeps the best weights; stops after `patience` bad epochs.

    The weights kept are `kept_model`'s (default: the model being trained): a multi-task
    trainer's auxiliary head is not part of the classifier that is saved.
    """

    def __init__(
        self,
        tagger: Tagger,
        dev: Sequence[Sentence],
        patience: int,
        on_epoch: EpochHook | None = None,
        *,
        keep_recent: int = 0,
        score: bool = True,
        kept_model: keras.Model | None = None,
    ) -> None:
        super().__init__()
        self.kept_model = kept_model
        self.score = score
        self.tagger = tagger
        self.dev = dev
        self.patience = patience
        self.on_epoch = on_epoch
        self.best_f1 = float("-inf")  # an undefined dev F1 (no mentions at all) ranks lowest
        self.best_epoch = 0
        self.best_weights: list[np.ndarray] | None = None
        self.history: list[dict[str, Any]] = []
        self.epoch_started = 0.0
        self.seconds: list[float] = []
        self.keep_recent = keep_recent
        self.recent_weights: deque[list[np.ndarray]] = deque(maxlen=max(keep_recent, 1))

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.seconds.append(time.perf_counter() - self.epoch_started)
        if not self.score:  # a refit: dev is in the training data, and every epoch runs
            self.best_epoch = epoch + 1
            self.history.append(
                {
                    "epoch": epoch + 1,
                    "loss": float((logs or {}).get("loss", float("nan"))),
                    "seconds": round(self.seconds[-1], 1),
                }
            )
            return
        scores = dev_scores(self.tagger, self.dev)
        record = {
            "epoch": epoch + 1,
            "loss": float((logs or {}).get("loss", float("nan"))),
            "seconds": round(self.seconds[-1], 1),
            "dev": scores,
        }
        self.history.append(record)
        kept = self.kept_model or self.model
        if self.keep_recent > 1:
            self.recent_weights.append(kept.get_weights())
        print(
            f"epoch {epoch + 1}: loss {record['loss']:.4f}  "
            f"dev P {format_score(scores['precision'])} R {format_score(scores['recall'])} "
            f"F1 {format_score(scores['f1'])}  ({record['seconds']:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
        if self.best_epoch == 0 or best_f1_key(scores) > self.best_f1:
            self.best_f1, self.best_epoch = best_f1_key(scores), epoch + 1
            self.best_weights = kept.get_weights()
        elif epoch + 1 - self.best_epoch >= self.patience:
            self.model.stop_training = True
        if self.on_epoch is not None:
            self.on_epoch(record)


def mean_weights(checkpoints: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
    """The element-wise mean of several checkpoints of one model, in its own dtypes.

    >>> first = [np.array([1.0, 2.0], np.float32), np.array(3.0, np.float32)]
    >>> second = [np.array([3.0, 4.0], np.float32), np.array(5.0, np.float32)]
    >>> [weight.tolist() for weight in mean_weights([first, second])]
    [[2.0, 3.0], 4.0]
    """
    return [
        np.mean(np.stack(tensors), axis=0).astype(tensors[0].dtype)
        for tensors in zip(*checkpoints, strict=True)
    ]


def average_recent_epochs(
    evaluation: DevEvaluation, tagger: Tagger, dev: Sequence[Sentence]
) -> dict[str, Any] | None:
    """Score the mean of the last epochs' weights on dev (``TrainSettings.average_last``);
    the model keeps them only if their dev F1 beats the best single epoch's.

    Returns what a model's ``training["averaged"]`` records, or None when fewer than two
    epochs were kept (averaging off, or training stopped after one epoch).
    """
    recent = list(evaluation.recent_weights)
    if len(recent) < 2:
        return None
    model = tagger.model
    last_epoch = len(evaluation.history)
    model.set_weights(mean_weights(recent))
    started = time.perf_counter()
    scores = dev_scores(tagger, dev)
    kept = best_f1_key(scores) > evaluation.best_f1
    epochs = list(range(last_epoch - len(recent) + 1, last_epoch + 1))
    print(
        f"mean of epochs {epochs[0]}-{epochs[-1]}: dev F1 {format_score(scores['f1'])} "
        f"({'kept' if kept else 'not kept'}: the best epoch, {evaluation.best_epoch}, scored "
        f"{format_score(evaluation.history[evaluation.best_epoch - 1]['dev']['f1'])})",
        file=sys.stderr,
        flush=True,
    )
    return {
        "epochs": epochs,
        "dev": scores,
        "kept": kept,
        "seconds": round(time.perf_counter() - started, 1),
    }


def refit_on_train_and_devel(
    encoder: Encoder,
    train: Sequence[Sentence],
    dev: Sequence[Sentence],
    settings: TrainSettings,
    selected: TrainResult,
    *,
    verbose: int | str = "auto",
    auxiliary: AuxiliaryTask | None = None,
) -> TrainResult:
    """Train again from `encoder` (fresh: not the one `selected` trained) on train and
    devel together, for the epoch count devel chose in `selected`.

    The refit model has no clean dev figure; its ``model.json`` records the devel-chosen
    run's (``training["refit"]``), which the ablation reads for the recipe. An
    `auxiliary` task trains on its train and devel labels too.
    """
    result = refit_for_epochs(
        encoder, train, dev, settings, selected.best_epoch, verbose=verbose, auxiliary=auxiliary
    )
    selected_training = selected.tagger.info.training
    result.tagger.info.training["refit"]["selected_on_devel"] = {
        "best_epoch": selected.best_epoch,
        "dev": selected.tagger.info.metrics.get("dev"),
        "history": selected_training.get("history"),
        "averaged": selected_training.get("averaged"),
    }
    return result


def refit_for_epochs(
    encoder: Encoder,
    train: Sequence[Sentence],
    dev: Sequence[Sentence],
    settings: TrainSettings,
    epochs: int,
    *,
    verbose: int | str = "auto",
    auxiliary: AuxiliaryTask | None = None,
) -> TrainResult:
    """Train from `encoder` on train and devel together for `epochs` epochs, keeping the
    last: `epochs` must come from a devel-selected run of the same recipe (this one's, or
    an earlier one whose ``model.json`` records its ``best_epoch``), never from test.

    Its ``training["refit"]`` says so; ``selected_on_devel`` is None until the caller
    names the run that chose the count (:func:`refit_on_train_and_devel` does).
    """
    refit_settings = dataclasses.replace(settings, epochs=epochs, patience=epochs, average_last=0)
    if auxiliary is not None:
        auxiliary = dataclasses.replace(auxiliary, train=[*auxiliary.train, *auxiliary.dev])
    result = fine_tune(
        encoder,
        [*train, *dev],
        dev,
        refit_settings,
        verbose=verbose,
        refit=True,
        auxiliary=auxiliary,
    )
    result.tagger.info.training["refit"] = {
        "on": ["train", "devel"],
        "epochs": epochs,
        "selected_on_devel": None,
    }
    return result


def compile_for_training(
    model: keras.Model,
    settings: TrainSettings,
    total_steps: int,
    auxiliary: AuxiliaryTask | None = None,
) -> None:
    optimizer = bert_adamw(settings, total_steps)
    losses = (
        multitask_losses(auxiliary)
        if auxiliary is not None
        else {"loss": MaskedTokenCrossEntropy()}
    )
    model.compile(optimizer=optimizer, jit_compile=settings.jit_compile, **losses)


def fine_tune(
    encoder: Encoder,
    train: Sequence[Sentence],
    dev: Sequence[Sentence],
    settings: TrainSettings,
    *,
    initial_weights: list[np.ndarray] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    on_epoch: EpochHook | None = None,
    verbose: int | str = "auto",
    refit: bool = False,
    auxiliary: AuxiliaryTask | None = None,
) -> TrainResult:
    """Train a classifier on `train`, keep the epoch with the best strict F1 on `dev`.

    `refit` is for `dev` already inside `train` (:func:`refit_on_train_and_devel`): no
    epoch is scored or chosen, every epoch of `settings` runs and the last one is kept.
    `auxiliary` (:mod:`training.multitask`) trains a second label set of the same
    sentences through its own head beside the classifier; only the classifier is kept.
    """
    keras.utils.set_random_seed(settings.seed)
    wordpiece = WordPieceEncoder.from_vocab_file(encoder.vocab_path, lowercase=encoder.lowercase)
    model = build_token_classifier(encoder.backbone, len(LABELS), dropout=settings.dropout)
    if initial_weights is not None:
        model.set_weights(initial_weights)
    label_ids = {label: index for index, label in enumerate(LABELS)}
    windows = training_windows(train, wordpiece, settings.windows)
    batches = WindowBatches(
        windows,
        train,
        label_ids,
        batch_size=settings.batch_size,
        pad_id=wordpiece.pad_id,
        seed=settings.seed,
        max_batches=settings.max_steps,
        pool_batches=settings.length_pool_batches,
        aux_sentences=auxiliary.train if auxiliary is not None else None,
        aux_label_ids=auxiliary.label_ids() if auxiliary is not None else None,
    )
    trained = multitask_trainer(model, auxiliary) if auxiliary is not None else model
    compile_for_training(trained, settings, len(batches) * settings.epochs, auxiliary)
    metadata = training_metadata(encoder, settings)
    tagger = Tagger(LoadedModel(model, wordpiece, metadata, Path()))
    evaluation = DevEvaluation(
        tagger,
        dev,
        settings.patience,
        on_epoch,
        keep_recent=0 if refit else settings.average_last,
        score=not refit,
        kept_model=model,
    )
    fit_batches(
        trained,
        batches,
        epochs=settings.epochs,
        callbacks=[evaluation, *callbacks],
        verbose=verbose,
    )
    averaged = average_recent_epochs(evaluation, tagger, dev)
    if refit:
        metadata.metrics = {}  # dev was trained on: no clean dev figure exists
    elif averaged is not None and averaged["kept"]:
        metadata.metrics = {"dev": averaged["dev"]}
    else:
        if evaluation.best_weights is not None:
            model.set_weights(evaluation.best_weights)
        metadata.metrics = (
            {"dev": evaluation.history[evaluation.best_epoch - 1]["dev"]}
            if evaluation.history
            else {}
        )
    metadata.training = {
        **settings_as_json(settings),
        "train_sentences": len(train),
        "train_windows": len(windows),
        "best_epoch": evaluation.best_epoch,
        "history": evaluation.history,
        **({"averaged": averaged} if averaged else {}),
        **({"auxiliary": auxiliary.describe()} if auxiliary is not None else {}),
    }
    return TrainResult(tagger, evaluation.history, evaluation.best_epoch, evaluation.seconds)


def settings_from_args(args: argparse.Namespace) -> TrainSettings:
    """The named recipe with any flags given on the command line applied over it."""
    settings = recipe(args.recipe)
    overrides = {
        "learning_rate": args.lr,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "max_steps": args.max_steps,
        "decoder": args.decoder,
        "patience": args.patience,
        "adam_epsilon": args.adam_epsilon,
        "length_pool_batches": args.length_pool_batches,
        "average_last": args.average_last,
    }
    settings = dataclasses.replace(
        settings, **{k: v for k, v in overrides.items() if v is not None}
    )
    if args.jit_compile:
        settings.jit_compile = True
    window_overrides = {
        "max_words": args.max_words,
        "max_tokens": args.max_tokens,
        "context_tokens": args.context_tokens,
        "cross_sentence": args.cross_sentence,
        "packed": args.packed_windows,
    }
    chosen = {k: v for k, v in window_overrides.items() if v is not None}
    if chosen:
        settings.windows = dataclasses.replace(settings.windows, **chosen)
    return settings


PROG = "python -m training.train"


def _number(kind: type, minimum: float, *, above: bool = False) -> Callable[[str], Any]:
    """An argparse type: a number of `kind` at least `minimum` (more than it if `above`)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if value < minimum or (above and value == minimum):
            bound = f"more than {minimum}" if above else f"{minimum} or more"
            raise argparse.ArgumentTypeError(f"{text} is too small: use {bound}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


COUNT = _number(int, 1)
POSITIVE = _number(float, 0.0, above=True)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description=__doc__.splitlines()[0],
        epilog="recipes (--recipe NAME; flags override single values):\n" + describe_recipes(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, help="folder to write the trained model to")
    parser.add_argument(
        "--encoder", default=None, help="encoder folder or preset (default: MiniLM)"
    )
    parser.add_argument(
        "--data-dir", default=None, help="folder with train/devel/test.tsv (default: $BC5CDR_DIR)"
    )
    parser.add_argument(
        "--recipe", choices=sorted(RECIPES), default="default", help="see the list below"
    )
    parser.add_argument("--epochs", type=COUNT)
    parser.add_argument("--lr", type=POSITIVE, help="peak learning rate")
    parser.add_argument("--batch-size", type=COUNT)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--patience", type=COUNT)
    parser.add_argument("--adam-epsilon", type=POSITIVE)
    parser.add_argument(
        "--length-pool-batches",
        type=COUNT,
        help="sort windows by length within pools of N batches (1: plain shuffle)",
    )
    parser.add_argument("--max-steps", type=COUNT, help="cap batches per epoch (smoke runs)")
    parser.add_argument(
        "--average-last",
        type=COUNT,
        help="also score the mean of the last N epochs' weights on dev; kept if better",
    )
    parser.add_argument(
        "--max-train-sentences", type=COUNT, help="use only the first N train sentences"
    )
    parser.add_argument(
        "--max-dev-sentences", type=COUNT, help="use only the first N devel sentences"
    )
    parser.add_argument(
        "--max-words", type=COUNT, help="training chunks hold at most N words (default 30)"
    )
    parser.add_argument("--max-tokens", type=int, help="window length in WordPiece tokens")
    parser.add_argument("--context-tokens", type=int, help="context pieces around each chunk")
    parser.add_argument(
        "--cross-sentence",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="let context come from neighbouring sentences",
    )
    parser.add_argument(
        "--packed-windows",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="label as many consecutive words as fit in each training window (of several "
        "sentences with --cross-sentence), with context-tokens/2 context pieces on each "
        "side; --max-words is then unused",
    )
    parser.add_argument(
        "--aux-labels",
        type=Path,
        help="multi-task: a folder whose train.tsv labels the same sentences for a second "
        "entity type (e.g. BC5CDR-chem), trained through its own head; not saved",
    )
    parser.add_argument(
        "--aux-entity-type",
        default=DEFAULT_AUX_ENTITY_TYPE,
        help=f"the entity type of --aux-labels (default {DEFAULT_AUX_ENTITY_TYPE})",
    )
    parser.add_argument(
        "--aux-weight",
        type=POSITIVE,
        default=DEFAULT_AUX_WEIGHT,
        help=f"the auxiliary loss's weight against the disease loss (default {DEFAULT_AUX_WEIGHT})",
    )
    parser.add_argument("--decoder", choices=sorted(DECODERS))
    parser.add_argument("--jit-compile", action="store_true", help="compile train steps with XLA")
    parser.add_argument("--no-test", action="store_true", help="skip the test-set evaluation")
    parser.add_argument(
        "--refit-on-devel",
        action="store_true",
        help="after the devel-selected run, train again on train+devel for its best epoch "
        "count and save that model (it has no clean dev F1)",
    )
    parser.add_argument(
        "--refit-epochs",
        type=COUNT,
        help="skip the devel-selected run: train on train+devel for N epochs, a count an "
        "earlier devel-selected run of the same recipe chose (its model.json's best_epoch)",
    )
    parser.add_argument(
        "--keep-selected",
        type=Path,
        help="with --refit-on-devel: also save the devel-selected model to this folder",
    )
    return parser


def check_writable_destination(out: Path) -> None:
    """Fail before training, not after it, when `--out` cannot be written."""
    parent = out.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if out.exists() and not out.is_dir():
        raise TaggerError(f"{out} is a file, not a folder", where="--out", fix="pass a folder")
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise TaggerError(
            f"cannot write the model folder {out}: {parent} is not writable",
            where="--out",
            fix="pass --out a folder in a writable place",
        )


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from training.data import file_sha256, load_split, split_path

    settings = settings_from_args(args)
    check_writable_destination(Path(args.out))
    if args.keep_selected is not None:
        if not args.refit_on_devel:
            raise TaggerError(
                "--keep-selected saves the devel-selected model of a refit",
                fix="add --refit-on-devel, or drop --keep-selected",
            )
        check_writable_destination(args.keep_selected)
    if args.refit_epochs is not None and args.refit_on_devel:
        raise TaggerError(
            "--refit-epochs and --refit-on-devel both set the refit's epoch count",
            fix="keep --refit-on-devel to choose it on devel in this run, or --refit-epochs "
            "to take it from an earlier one",
        )
    train = load_split("train", args.data_dir)[: args.max_train_sentences]
    dev = load_split("devel", args.data_dir)[: args.max_dev_sentences]
    auxiliary = (
        load_auxiliary_task(
            args.aux_labels,
            train,
            dev if args.refit_on_devel or args.refit_epochs is not None else (),
            entity_type=args.aux_entity_type,
            weight=args.aux_weight,
        )
        if args.aux_labels is not None
        else None
    )
    encoder = load_encoder(args.encoder)
    if args.refit_epochs is not None:
        print(f"refit on train and devel for {args.refit_epochs} epochs", file=sys.stderr)
        result = refit_for_epochs(
            encoder, train, dev, settings, args.refit_epochs, auxiliary=auxiliary
        )
    else:
        result = fine_tune(encoder, train, dev, settings, auxiliary=auxiliary)
    data = {
        split: {
            "file": split_path(split, args.data_dir).name,
            "sha256": file_sha256(split_path(split, args.data_dir)),
        }
        for split in ("train", "devel", "test")
    }
    if args.refit_on_devel:
        if args.keep_selected:
            result.tagger.info.data = data
            kept = save_model_folder(
                result.tagger.model, encoder.vocab_path, result.tagger.info, args.keep_selected
            )
            print(f"saved the devel-selected model to {kept}", file=sys.stderr)
        print(
            f"refit on train and devel for {result.best_epoch} epochs (chosen on devel)",
            file=sys.stderr,
        )
        # Training moved the weights of this encoder's backbone: start again from the file.
        result = refit_on_train_and_devel(
            load_encoder(args.encoder), train, dev, settings, result, auxiliary=auxiliary
        )
    metadata = result.tagger.info
    metadata.data = data
    if not args.no_test:
        from training.evaluate import evaluate_tagger

        test_scores = evaluate_tagger(
            scoring_tagger(result.tagger), load_split("test", args.data_dir)
        )
        metadata.metrics["test"] = {k: test_scores[k] for k in SCORE_KEYS}
        print(f"test: strict F1 {format_score(test_scores['f1'])}", file=sys.stderr)
    folder = save_model_folder(result.tagger.model, encoder.vocab_path, metadata, args.out)
    print(
        f"saved {folder} (version {metadata.version}, best epoch {result.best_epoch})",
        file=sys.stderr,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status 0, or 2 after one `python -m training.train: error: ...` line on stderr."""
    return run_cli(lambda: run(argv), prog=PROG)


if __name__ == "__main__":
    raise SystemExit(main())
