"""Packed training windows: every training word labelled once, fewer tokens, saved and loaded."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagger.bio import Sentence
from tagger.model import IGNORE_INDEX
from tagger.model_folder import ModelMetadata, load_model_folder, save_model_folder
from tagger.references import METADATA_FILE
from tagger.tagger import Tagger
from tagger.tokenization import WordPieceEncoder
from tagger.windows import (
    PackedWindow,
    Window,
    WindowSettings,
    WindowSettingsError,
    build_window,
    split_oversized,
    training_targets,
)
from tests.tiny import (
    TINY_WINDOWS,
    tiny_corpus,
    tiny_encoder,
    tiny_recipe,
    tiny_split,
    tiny_training_folders,
    tiny_vocabulary,
)
from training.datasets import WindowBatches, training_windows, window_labels
from training.train import build_parser, fine_tune, main, settings_from_args

LABEL_IDS = {"O": 0, "B-Disease": 1, "I-Disease": 2}
# Words of one piece, and words the tiny vocabulary cuts into two or three pieces.
WORDS = ("patients", "seizures", "renal", "failure", ".", "diseases", "failures", "renal-failure")


@pytest.fixture(scope="module")
def encoder() -> WordPieceEncoder:
    vocabulary = tiny_vocabulary()
    return WordPieceEncoder({token: i for i, token in enumerate(vocabulary)}, lowercase=True)


def test_the_fixture_words_have_several_pieces(encoder: WordPieceEncoder) -> None:
    assert [len(pieces) for pieces in encoder.encode_words(WORDS)] == [1, 1, 1, 1, 1, 2, 2, 3]


@st.composite
def corpora(draw: st.DrawFn) -> list[Sentence]:
    """1-12 sentences of 0-50 fixture words with random labels."""
    sentences = []
    for _ in range(draw(st.integers(1, 12))):
        words = draw(st.lists(st.sampled_from(WORDS), max_size=50))
        labels = draw(
            st.lists(st.sampled_from(sorted(LABEL_IDS)), min_size=len(words), max_size=len(words))
        )
        sentences.append(Sentence(words, labels))
    return sentences


packed_settings = st.builds(
    WindowSettings,
    max_tokens=st.integers(8, 64),
    max_words=st.integers(1, 30),
    context_tokens=st.integers(0, 40),
    cross_sentence=st.booleans(),
    packed=st.just(True),
)


def labelled_words(windows: Sequence[Window | PackedWindow]) -> list[tuple[int, int]]:
    return [
        (target.sentence, word)
        for window in windows
        for target, _ in window.parts()
        for word in range(target.start, target.end)
    ]


def total_tokens(windows: Sequence[Window | PackedWindow]) -> int:
    return sum(len(window.token_ids) for window in windows)


@settings(max_examples=120, deadline=None)
@given(sentences=corpora(), windows=packed_settings)
def test_packed_training_windows_label_every_word_once_at_its_first_piece(
    encoder: WordPieceEncoder, sentences: list[Sentence], windows: WindowSettings
) -> None:
    corpus = encoder.encode_sentences([sentence.words for sentence in sentences])
    packed = training_windows(sentences, encoder, windows)
    assert all(isinstance(window, PackedWindow) for window in packed)
    expected = [(s, w) for s, sentence in enumerate(sentences) for w in range(len(sentence.words))]
    assert labelled_words(packed) == expected  # each word once, in file order
    for window in packed:
        tokens = window.token_ids.tolist()
        assert len(tokens) <= windows.max_tokens
        assert tokens[0] == encoder.cls_id and tokens[-1] == encoder.sep_id
        labels = window_labels(window, sentences, LABEL_IDS, len(tokens) + 3)  # + padding
        scored = np.flatnonzero(labels != IGNORE_INDEX).tolist()
        # Only the labelled words' first pieces are scored: context, [CLS], [SEP] and
        # padding are IGNORE_INDEX.
        assert scored == window.label_positions.tolist()
        for target, positions in window.parts():
            for word, position in zip(range(target.start, target.end), positions, strict=True):
                assert tokens[position] == corpus[target.sentence][word][0]
                assert labels[position] == LABEL_IDS[sentences[target.sentence].labels[word]]


@settings(max_examples=80, deadline=None)
@given(sentences=corpora(), windows=packed_settings)
def test_packed_windows_within_sentences_hold_pieces_of_one_sentence(
    encoder: WordPieceEncoder, sentences: list[Sentence], windows: WindowSettings
) -> None:
    windows = dataclasses.replace(windows, cross_sentence=False)
    corpus = encoder.encode_sentences([sentence.words for sentence in sentences])
    for window in training_windows(sentences, encoder, windows):
        (sentence,) = {target.sentence for target in window.targets}
        stream = [piece for word in corpus[sentence] for piece in word]
        inner = window.token_ids.tolist()[1:-1]
        # The window's pieces are one stretch of its own sentence's pieces (long words,
        # cut to the window, aside: the fixture's words have at most three pieces).
        starts = [
            i for i in range(len(stream) - len(inner) + 1) if stream[i : i + len(inner)] == inner
        ]
        assert starts, f"window {inner} is not a stretch of sentence {sentence}"


def test_packed_windows_across_sentences_share_windows_and_context(
    encoder: WordPieceEncoder,
) -> None:
    sentences = tiny_corpus()
    windows = training_windows(sentences, encoder, dataclasses.replace(TINY_WINDOWS, packed=True))
    assert any(len(window.targets) > 1 for window in windows)
    # A window after the first starts with context_tokens // 2 pieces of context.
    side = TINY_WINDOWS.context_tokens // 2
    assert all(window.label_positions[0] == 1 + side for window in windows[1:])


@pytest.mark.parametrize(
    "windows",
    [
        WindowSettings(max_tokens=128, max_words=30, context_tokens=64, cross_sentence=True),
        WindowSettings(max_tokens=24, max_words=8, context_tokens=6, cross_sentence=True),
        WindowSettings(max_tokens=24, max_words=8, context_tokens=6, cross_sentence=False),
        WindowSettings(max_tokens=16, max_words=4, context_tokens=0, cross_sentence=False),
    ],
)
def test_packed_windows_read_fewer_tokens_than_chunk_windows(
    encoder: WordPieceEncoder, windows: WindowSettings
) -> None:
    sentences = tiny_corpus(repeat=3)
    chunked = training_windows(sentences, encoder, windows)
    packed = training_windows(sentences, encoder, dataclasses.replace(windows, packed=True))
    assert labelled_words(packed) == labelled_words(chunked)  # the same words, once each
    assert total_tokens(packed) < total_tokens(chunked)


def test_unpacked_training_windows_are_the_chunk_windows(encoder: WordPieceEncoder) -> None:
    sentences = tiny_corpus()
    corpus = encoder.encode_sentences([sentence.words for sentence in sentences])
    expected = [
        build_window(target, corpus, TINY_WINDOWS, encoder.cls_id, encoder.sep_id)
        for index, sentence in enumerate(sentences)
        for chunk in training_targets(index, sentence.labels, TINY_WINDOWS.max_words)
        for target in split_oversized(chunk, corpus[index], TINY_WINDOWS.max_tokens)
    ]
    windows = training_windows(sentences, encoder, TINY_WINDOWS)
    assert all(isinstance(window, Window) for window in windows)
    assert [w.target for w in windows] == [w.target for w in expected]
    for window, reference in zip(windows, expected, strict=True):
        assert window.token_ids.tolist() == reference.token_ids.tolist()
        assert window.label_positions.tolist() == reference.label_positions.tolist()


def test_window_batches_of_packed_windows_label_each_word_once(encoder: WordPieceEncoder) -> None:
    sentences = tiny_corpus()
    windows = training_windows(sentences, encoder, dataclasses.replace(TINY_WINDOWS, packed=True))
    batches = WindowBatches(
        windows, sentences, LABEL_IDS, batch_size=4, pad_id=encoder.pad_id, seed=2
    )
    gold = [LABEL_IDS[label] for sentence in sentences for label in sentence.labels]
    scored: list[int] = []
    for index in range(len(batches)):
        inputs, labels = batches[index]
        assert labels.shape == inputs["token_ids"].shape
        assert (labels[~inputs["padding_mask"]] == IGNORE_INDEX).all()
        scored += labels[labels != IGNORE_INDEX].tolist()
    assert sorted(scored) == sorted(gold)


# ---------------------------------------------------------------- settings and model.json


def test_packed_defaults_to_false_and_must_be_a_boolean() -> None:
    assert WindowSettings().packed is False
    assert WindowSettings(context_tokens=0, packed=True).packed is True  # no context: fine
    with pytest.raises(WindowSettingsError, match="packed='yes'") as caught:
        WindowSettings(packed="yes")  # type: ignore[arg-type]
    assert "--packed-windows" in str(caught.value)
    with pytest.raises(WindowSettingsError, match="cross_sentence=1"):
        WindowSettings(cross_sentence=1)  # type: ignore[arg-type]


def metadata_with(windows: WindowSettings) -> ModelMetadata:
    return ModelMetadata(labels=["O"], lowercase=True, backbone_config={}, windows=windows)


def test_model_json_without_packed_loads_as_unpacked() -> None:
    content = metadata_with(WindowSettings(context_tokens=64, cross_sentence=True)).to_json()
    del content["windows"]["packed"]  # as every model.json written before the field
    loaded = ModelMetadata.from_json(json.loads(json.dumps(content)))
    assert loaded.windows == WindowSettings(context_tokens=64, cross_sentence=True)
    assert loaded.windows.packed is False


def test_model_json_round_trips_packed() -> None:
    windows = WindowSettings(max_tokens=192, context_tokens=64, cross_sentence=True, packed=True)
    content = json.loads(json.dumps(metadata_with(windows).to_json()))
    assert content["windows"]["packed"] is True
    assert ModelMetadata.from_json(content).windows == windows


# ---------------------------------------------------------------- the flag and training


def parse(*flags: str) -> WindowSettings:
    return settings_from_args(build_parser().parse_args(["--out", "model", *flags])).windows


def test_packed_windows_flag() -> None:
    assert "--packed-windows, --no-packed-windows" in build_parser().format_help()
    assert parse().packed is False  # the recipe's value
    assert parse("--packed-windows").packed is True
    assert parse("--packed-windows", "--no-packed-windows").packed is False
    assert (
        parse("--recipe", "peer", "--packed-windows").max_tokens
        == parse("--recipe", "peer").max_tokens
    )


def test_fine_tune_with_packed_windows_saves_a_packed_model(tmp_path: Path) -> None:
    encoder = tiny_encoder(tmp_path / "encoder")
    train, dev = tiny_split()
    windows = dataclasses.replace(TINY_WINDOWS, packed=True)
    result = fine_tune(encoder, train, dev, tiny_recipe(1, windows=windows), verbose=0)
    assert len(result.history) == 1 and np.isfinite(result.history[0]["loss"])
    wordpiece = WordPieceEncoder.from_vocab_file(encoder.vocab_path, lowercase=True)
    assert result.tagger.info.training["train_windows"] == len(
        training_windows(train, wordpiece, windows)
    )
    folder = save_model_folder(
        result.tagger.model, encoder.vocab_path, result.tagger.info, tmp_path / "model"
    )
    written = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
    assert written["windows"]["packed"] is True
    assert written["training"]["windows"]["packed"] is True
    loaded = load_model_folder(folder)
    assert loaded.metadata.windows == windows
    labels, _ = Tagger(loaded).tag_words([dev[0].words])[0]
    assert len(labels) == len(dev[0].words)


def test_train_command_with_packed_windows_writes_a_packed_model(tmp_path: Path) -> None:
    encoder_dir, data = tiny_training_folders(tmp_path)
    out = tmp_path / "model"
    code = main(
        [
            "--out", str(out), "--encoder", str(encoder_dir), "--data-dir", str(data),
            "--epochs", "1", "--max-steps", "2", "--batch-size", "8", "--no-test",
            "--max-tokens", "32", "--context-tokens", "8", "--packed-windows",
        ]
    )  # fmt: skip
    assert code == 0
    assert load_model_folder(out).metadata.windows.packed is True
