"""Domain-adaptive pretraining: continue an encoder's masked-language-model training on text.

Usage:
    python -m training.adapt --text FILE [FILE ...] --out ENCODER_DIR [--encoder ENC]
        [--steps N | --epochs E] [--batch-size B] [--max-tokens T] [--lr LR]
        [--mask-rate 0.15] [--seed 13] [--max-sentences N] [--checkpoint-every K]

The text files hold one sentence or passage per line (UTF-8; blank lines are skipped).
Lines are cut into WordPiece with the encoder's own vocabulary and packed, in file
order, into sequences of at most ``--max-tokens`` pieces (``[CLS] a [SEP] b [SEP] ...``;
a line longer than that is split between words). Each step draws a batch from a
per-epoch shuffle and masks it with **whole-word masking**: about ``--mask-rate`` of the
pieces are chosen as whole words (a word is a piece and the ``##`` pieces that follow
it), and each chosen word is, as a whole, ``[MASK]`` (80 %), random pieces (10 %) or left
as it is (10 %); special tokens are never chosen. The MLM head is KerasHub's
``BertMaskedLM`` head, whose output projection is tied to the token embeddings, as in BERT.
AdamW, linear warm-up and decay, gradient clipping, a fixed seed.

``ENCODER_DIR`` becomes an encoder folder that ``python -m training.train --encoder
ENCODER_DIR`` loads: the backbone as a KerasHub preset (``config.json``,
``model.weights.h5``), ``vocab.txt``, ``tokenizer_config.json`` (the casing),
``mlm_head.npz`` (the MLM head, so that adapting the result again continues with it) and
``adapt.json`` (what was done: source encoder, files and their sha256, steps, final MLM
loss, seconds).

Resuming: every ``--checkpoint-every`` steps the weights, the optimizer state (with its
step), the dropout RNG state and the step are written to ``ENCODER_DIR/.adapt-checkpoint/``
(atomically). The batch order and the masks are functions of ``--seed`` and the step, so
rerunning the same command after a kill continues from the last checkpoint and ends
with the weights of an uninterrupted run. A checkpoint written by a different command
(other files, flags or encoder) is refused rather than mixed in.

Example (the masking alone, on a ten-piece vocabulary):

>>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "renal", "fail", "##ure", "was"]
>>> masker = WholeWordMasker({token: index for index, token in enumerate(vocab)})
>>> masker.words(np.array([2, 5, 6, 7, 8, 3]))  # [CLS] renal fail ##ure was [SEP]
[[1], [2, 3], [4]]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tagger.cli import ArgumentParser
from tagger.encoders import Encoder, load_encoder
from tagger.errors import TaggerError, run_cli
from tagger.model import IGNORE_INDEX, MaskedTokenCrossEntropy
from tagger.tokenization import WordPieceEncoder, read_vocab
from training.data import file_sha256
from training.schedule import bert_adamw
from training.train import COUNT, POSITIVE, check_writable_destination

PROG = "python -m training.adapt"
CHECKPOINT_DIR = ".adapt-checkpoint"
RECORD_FILE = "adapt.json"
HEAD_FILE = "mlm_head.npz"
MASK_TOKEN = "[MASK]"
StepHook = Callable[[int, float], None]
StartHook = Callable[[int, int], None]


@dataclass
class AdaptSettings:
    """How to continue masked-language-model pretraining.

    Args:
        steps: optimizer steps in all; ``None`` takes ``epochs`` passes over the data.
        epochs: passes over the packed sequences when ``steps`` is ``None``.
        batch_size: sequences per step.
        max_tokens: pieces per sequence, ``[CLS]`` and ``[SEP]`` included.
        learning_rate: peak AdamW learning rate (after linear warm-up).
        mask_rate: share of a sequence's word pieces chosen for prediction.
        seed: seeds the head's initial weights, dropout, the batch order and the masks.
        max_sentences: use only the first N non-blank lines of the files, in order.
        checkpoint_every: steps between checkpoints in ``ENCODER_DIR/.adapt-checkpoint/``.
        warmup_ratio: share of all steps spent warming up.
        weight_decay: AdamW decay (not on biases and LayerNorm).
        clip_norm: global gradient-norm clip.
        adam_epsilon: AdamW epsilon.
        jit_compile: compile train steps with XLA.
    """

    steps: int | None = None
    epochs: int = 1
    batch_size: int = 32
    max_tokens: int = 128
    learning_rate: float = 5e-5
    mask_rate: float = 0.15
    seed: int = 13
    max_sentences: int | None = None
    checkpoint_every: int = 500
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    adam_epsilon: float = 1e-6
    jit_compile: bool = False

    @property
    def max_predictions(self) -> int:
        """Masked positions per sequence the model predicts (the most whole words reach)."""
        return max(1, math.ceil(self.max_tokens * self.mask_rate))


# ---------------------------------------------------------------- text files


@dataclass
class TextFile:
    """One ``--text`` file: its lines in use (after ``--max-sentences``) and its sha256.

    Args:
        path: the file.
        sha256: hex digest of the whole file.
        lines: its non-blank lines, stripped, in order (possibly capped).
    """

    path: Path
    sha256: str
    lines: list[str] = field(repr=False)


def read_text_files(
    paths: Sequence[str | Path], max_sentences: int | None = None
) -> list[TextFile]:
    """Read every file (UTF-8, one sentence or passage a line); a bad one is an error.

    Args:
        paths: the files, read in this order.
        max_sentences: keep only the first N non-blank lines across all files.

    Raises:
        TaggerError: a file that is missing, a folder, unreadable, not UTF-8 (naming the
            line) or without any text.
    """
    if not paths:
        raise TaggerError("no text file given", where="--text", fix="pass --text FILE")
    files: list[TextFile] = []
    remaining = max_sentences
    for name in paths:
        path = Path(name)
        where = str(path)
        if not path.exists():
            raise TaggerError("no such file", where=where, fix="pass an existing --text file")
        if not path.is_file():
            raise TaggerError("not a file", where=where, fix="pass text files to --text")
        try:
            data = path.read_bytes()
        except OSError as error:
            raise TaggerError(f"cannot be read ({error.strerror})", where=where) from None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = data[: error.start].count(b"\n") + 1
            raise TaggerError(
                f"not UTF-8 ({error.reason} at byte {error.start})",
                where=f"{path}:{line}",
                fix="convert the file to UTF-8 (e.g. `iconv -t utf-8`)",
            ) from None
        lines = [line.strip() for line in text.splitlines()]
        lines = [line for line in lines if line]
        if not lines:
            raise TaggerError(
                "has no text (every line is blank)",
                where=where,
                fix="pass a file with one sentence or passage per line",
            )
        if remaining is not None:
            lines, remaining = lines[:remaining], max(remaining - len(lines), 0)
        files.append(TextFile(path, file_sha256(path), lines))
    return files


# ---------------------------------------------------------------- sequences and masks


def pack_sequences(
    lines: Sequence[str], wordpiece: WordPieceEncoder, max_tokens: int
) -> list[np.ndarray]:
    """Lines as WordPiece, packed in order into ``[CLS] a [SEP] b [SEP] ...`` sequences.

    A line longer than ``max_tokens - 2`` pieces is split between words (a single word
    longer than that is cut). Words are split at white space, then WordPiece splits
    punctuation and sub-words.

    Args:
        lines: the text, one sentence or passage each.
        wordpiece: the encoder's WordPiece.
        max_tokens: the most pieces in a sequence, ``[CLS]`` and ``[SEP]`` included.
    """
    room = max_tokens - 2
    chunks: list[list[int]] = []
    for words in wordpiece.encode_sentences([line.split() for line in lines]):
        chunk: list[int] = []
        for pieces in words:
            if chunk and len(chunk) + len(pieces) > room:
                chunks.append(chunk)
                chunk = []
            chunk.extend(pieces[:room])
        if chunk:
            chunks.append(chunk)
    sequences: list[np.ndarray] = []
    current = [wordpiece.cls_id]
    for chunk in chunks:
        if len(current) > 1 and len(current) + len(chunk) + 1 > max_tokens:
            sequences.append(np.asarray(current, dtype=np.int32))
            current = [wordpiece.cls_id]
        current += [*chunk, wordpiece.sep_id]
    if len(current) > 1:
        sequences.append(np.asarray(current, dtype=np.int32))
    return sequences


@dataclass
class MaskedSequence:
    """One sequence after masking.

    Args:
        token_ids: the input pieces, some replaced.
        positions: where the model must predict, in increasing order.
        labels: the original piece at each of those positions.
    """

    token_ids: np.ndarray
    positions: np.ndarray
    labels: np.ndarray


class WholeWordMasker:
    """BERT's whole-word masking: words chosen whole, each masked, randomised or kept whole.

    Args:
        vocab: the WordPiece vocabulary (token to id).
        mask_rate: share of a sequence's word pieces chosen.
        max_predictions: the most pieces chosen in one sequence.
        mask_share: share of chosen words replaced by ``[MASK]``.
        random_share: share of chosen words replaced by random pieces (the rest are kept).
    """

    def __init__(
        self,
        vocab: dict[str, int],
        *,
        mask_rate: float = 0.15,
        max_predictions: int | None = None,
        mask_share: float = 0.8,
        random_share: float = 0.1,
    ) -> None:
        if MASK_TOKEN not in vocab:
            raise TaggerError(
                f"the vocabulary has no {MASK_TOKEN} token",
                where="--encoder",
                fix="use the vocab.txt of a BERT encoder",
            )
        size = max(vocab.values()) + 1
        self.mask_id = vocab[MASK_TOKEN]
        self.mask_rate = mask_rate
        self.max_predictions = max_predictions
        self.mask_share = mask_share
        self.random_share = random_share
        self.special = np.zeros(size, dtype=bool)  # [CLS], [UNK], [unused3], <S>: never chosen
        self.continuation = np.zeros(size, dtype=bool)
        for token, index in vocab.items():
            self.special[index] |= _is_special(token)
            self.continuation[index] |= token.startswith("##") and len(token) > 2
        self.random_ids = np.flatnonzero(~self.special)

    def words(self, token_ids: np.ndarray) -> list[list[int]]:
        """The positions of each word: a piece and the ``##`` pieces right after it.

        Args:
            token_ids: one sequence of piece ids.
        """
        groups: list[list[int]] = []
        previous_in_word = False
        for position, token in enumerate(token_ids.tolist()):
            if self.special[token]:
                previous_in_word = False
                continue
            if self.continuation[token] and previous_in_word:
                groups[-1].append(position)
            else:
                groups.append([position])
            previous_in_word = True
        return groups

    def mask(self, token_ids: np.ndarray, rng: np.random.Generator) -> MaskedSequence:
        """Choose whole words up to the rate and mask them.

        Args:
            token_ids: one sequence of piece ids.
            rng: the random generator (the caller seeds it per step).
        """
        words = self.words(token_ids)
        candidates = sum(len(word) for word in words)
        wanted = max(1, round(candidates * self.mask_rate)) if candidates else 0
        if self.max_predictions is not None:
            wanted = min(wanted, self.max_predictions)
        chosen: list[list[int]] = []
        count = 0
        for index in rng.permutation(len(words)):
            word = words[index]
            if count + len(word) <= wanted:
                chosen.append(word)
                count += len(word)
            if count >= wanted:
                break
        masked = token_ids.copy()
        for word in chosen:
            draw = rng.random()
            if draw < self.mask_share:
                masked[word] = self.mask_id
            elif draw < self.mask_share + self.random_share:
                masked[word] = rng.choice(self.random_ids, size=len(word))
        positions = np.asarray(sorted(p for word in chosen for p in word), dtype=np.int32)
        return MaskedSequence(masked, positions, token_ids[positions].astype(np.int32))


def _is_special(token: str) -> bool:
    return (token.startswith("[") and token.endswith("]")) or (
        token.startswith("<") and token.endswith(">") and len(token) > 2
    )


class MaskedBatches:
    """Step ``s``'s batch: a seeded shuffle per epoch, masks seeded by the step.

    Everything is a function of ``(seed, step)``, so a resumed run sees the batches and
    masks an uninterrupted run sees. The last batch of an epoch is filled up from the
    start of the same shuffle, so every batch has the same shape.

    Args:
        sequences: the packed sequences.
        masker: the whole-word masker.
        batch_size: sequences per batch.
        max_tokens: the padded length.
        pad_id: the ``[PAD]`` id.
        seed: the seed of the shuffles and masks.
    """

    def __init__(
        self,
        sequences: Sequence[np.ndarray],
        masker: WholeWordMasker,
        *,
        batch_size: int,
        max_tokens: int,
        pad_id: int,
        seed: int,
    ) -> None:
        if not sequences:
            raise TaggerError("the text gives no sequences to train on", where="--text")
        self.sequences = list(sequences)
        self.masker = masker
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.pad_id = pad_id
        self.seed = seed
        self.steps_per_epoch = math.ceil(len(self.sequences) / batch_size)
        self._order: tuple[int, np.ndarray] | None = None

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The shuffled sequence indices of one epoch."""
        if self._order is None or self._order[0] != epoch:
            rng = np.random.default_rng((self.seed, 1, epoch))
            self._order = (epoch, rng.permutation(len(self.sequences)))
        return self._order[1]

    def batch(self, step: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The model inputs and the labels (``IGNORE_INDEX`` where nothing is predicted)."""
        epoch, index = divmod(step, self.steps_per_epoch)
        start = index * self.batch_size
        chosen = np.take(
            self.epoch_order(epoch), range(start, start + self.batch_size), mode="wrap"
        )
        rng = np.random.default_rng((self.seed, 2, step))
        rows, width = self.batch_size, self.max_tokens
        predictions = self.masker.max_predictions or width
        token_ids = np.full((rows, width), self.pad_id, dtype=np.int32)
        padding_mask = np.zeros((rows, width), dtype=bool)
        positions = np.zeros((rows, predictions), dtype=np.int32)
        labels = np.full((rows, predictions), IGNORE_INDEX, dtype=np.int32)
        for row, sequence_index in enumerate(chosen):
            masked = self.masker.mask(self.sequences[sequence_index], rng)
            length = len(masked.token_ids)
            token_ids[row, :length] = masked.token_ids
            padding_mask[row, :length] = True
            count = len(masked.positions)
            positions[row, :count] = masked.positions
            labels[row, :count] = masked.labels
        inputs = {
            "token_ids": token_ids,
            "segment_ids": np.zeros_like(token_ids),
            "padding_mask": padding_mask,
            "mask_positions": positions,
        }
        return inputs, labels


# ---------------------------------------------------------------- the model and checkpoints


def build_masked_lm(encoder: Encoder, seed: int) -> keras.Model:
    """KerasHub's ``BertMaskedLM`` over the encoder's backbone (the head tied to its embeddings).

    A head saved next to the encoder (``mlm_head.npz``, by an earlier adaptation) is
    restored; otherwise the head starts from a seeded random initialisation.

    Args:
        encoder: the encoder to adapt; its backbone is trained in place.
        seed: seeds the head's initial weights.
    """
    import keras_hub

    keras.utils.set_random_seed(seed)
    model = keras_hub.models.BertMaskedLM(encoder.backbone, preprocessor=None)
    # The pooler feeds no MLM prediction: frozen, it gets no (absent) gradient and no
    # optimizer slots; save_encoder_folder makes it trainable again.
    encoder.backbone.get_layer("pooled_dense").trainable = False
    seed_dropout(model, seed)
    saved_head = Path(encoder.source) / HEAD_FILE
    if saved_head.is_file():
        with np.load(saved_head) as stored:
            for variable in _head_variables(model):
                if variable.path in stored.files:
                    variable.assign(stored[variable.path])
    return model


def seed_dropout(model: keras.Model, seed: int) -> None:
    """Give every dropout RNG of ``model`` a state drawn from ``seed``.

    The backbone's dropout layers drew their seeds when it was loaded, from whatever the
    process had done before; a run must not depend on that.

    Args:
        model: a model whose only variables besides its weights are RNG states.
        seed: the run's seed.
    """
    weight_ids = {id(weight) for weight in model.weights}
    states = [v for v in model.variables if id(v) not in weight_ids]
    starts = np.random.default_rng((seed, 3)).integers(1, 2**31 - 1, size=len(states))
    for state, start in zip(states, starts, strict=True):
        # SeedGenerator.next() advances the second half: distinct first halves never meet.
        state.assign(np.asarray([start, 0]).astype(state.dtype))


def _head_variables(model: keras.Model) -> list[Any]:
    """The head's own weights (its output projection is the backbone's token embedding)."""
    return [v for v in model.masked_lm_head.weights if v.path.startswith("mlm_head/")]


def compile_masked_lm(model: keras.Model, settings: AdaptSettings, total_steps: int) -> None:
    """AdamW with warm-up and linear decay, no decay on biases and LayerNorm, as in BERT."""
    optimizer = bert_adamw(settings, total_steps)
    model.compile(
        optimizer=optimizer,
        loss=MaskedTokenCrossEntropy(),
        weighted_metrics=[],
        jit_compile=settings.jit_compile,
    )
    optimizer.build(model.trainable_variables)


def _state_variables(model: keras.Model) -> list[Any]:
    """Weights, dropout seed states and optimizer slots: all a resumed run needs."""
    metric_ids = {id(variable) for variable in model.metrics_variables}
    own = [variable for variable in model.variables if id(variable) not in metric_ids]
    return own + list(model.optimizer.variables)


def save_checkpoint(folder: Path, model: keras.Model, state: dict[str, Any]) -> None:
    """Write the variables and ``state`` to ``folder``, replacing it only when complete."""
    variables = _state_variables(model)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    arrays = {f"v{index:05d}": keras.ops.convert_to_numpy(v) for index, v in enumerate(variables)}
    np.savez(partial / "variables.npz", **arrays)
    state = {**state, "variables": [list(v.shape) for v in variables]}
    (partial / "state.json").write_text(json.dumps(state, indent=1), encoding="utf-8")
    previous = folder.with_name(folder.name + ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    if folder.exists():
        folder.rename(previous)
    partial.rename(folder)
    shutil.rmtree(previous, ignore_errors=True)


def read_checkpoint_state(folder: Path) -> dict[str, Any] | None:
    """The state of the checkpoint in ``folder`` (or its previous copy), if there is one."""
    for candidate in (folder, folder.with_name(folder.name + ".previous")):
        state_file = candidate / "state.json"
        if state_file.is_file() and (candidate / "variables.npz").is_file():
            state = json.loads(state_file.read_text(encoding="utf-8"))
            state["folder"] = str(candidate)
            return state
    return None


def load_checkpoint(state: dict[str, Any], model: keras.Model) -> None:
    """Assign the checkpoint's variables to the compiled model (optimizer built)."""
    variables = _state_variables(model)
    if state["variables"] != [list(v.shape) for v in variables]:
        raise TaggerError(
            "the checkpoint does not fit this encoder's model",
            where=state["folder"],
            fix="rerun with the --encoder it was written with, or delete the folder",
        )
    with np.load(Path(state["folder"]) / "variables.npz") as stored:
        for index, variable in enumerate(variables):
            variable.assign(stored[f"v{index:05d}"])


