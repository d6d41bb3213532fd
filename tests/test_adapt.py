"""Domain-adaptive pretraining: whole-word masks, the loss falls, resume equals one run, the
folder is an encoder that training.train fine-tunes, and bad text files are one-line errors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from tagger.bio import write_bio
from tagger.encoders import Encoder, load_encoder
from tagger.errors import EXIT_USER_ERROR, TaggerError
from tagger.model import IGNORE_INDEX
from tagger.model_folder import load_model_folder
from tagger.tokenization import WordPieceEncoder
from tests.tiny import tiny_backbone, tiny_corpus, tiny_vocabulary
from training import train
from training.adapt import (
    CHECKPOINT_DIR,
    PROG,
    AdaptSettings,
    MaskedBatches,
    StepHook,
    WholeWordMasker,
    adapt,
    main,
    pack_sequences,
    read_text_files,
)
from training.data import file_sha256

STEPS = 40
CHECKPOINT_EVERY = 10
KILLED_AT = 23  # after the checkpoint of step 20: steps 21-23 are lost and redone


def tiny_settings(seed: int = 13) -> AdaptSettings:
    """A few dozen steps of 8 short sequences at a high learning rate."""
    return AdaptSettings(
        steps=STEPS,
        batch_size=8,
        max_tokens=32,
        learning_rate=5e-3,
        seed=seed,
        checkpoint_every=CHECKPOINT_EVERY,
    )


@dataclass
class Workspace:
    encoder_dir: Path
    text: Path
    root: Path

    def encoder(self) -> Encoder:
        """A fresh copy of the source encoder, as each command line run loads it."""
        return load_encoder(self.encoder_dir)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("adapt")
    encoder_dir = root / "encoder"
    encoder_dir.mkdir()
    vocab = tiny_vocabulary()
    (encoder_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    # Dropout on, so that resuming must also restore the dropout RNG state.
    backbone = tiny_backbone(
        len(vocab), seed=1, num_layers=2, hidden_dim=16, intermediate_dim=32,
        max_sequence_length=64, dropout=0.1,
    )  # fmt: skip
    backbone.save_to_preset(str(encoder_dir))
    text = root / "pubmed.txt"
    lines = [" ".join(sentence.words) for sentence in tiny_corpus()]
    text.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    return Workspace(encoder_dir, text, root)


@dataclass
class Finished:
    command: list[str]
    folder: Path
    record: dict[str, Any]


@pytest.fixture(scope="module")
def uninterrupted(workspace: Workspace) -> Finished:
    """`tiny_settings()` through the command line, in one go."""
    out = workspace.root / "uninterrupted"
    command = [
        "--text", str(workspace.text), "--out", str(out), "--encoder", str(workspace.encoder_dir),
        "--steps", str(STEPS), "--batch-size", "8", "--max-tokens", "32", "--lr", "5e-3",
        "--checkpoint-every", str(CHECKPOINT_EVERY), "--no-progress",
    ]  # fmt: skip
    assert main(command) == 0
    record = json.loads((out / "adapt.json").read_text(encoding="utf-8"))
    return Finished(command, out, record)


def backbone_weights(folder: Path) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(w) for w in load_encoder(folder).backbone.weights]


# ---------------------------------------------------------------- masking


SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
STARTS = [f"w{index}" for index in range(30)]
CONTINUATIONS = ["##a", "##b", "##c", "##d"]
VOCAB = {token: index for index, token in enumerate(SPECIALS + STARTS + CONTINUATIONS)}
START_IDS = [VOCAB[token] for token in STARTS]
CONTINUATION_IDS = [VOCAB[token] for token in CONTINUATIONS]


def random_sequence(rng: np.random.Generator) -> tuple[np.ndarray, list[list[int]]]:
    """``[CLS] words [SEP] words [SEP]`` with 1-3 pieces a word and a stray ``[UNK]``."""
    ids = [VOCAB["[CLS]"]]
    words: list[list[int]] = []
    for part in range(2):
        for _ in range(int(rng.integers(5, 20))):
            if rng.random() < 0.05:
                ids.append(VOCAB["[UNK]"])
                continue
            size = int(rng.integers(1, 4))
            words.append(list(range(len(ids), len(ids) + size)))
            ids.append(int(rng.choice(START_IDS)))
            ids += [int(rng.choice(CONTINUATION_IDS)) for _ in range(size - 1)]
        ids.append(VOCAB["[SEP]"])
        del part
    return np.asarray(ids, dtype=np.int32), words


def test_words_are_a_piece_and_its_continuations() -> None:
    rng = np.random.default_rng(0)
    masker = WholeWordMasker(VOCAB)
    for _ in range(50):
        ids, words = random_sequence(rng)
        assert masker.words(ids) == words


def test_whole_words_are_masked_together_at_about_the_rate() -> None:
    rng = np.random.default_rng(1)
    masker = WholeWordMasker(VOCAB, mask_rate=0.15, max_predictions=20)
    special_ids = {VOCAB[token] for token in SPECIALS}
    chosen_pieces = candidate_pieces = 0
    outcomes = {"mask": 0, "random": 0, "keep": 0}
    for _ in range(1000):
        ids, words = random_sequence(rng)
        masked = masker.mask(ids, rng)
        positions = set(masked.positions.tolist())
        assert len(positions) == len(masked.positions) <= 20
        assert not any(ids[p] in special_ids for p in positions), "special tokens are never chosen"
        np.testing.assert_array_equal(masked.labels, ids[masked.positions])
        untouched = [p for p in range(len(ids)) if p not in positions]
        np.testing.assert_array_equal(masked.token_ids[untouched], ids[untouched])
        for word in words:
            inside = [p in positions for p in word]
            assert all(inside) or not any(inside), "a word is chosen whole or not at all"
            if not all(inside):
                continue
            pieces = masked.token_ids[word]
            if (pieces == VOCAB["[MASK]"]).all():
                outcomes["mask"] += 1
            elif (pieces == ids[word]).all():
                outcomes["keep"] += 1
            else:
                outcomes["random"] += 1
                assert not any(piece in special_ids for piece in pieces.tolist())
        assert not (masked.token_ids[untouched] == VOCAB["[MASK]"]).any()
        chosen_pieces += len(positions)
        candidate_pieces += sum(len(word) for word in words)
    assert 0.13 <= chosen_pieces / candidate_pieces <= 0.16
    words_chosen = sum(outcomes.values())
    assert abs(outcomes["mask"] / words_chosen - 0.8) < 0.03
    assert abs(outcomes["random"] / words_chosen - 0.1) < 0.03  # a random piece may equal it
    assert abs(outcomes["keep"] / words_chosen - 0.1) < 0.03


def test_batches_are_a_function_of_seed_and_step() -> None:
    rng = np.random.default_rng(2)
    sequences = [random_sequence(rng)[0] for _ in range(10)]
    masker = WholeWordMasker(VOCAB, max_predictions=8)

    def batches(seed: int) -> MaskedBatches:
        return MaskedBatches(sequences, masker, batch_size=4, max_tokens=128, pad_id=0, seed=seed)

    first, again = batches(13), batches(13)
    assert first.steps_per_epoch == 3
    for step in (5, 0, 4):  # any order: nothing depends on the steps before
        inputs, labels = first.batch(step)
        inputs_again, labels_again = again.batch(step)
        for key, value in inputs.items():
            np.testing.assert_array_equal(value, inputs_again[key])
        np.testing.assert_array_equal(labels, labels_again)
    inputs, labels = first.batch(0)
    assert inputs["token_ids"].shape == (4, 128) and labels.shape == (4, 8)
    assert inputs["mask_positions"].shape == (4, 8)
    assert ((labels == IGNORE_INDEX) | (labels >= 5)).all()
    assert not np.array_equal(batches(14).batch(0)[0]["token_ids"], inputs["token_ids"])
    seen = {tuple(first.epoch_order(1)[i * 4 : i * 4 + 4]) for i in range(3)}
    assert set().union(*seen) == set(range(10)), "an epoch covers every sequence"


def test_lines_are_packed_between_words(workspace: Workspace) -> None:
    wordpiece = WordPieceEncoder.from_vocab_file(
        workspace.encoder_dir / "vocab.txt", lowercase=True
    )
    lines = [" ".join(sentence.words) for sentence in tiny_corpus()[:12]]
    lines.append(" ".join(["renal failure"] * 12))  # 24 pieces: longer than one sequence
    sequences = pack_sequences(lines, wordpiece, max_tokens=16)
    specials = {wordpiece.cls_id, wordpiece.sep_id}
    for sequence in sequences:
        assert len(sequence) <= 16
        assert sequence[0] == wordpiece.cls_id and sequence[-1] == wordpiece.sep_id
    pieces = [int(p) for sequence in sequences for p in sequence if p not in specials]
    encoded = wordpiece.encode_sentences([line.split() for line in lines])
    expected = [piece for words in encoded for word in words for piece in word]
    assert pieces == expected
    assert len(sequences) < len(lines), "short lines share a sequence"


# ---------------------------------------------------------------- training and resuming


def test_the_loss_goes_down_on_repetitive_text(uninterrupted: Finished) -> None:
    curve = uninterrupted.record["loss_curve"]  # the mean of each 2 steps
    assert len(curve) == 20 and all(np.isfinite(curve))
    assert np.mean(curve[-3:]) < 0.85 * np.mean(curve[:3])
    assert uninterrupted.record["final_mlm_loss"] == pytest.approx(np.mean(curve[-10:]), abs=1e-3)


class Killed(Exception):
    """Stands for the process being killed."""


def kill_at(step_to_die: int) -> StepHook:
    def on_step(step: int, loss: float) -> None:
        if step == step_to_die:
            raise Killed

    return on_step


def test_a_killed_run_resumes_to_the_uninterrupted_result(
    workspace: Workspace, uninterrupted: Finished
) -> None:
    texts = read_text_files([workspace.text])
    out = workspace.root / "killed"
    with pytest.raises(Killed):
        adapt(workspace.encoder(), texts, tiny_settings(), out, on_step=kill_at(KILLED_AT))
    state = json.loads((out / CHECKPOINT_DIR / "state.json").read_text(encoding="utf-8"))
    per_epoch = uninterrupted.record["steps_per_epoch"]
    assert state["step"] == 20 and state["seed"] == 13
    assert (state["epoch"], state["batch_in_epoch"]) == divmod(20, per_epoch)
    assert not (out / "adapt.json").exists()
    with pytest.raises(TaggerError, match="different command"):  # other flags: refused
        adapt(workspace.encoder(), texts, tiny_settings(seed=14), out, progress=False)

    resumed = adapt(workspace.encoder(), texts, tiny_settings(), out, progress=False)
    assert resumed.record["resumed_at_steps"] == [20]
    record, expected = resumed.record, uninterrupted.record
    assert record["loss_curve"][:10] == expected["loss_curve"][:10], "the same steps to 20"
    np.testing.assert_allclose(record["loss_curve"], expected["loss_curve"], rtol=1e-4)
    assert record["fingerprint"] == expected["fingerprint"]
    for got, want in zip(
        backbone_weights(out), backbone_weights(uninterrupted.folder), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert not (out / CHECKPOINT_DIR).exists(), "a finished run leaves no checkpoint"


def test_the_folder_is_an_encoder_that_train_fine_tunes(
    workspace: Workspace, uninterrupted: Finished, capsys: pytest.CaptureFixture[str]
) -> None:
    out = uninterrupted.folder
    encoder = load_encoder(out)
    assert encoder.backbone.hidden_dim == 16 and encoder.lowercase
    assert encoder.vocab_path.read_text() == (workspace.encoder_dir / "vocab.txt").read_text()
    source = backbone_weights(workspace.encoder_dir)
    assert any(not np.allclose(a, b) for a, b in zip(source, backbone_weights(out), strict=True))

    corpus = tiny_corpus()
    data = workspace.root / "bio"
    data.mkdir()
    write_bio(corpus[:40], data / "train.tsv")
    write_bio(corpus[40:50], data / "devel.tsv")
    write_bio(corpus[50:], data / "test.tsv")
    model_dir = workspace.root / "model"
    code = train.main(
        [
            "--out", str(model_dir), "--encoder", str(out), "--data-dir", str(data),
            "--epochs", "1", "--max-steps", "2", "--batch-size", "8",
            "--max-tokens", "32", "--context-tokens", "8", "--no-test",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert load_model_folder(model_dir).metadata.encoder_source == str(out)


# ---------------------------------------------------------------- the command line


def test_command_line_writes_adapt_json(
    workspace: Workspace, uninterrupted: Finished, capsys: pytest.CaptureFixture[str]
) -> None:
    record = uninterrupted.record
    assert record["source_encoder"] == str(workspace.encoder_dir)
    assert record["files"] == [
        {"path": str(workspace.text), "sha256": file_sha256(workspace.text), "lines": 60}
    ]
    assert record["steps"] == STEPS and record["resumed_at_steps"] == []
    assert record["seconds"] > 0 and record["settings"]["mask_rate"] == 0.15
    assert not (uninterrupted.folder / CHECKPOINT_DIR).exists()
    assert main(uninterrupted.command) == 0, "rerunning a finished command does nothing"
    assert "nothing to do" in capsys.readouterr().err
    assert main([*uninterrupted.command, "--seed", "3"]) == EXIT_USER_ERROR
    assert "not empty" in one_error_line(capsys)


def test_max_sentences_caps_the_lines_across_files(workspace: Workspace) -> None:
    texts = read_text_files([workspace.text, workspace.text], max_sentences=70)
    assert [len(text.lines) for text in texts] == [60, 10]


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    error = capsys.readouterr().err
    assert error.startswith(f"{PROG}: error: ") and error.count("\n") == 1, error
    return error


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("missing.txt", None, "missing.txt: no such file"),
        ("latin1.txt", b"fine line\nfi\xe8vre\n", "latin1.txt:2: not UTF-8"),
        ("blank.txt", b"\n  \n\t\n", "blank.txt: has no text"),
        ("folder", "dir", "folder: not a file"),
    ],
)
def test_a_bad_text_file_is_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes | str | None,
    expected: str,
) -> None:
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    good = tmp_path / "good.txt"
    good.write_text("renal failure was seen\n", encoding="utf-8")
    code = main(["--text", str(good), str(path), "--out", str(tmp_path / "out")])
    assert code == EXIT_USER_ERROR
    assert expected in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_steps_and_epochs_exclude_each_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--text", "a.txt", "--out", str(tmp_path), "--steps", "2", "--epochs", "1"]
    assert main(args) == EXIT_USER_ERROR
    assert "not allowed with argument" in one_error_line(capsys)