# ---------------------------------------------------------------- the run


@dataclass
class AdaptResult:
    """What :func:`adapt` did.

    Args:
        folder: the encoder folder written.
        record: the content of its ``adapt.json``.
        losses: the MLM loss of every step, from the first.
    """

    folder: Path
    record: dict[str, Any]
    losses: list[float]


def fingerprint(
    encoder: Encoder, texts: Sequence[TextFile], settings: AdaptSettings, total_steps: int
) -> dict[str, Any]:
    """What makes two runs the same run: the encoder, the data and every setting but
    how often checkpoints are written."""
    chosen = dataclasses.asdict(settings)
    chosen.pop("checkpoint_every")
    return {
        "encoder": encoder.source,
        "files": [{"name": t.path.name, "sha256": t.sha256, "lines": len(t.lines)} for t in texts],
        "settings": chosen,
        "total_steps": total_steps,
    }


def adapt(
    encoder: Encoder,
    texts: Sequence[TextFile],
    settings: AdaptSettings,
    out: str | Path,
    *,
    on_step: StepHook | None = None,
    on_start: StartHook | None = None,
    progress: bool = True,
) -> AdaptResult:
    """Continue MLM pretraining of ``encoder`` on ``texts`` and write the encoder folder.

    Resumes from ``out/.adapt-checkpoint/`` when a run of the same command left one.

    Args:
        encoder: the encoder to start from (its backbone is trained in place).
        texts: the text files (:func:`read_text_files`).
        settings: steps, batch, masking and optimizer settings.
        out: the encoder folder to write.
        on_step: called as ``on_step(step, loss)`` after every step (step counts from 1);
            an exception it raises stops the run (the last checkpoint stays).
        on_start: called as ``on_start(total_steps, step)`` before the first step (``step``:
            the steps a resumed run already did).
        progress: show a tqdm progress bar on stderr.

    Raises:
        TaggerError: ``out`` holds something else, or a checkpoint of a different run.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    started = time.perf_counter()
    wordpiece = WordPieceEncoder.from_vocab_file(encoder.vocab_path, lowercase=encoder.lowercase)
    longest = int(encoder.backbone.max_sequence_length)
    if not 8 <= settings.max_tokens <= longest:
        raise TaggerError(
            f"max_tokens={settings.max_tokens} is out of range",
            where="--max-tokens",
            fix=f"use 8 to {longest} (the encoder's longest sequence)",
        )
    masker = WholeWordMasker(
        read_vocab(encoder.vocab_path),
        mask_rate=settings.mask_rate,
        max_predictions=settings.max_predictions,
    )
    lines = [line for text in texts for line in text.lines]
    sequences = pack_sequences(lines, wordpiece, settings.max_tokens)
    batches = MaskedBatches(
        sequences,
        masker,
        batch_size=settings.batch_size,
        max_tokens=settings.max_tokens,
        pad_id=wordpiece.pad_id,
        seed=settings.seed,
    )
    total_steps = settings.steps or settings.epochs * batches.steps_per_epoch
    identity = fingerprint(encoder, texts, settings, total_steps)
    checkpoint = out / CHECKPOINT_DIR
    done = completed_record(out)
    if done is not None and done.get("fingerprint") == identity and not checkpoint.exists():
        print(f"{out} already holds this adaptation (adapt.json): nothing to do", file=sys.stderr)
        return AdaptResult(out, done, [])
    state = _resumable_state(out, checkpoint, identity)

    model = build_masked_lm(encoder, settings.seed)
    compile_masked_lm(model, settings, total_steps)
    losses: list[float] = []
    seconds_before = 0.0
    resumed_at: list[int] = []
    if state is not None:
        load_checkpoint(state, model)
        losses = [float(loss) for loss in state["losses"]]
        seconds_before = float(state["seconds"])
        resumed_at = [*state.get("resumed_at", []), int(state["step"])]
    step = len(losses)
    out.mkdir(parents=True, exist_ok=True)
    if on_start is not None:
        on_start(total_steps, step)

    def checkpoint_state() -> dict[str, Any]:
        return {
            "fingerprint": identity,
            "step": step,
            "epoch": step // batches.steps_per_epoch,
            "batch_in_epoch": step % batches.steps_per_epoch,
            "seed": settings.seed,
            "losses": losses,
            "seconds": seconds_before + time.perf_counter() - started,
            "resumed_at": resumed_at,
        }

    bar = tqdm(
        total=total_steps,
        initial=step,
        desc="adapt",
        unit="step",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    try:
        while step < total_steps:
            inputs, labels = batches.batch(step)
            model.reset_metrics()
            logs = model.train_on_batch(inputs, labels, return_dict=True)
            loss = float(logs["loss"])
            if not math.isfinite(loss):
                raise TaggerError(
                    f"the MLM loss is {loss} at step {step + 1}",
                    where="--lr",
                    fix="use a lower --lr",
                )
            losses.append(loss)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", refresh=False)
            if step % settings.checkpoint_every == 0 and step < total_steps:
                save_checkpoint(checkpoint, model, checkpoint_state())
            if on_step is not None:
                on_step(step, loss)
    finally:
        bar.close()

    seconds = seconds_before + time.perf_counter() - started
    record = {
        "source_encoder": encoder.source,
        "files": [{"path": str(t.path), "sha256": t.sha256, "lines": len(t.lines)} for t in texts],
        "sentences": len(lines),
        "sequences": len(sequences),
        "steps": total_steps,
        "steps_per_epoch": batches.steps_per_epoch,
        "epochs": round(total_steps / batches.steps_per_epoch, 3),
        "final_mlm_loss": round(float(np.mean(losses[-20:])), 4),
        "last_step_loss": round(losses[-1], 4),
        "loss_curve": _loss_curve(losses),
        "seconds": round(seconds, 1),
        "resumed_at_steps": resumed_at,
        "masking": "whole-word, 80/10/10 per word",
        "settings": dataclasses.asdict(settings),
        "fingerprint": identity,
    }
    save_encoder_folder(model, encoder, out, record)
    for leftover in (checkpoint, checkpoint.with_name(CHECKPOINT_DIR + ".previous")):
        shutil.rmtree(leftover, ignore_errors=True)
    return AdaptResult(out, record, losses)


def _resumable_state(
    out: Path, checkpoint: Path, identity: dict[str, Any]
) -> dict[str, Any] | None:
    """The checkpoint to resume from, or ``None`` for a fresh run into an empty ``out``."""
    state = read_checkpoint_state(checkpoint)
    if state is not None:
        if state["fingerprint"] != identity:
            raise TaggerError(
                "its checkpoint was written by a different command (other files, flags or encoder)",
                where=str(checkpoint),
                fix="rerun that command to resume it, or delete the folder to start over",
            )
        return state
    check_output_folder(out, allow_finished=False)
    return None


def check_output_folder(out: Path, *, allow_finished: bool = True) -> None:
    """Refuse an ``out`` that holds anything but a checkpoint (or a finished adaptation).

    Args:
        out: the ``--out`` folder.
        allow_finished: let a folder with an ``adapt.json`` pass (whether it is this
            command's is decided once the data is read).
    """
    if out.exists() and not out.is_dir():
        raise TaggerError(f"{out} is a file, not a folder", where="--out", fix="pass a folder")
    if not out.is_dir() or (allow_finished and (out / RECORD_FILE).is_file()):
        return
    others = [entry for entry in out.iterdir() if not entry.name.startswith(CHECKPOINT_DIR)]
    if others:
        raise TaggerError(
            "the folder is not empty", where=str(out), fix="pass --out a new or empty folder"
        )


def completed_record(out: Path) -> dict[str, Any] | None:
    """The ``adapt.json`` of a finished adaptation in ``out``, if there is one."""
    record_file = out / RECORD_FILE
    if not record_file.is_file():
        return None
    try:
        content = json.loads(record_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None


def _loss_curve(losses: Sequence[float], points: int = 20) -> list[float]:
    """The mean loss over each of ``points`` equal stretches of the run."""
    parts = np.array_split(np.asarray(losses, dtype=np.float64), min(points, len(losses)))
    return [round(float(part.mean()), 4) for part in parts]


def save_encoder_folder(
    model: keras.Model, encoder: Encoder, out: Path, record: dict[str, Any]
) -> Path:
    """Write the adapted backbone as an encoder folder ``--encoder`` loads, then ``adapt.json``.

    Args:
        model: the trained ``BertMaskedLM``.
        encoder: the source encoder (its vocabulary and casing are kept).
        out: the folder.
        record: what ``adapt.json`` says.
    """
    model.backbone.get_layer("pooled_dense").trainable = True
    out.mkdir(parents=True, exist_ok=True)
    (out / RECORD_FILE).unlink(missing_ok=True)  # written last: its presence means complete
    model.backbone.save_to_preset(str(out))
    if Path(encoder.vocab_path).resolve() != (out / "vocab.txt").resolve():
        shutil.copyfile(encoder.vocab_path, out / "vocab.txt")
    tokenizer_config = {"do_lower_case": encoder.lowercase}
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config), encoding="utf-8")
    np.savez(
        out / HEAD_FILE, **{v.path: keras.ops.convert_to_numpy(v) for v in _head_variables(model)}
    )
    partial = out / (RECORD_FILE + ".partial")
    partial.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    os.replace(partial, out / RECORD_FILE)
    return out


# ---------------------------------------------------------------- the command line


def build_parser() -> ArgumentParser:
    defaults = AdaptSettings()
    parser = ArgumentParser(
        prog=PROG,
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--text", nargs="+", required=True, metavar="FILE", help="UTF-8, one sentence a line"
    )
    parser.add_argument("--out", required=True, help="the encoder folder to write")
    parser.add_argument(
        "--encoder", default=None, help="encoder folder or preset to start from (default: MiniLM)"
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=COUNT, help="optimizer steps in all")
    length.add_argument("--epochs", type=COUNT, help="passes over the text (default 1)")
    parser.add_argument("--batch-size", type=COUNT, default=defaults.batch_size)
    parser.add_argument(
        "--max-tokens", type=COUNT, default=defaults.max_tokens, help="pieces per sequence"
    )
    parser.add_argument("--lr", type=POSITIVE, default=defaults.learning_rate, help="peak LR")
    parser.add_argument(
        "--mask-rate", type=_rate, default=defaults.mask_rate, help="share of pieces predicted"
    )
    parser.add_argument("--seed", type=_seed, default=defaults.seed)
    parser.add_argument("--max-sentences", type=COUNT, help="use only the first N lines")
    parser.add_argument(
        "--checkpoint-every",
        type=COUNT,
        default=defaults.checkpoint_every,
        help="steps between checkpoints in ENCODER_DIR/.adapt-checkpoint/",
    )
    parser.add_argument("--jit-compile", action="store_true", help="compile train steps with XLA")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a float") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is out of range: use a share above 0, below 1")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an int") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative: use 0 or more")
    return value


def settings_from_args(args: argparse.Namespace) -> AdaptSettings:
    """The settings the flags ask for."""
    return AdaptSettings(
        steps=args.steps,
        epochs=args.epochs or 1,
        batch_size=args.batch_size,
        max_tokens=args.max_tokens,
        learning_rate=args.lr,
        mask_rate=args.mask_rate,
        seed=args.seed,
        max_sentences=args.max_sentences,
        checkpoint_every=args.checkpoint_every,
        jit_compile=args.jit_compile,
    )


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = settings_from_args(args)
    out = Path(args.out)
    check_writable_destination(out)
    check_output_folder(out)  # before the slow part; adapt() checks the rest
    texts = read_text_files(args.text, settings.max_sentences)
    encoder = load_encoder(args.encoder)
    result = adapt(encoder, texts, settings, out, progress=not args.no_progress)
    record = result.record
    print(
        f"saved {out} ({record['steps']} steps, final MLM loss {record['final_mlm_loss']:.3f}, "
        f"{record['seconds']:.0f} s)",
        file=sys.stderr,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status 0, or 2 after one `python -m training.adapt: error: ...` line on stderr."""
    return run_cli(lambda: run(argv), prog=PROG)


if __name__ == "__main__":
    raise SystemExit(main())
