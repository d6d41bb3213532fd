"""Windows: training chunks never cut an entity; prediction windows label each word exactly once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tagger.bio import Sentence
from tagger.model import IGNORE_INDEX
from tagger.windows import (
    LENGTH_BUCKETS,
    Target,
    Window,
    WindowSettings,
    bucket_length,
    build_window,
    is_inside,
    length_sorted_batches,
    packed_windows,
    pad_batch,
    prediction_targets,
    split_oversized,
    training_targets,
)
from tests.helpers import iob2_labels
from training.datasets import WindowBatches, window_labels

CLS, SEP, PAD = 2, 3, 0
FIRST_PIECE_ID = 10

# ---------------------------------------------------------------- strategies


@st.composite
def piece_corpus(draw: st.DrawFn) -> list[list[list[int]]]:
    """1-4 sentences of 0-160 words with 1-40 pieces each; every piece id is unique."""
    word_lengths = st.one_of(st.integers(1, 3), st.integers(1, 40))
    sentences = draw(
        st.lists(st.lists(word_lengths, min_size=0, max_size=160), min_size=1, max_size=4)
    )
    next_id = FIRST_PIECE_ID
    corpus: list[list[list[int]]] = []
    for lengths in sentences:
        words = []
        for length in lengths:
            words.append(list(range(next_id, next_id + length)))
            next_id += length
        corpus.append(words)
    return corpus


window_settings = st.builds(
    WindowSettings,
    max_tokens=st.integers(8, 512),
    max_words=st.integers(1, 60),
    context_tokens=st.integers(0, 200),
    cross_sentence=st.booleans(),
)


def flatten(words: Sequence[Sequence[int]]) -> list[int]:
    return [token for word in words for token in word]


# ---------------------------------------------------------------- training targets


def check_training_targets(
    labels: Sequence[str], targets: Sequence[Target], max_words: int
) -> None:
    # Cover the sentence exactly, in order.
    assert [t.start for t in targets] == [0, *[t.end for t in targets[:-1]]][: len(targets)]
    assert (targets[-1].end if targets else 0) == len(labels)
    for target in targets:
        assert target.end > target.start
        assert not is_inside(labels[target.start]), f"{target} starts inside an entity"
        if target.end - target.start > max_words:
            # Only one entity that is itself longer than max_words may overflow.
            chunk = labels[target.start : target.end]
            assert chunk[0].startswith("B-") and all(is_inside(x) for x in chunk[1:])
            assert target.end == len(labels) or not is_inside(labels[target.end])


@settings(max_examples=100, deadline=None)
@given(labels=iob2_labels(), max_words=st.integers(1, 40))
def test_training_targets_cover_in_order_and_never_cut_an_entity(
    labels: list[str], max_words: int
) -> None:
    targets = training_targets(7, labels, max_words)
    assert all(t.sentence == 7 for t in targets)
    check_training_targets(labels, targets, max_words)


def test_training_targets_examples() -> None:
    labels = ["O", "B-Disease", "I-Disease", "I-Disease", "O", "O"]
    assert training_targets(0, labels, 3) == [Target(0, 0, 1), Target(0, 1, 4), Target(0, 4, 6)]
    # An entity longer than max_words is kept whole.
    labels = ["B-Disease"] + ["I-Disease"] * 4 + ["O"]
    assert training_targets(0, labels, 2) == [Target(0, 0, 5), Target(0, 5, 6)]
    assert training_targets(0, [], 30) == []
    # Bare BioBERT-style "I" labels count as inside too.
    assert training_targets(0, ["O", "B", "I", "I", "O"], 2) == [
        Target(0, 0, 1),
        Target(0, 1, 4),
        Target(0, 4, 5),
    ]


def test_training_targets_are_even_rather_than_a_stub() -> None:
    sizes = [t.end - t.start for t in training_targets(0, ["O"] * 32, 30)]
    assert sizes == [16, 16]


@settings(max_examples=100, deadline=None)
@given(corpus=piece_corpus(), max_tokens=st.integers(8, 64))
def test_split_oversized_fits_the_window_and_keeps_coverage(
    corpus: list[list[list[int]]], max_tokens: int
) -> None:
    pieces = corpus[0]
    assume(pieces)
    whole = Target(0, 0, len(pieces))
    parts = split_oversized(whole, pieces, max_tokens)
    assert [p.start for p in parts] == [0, *[p.end for p in parts[:-1]]]
    assert parts[-1].end == len(pieces)
    for part in parts:
        window = build_window(part, corpus, WindowSettings(max_tokens=max_tokens), CLS, SEP)
        assert len(window.token_ids) <= max_tokens


# ---------------------------------------------------------------- prediction windows


def check_window(
    window: Window, corpus: Sequence[Sequence[Sequence[int]]], windows: WindowSettings
) -> None:
    target = window.target
    sentence = corpus[target.sentence]
    tokens = window.token_ids.tolist()
    assert window.token_ids.dtype == np.int32
    assert len(tokens) <= windows.max_tokens
    assert tokens[0] == CLS and tokens[-1] == SEP
    assert CLS not in tokens[1:-1] and SEP not in tokens[1:-1]
    # Each target word's label position holds that word's first piece.
    first_pieces = [word[0] for word in sentence[target.start : target.end]]
    assert [tokens[p] for p in window.label_positions] == first_pieces
    # Context is a contiguous run just before and just after the target, from the same
    # sentence unless cross_sentence.
    budget = windows.max_tokens - 2
    core = flatten(word[:budget] for word in sentence[target.start : target.end])
    left_size = int(window.label_positions[0]) - 1
    left = tokens[1 : 1 + left_size]
    assert tokens[1 + left_size : 1 + left_size + len(core)] == core
    right = tokens[1 + left_size + len(core) : -1]
    before_sentences = corpus[: target.sentence] if windows.cross_sentence else []
    after_sentences = corpus[target.sentence + 1 :] if windows.cross_sentence else []
    before = [*flatten(flatten(s) for s in before_sentences), *flatten(sentence[: target.start])]
    after = [*flatten(sentence[target.end :]), *flatten(flatten(s) for s in after_sentences)]
    assert left == (before[-left_size:] if left_size else [])
    assert right == after[: len(right)]
    room = min(windows.context_tokens, budget - len(core))
    assert len(left) + len(right) <= room
    if room > 0 and (before or after):
        assert left or right, "context was available and room left, yet none was used"


@settings(max_examples=100, deadline=None)
@given(corpus=piece_corpus(), windows=window_settings)
def test_prediction_windows_label_every_word_exactly_once(
    corpus: list[list[list[int]]], windows: WindowSettings
) -> None:
    labelled: Counter[tuple[int, int]] = Counter()
    for index, pieces in enumerate(corpus):
        targets = prediction_targets(index, pieces, windows)
        assert [t.start for t in targets] == [0, *[t.end for t in targets[:-1]]][: len(targets)]
        assert (targets[-1].end if targets else 0) == len(pieces)
        for target in targets:
            assert target.sentence == index
            assert 1 <= target.end - target.start <= windows.max_words
            window = build_window(target, corpus, windows, CLS, SEP)
            check_window(window, corpus, windows)
            labelled.update((index, word) for word in range(target.start, target.end))
    expected = {(s, w) for s, pieces in enumerate(corpus) for w in range(len(pieces))}
    assert set(labelled) == expected
    assert all(count == 1 for count in labelled.values())


def test_sentence_much_longer_than_the_window_becomes_several_windows() -> None:
    corpus = [[[FIRST_PIECE_ID + i] for i in range(300)]]
    windows = WindowSettings(max_tokens=16, max_words=30, context_tokens=4)
    targets = prediction_targets(0, corpus[0], windows)
    assert len(targets) == 300 // 14 + 1
    assert sum(t.end - t.start for t in targets) == 300
    for target in targets:
        check_window(build_window(target, corpus, windows, CLS, SEP), corpus, windows)


def test_a_word_longer_than_the_window_is_cut_but_keeps_its_first_piece() -> None:
    corpus = [[[10], list(range(20, 60)), [11]]]
    windows = WindowSettings(max_tokens=8)
    targets = prediction_targets(0, corpus[0], windows)
    assert targets == [Target(0, 0, 1), Target(0, 1, 2), Target(0, 2, 3)]
    window = build_window(targets[1], corpus, windows, CLS, SEP)
    assert window.token_ids.tolist() == [CLS, 20, 21, 22, 23, 24, 25, SEP]
    assert window.label_positions.tolist() == [1]


def test_context_crosses_sentences_only_when_asked() -> None:
    corpus = [[[10], [11]], [[20], [21]], [[30], [31]]]
    alone = WindowSettings(max_tokens=16, context_tokens=4, cross_sentence=False)
    shared = WindowSettings(max_tokens=16, context_tokens=4, cross_sentence=True)
    target = Target(1, 0, 2)
    assert build_window(target, corpus, alone, CLS, SEP).token_ids.tolist() == [CLS, 20, 21, SEP]
    window = build_window(target, corpus, shared, CLS, SEP)
    assert window.token_ids.tolist() == [CLS, 10, 11, 20, 21, 30, 31, SEP]
    assert window.label_positions.tolist() == [3, 4]


@pytest.mark.parametrize(
    ("field", "value"), [("max_tokens", 7), ("max_tokens", 513), ("max_words", 0)]
)
def test_window_settings_reject_impossible_values(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=field):
        WindowSettings(**{field: value})


def test_negative_context_is_rejected() -> None:
    with pytest.raises(ValueError, match="context_tokens=-1"):
        WindowSettings(context_tokens=-1)


# ---------------------------------------------------------------- padding and batches


def make_window(length: int, sentence: int = 0, words: int = 1) -> Window:
    tokens = np.asarray([CLS, *range(100, 100 + length - 2), SEP], dtype=np.int32)
    positions = np.arange(1, 1 + words, dtype=np.int32)
    return Window(Target(sentence, 0, words), tokens, positions)


@pytest.mark.parametrize(
    ("length", "bucket"), [(1, 16), (16, 16), (17, 24), (129, 160), (500, 512), (512, 512)]
)
def test_bucket_length_rounds_up_to_a_bucket(length: int, bucket: int) -> None:
    assert bucket_length(length) == bucket
    assert bucket in LENGTH_BUCKETS


def test_bucket_length_rejects_more_than_512() -> None:
    with pytest.raises(ValueError, match="513 tokens exceeds BERT's 512"):
        bucket_length(513)


def test_pad_batch_pads_to_the_bucket_of_the_longest_window() -> None:
    windows = [make_window(5), make_window(20), make_window(3)]
    batch = pad_batch(windows, PAD)
    assert set(batch) == {"token_ids", "segment_ids", "padding_mask"}
    assert batch["token_ids"].shape == (3, 24)
    assert batch["token_ids"].dtype == np.int32
    for row, window in enumerate(windows):
        size = len(window.token_ids)
        assert batch["token_ids"][row, :size].tolist() == window.token_ids.tolist()
        assert (batch["token_ids"][row, size:] == PAD).all()
        assert batch["padding_mask"][row].tolist() == [True] * size + [False] * (24 - size)
    assert (batch["segment_ids"] == 0).all()


def test_length_sorted_batches_cover_every_window_once() -> None:
    lengths = [9, 3, 40, 17, 5, 30, 12]
    windows = [make_window(length) for length in lengths]
    batches = length_sorted_batches(windows, 3)
    assert [len(batch) for batch in batches] == [3, 3, 1]
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    flat_lengths = [lengths[i] for batch in batches for i in batch]
    assert flat_lengths == sorted(lengths)


def training_data() -> tuple[list[Window], list[Sentence]]:
    """Sentences of 1-60 words; one window each, with a label on every word's first piece."""
    rng = np.random.default_rng(0)
    windows: list[Window] = []
    sentences: list[Sentence] = []
    for index in range(120):
        words = int(rng.integers(1, 60))
        labels = ["B-Disease" if rng.random() < 0.2 else "O" for _ in range(words)]
        sentences.append(Sentence([f"w{i}" for i in range(words)], labels))
        # Two pieces per word: only the first is scored.
        tokens = [CLS, *range(100, 100 + 2 * words), SEP]
        positions = np.arange(1, 1 + 2 * words, 2, dtype=np.int32)
        windows.append(Window(Target(index, 0, words), np.asarray(tokens, np.int32), positions))
    return windows, sentences


LABEL_IDS = {"O": 0, "B-Disease": 1, "I-Disease": 2}


def test_window_labels_score_only_first_pieces_of_target_words() -> None:
    sentence = Sentence(["a", "b", "c", "d"], ["O", "B-Disease", "I-Disease", "O"])
    window = Window(
        Target(0, 1, 3), np.asarray([CLS, 50, 51, 52, 53, 54, SEP], np.int32), np.asarray([2, 4])
    )
    labels = window_labels(window, [sentence], LABEL_IDS, 16)
    assert labels.tolist() == [IGNORE_INDEX] * 2 + [1, IGNORE_INDEX, 2] + [IGNORE_INDEX] * 11


def test_window_batches_label_first_pieces_and_pad_to_buckets() -> None:
    windows, sentences = training_data()
    batches = WindowBatches(windows, sentences, LABEL_IDS, batch_size=16, pad_id=PAD, seed=3)
    assert len(batches) == -(-len(windows) // 16)
    seen: list[int] = []
    for index in range(len(batches)):
        inputs, labels = batches[index]
        rows = [windows[i] for i in batches.batches[index]]
        seen += batches.batches[index]
        assert labels.shape == inputs["token_ids"].shape
        assert labels.shape[1] == bucket_length(max(len(w.token_ids) for w in rows))
        for row, window in enumerate(rows):
            expected = np.full(labels.shape[1], IGNORE_INDEX)
            gold = sentences[window.target.sentence].labels
            expected[window.label_positions] = [LABEL_IDS[label] for label in gold]
            assert labels[row].tolist() == expected.tolist()
            assert (labels[row][~inputs["padding_mask"][row]] == IGNORE_INDEX).all()
    assert sorted(seen) == list(range(len(windows)))


def test_window_batches_first_two_batches_differ_in_length() -> None:
    windows, sentences = training_data()
    for seed in range(10):
        batches = WindowBatches(windows, sentences, LABEL_IDS, batch_size=8, pad_id=PAD, seed=seed)
        for _ in range(3):
            first, second = batches[0][0]["token_ids"], batches[1][0]["token_ids"]
            assert first.shape[1] != second.shape[1]
            batches.on_epoch_end()


def test_window_batches_reshuffle_each_epoch_and_respect_max_batches() -> None:
    windows, sentences = training_data()
    batches = WindowBatches(
        windows, sentences, LABEL_IDS, batch_size=8, pad_id=PAD, seed=1, max_batches=4
    )
    assert len(batches) == 4
    before = [list(batch) for batch in batches.batches]
    batches.on_epoch_end()
    assert len(batches) == 4
    assert [list(batch) for batch in batches.batches] != before


def test_window_batches_with_pools_of_one_batch_shuffle_plainly() -> None:
    windows, sentences = training_data()
    batches = WindowBatches(
        windows, sentences, LABEL_IDS, batch_size=8, pad_id=PAD, seed=5, pool_batches=1
    )
    permutation = np.random.default_rng(5).permutation(len(windows)).tolist()
    chunks = [sorted(permutation[i : i + 8]) for i in range(0, len(windows), 8)]
    assert sorted(sorted(batch) for batch in batches.batches) == sorted(chunks)


def test_window_batches_with_one_length_still_work() -> None:
    windows = [make_window(10, sentence=i) for i in range(5)]
    sentences = [Sentence(["w"], ["O"]) for _ in range(5)]
    batches = WindowBatches(windows, sentences, LABEL_IDS, batch_size=2, pad_id=PAD, seed=0)
    shapes = sorted(batches[i][0]["token_ids"].shape for i in range(len(batches)))
    assert shapes == [(1, 16), (2, 16), (2, 16)]


# ---------------------------------------------------------------- packed windows


@settings(max_examples=150, deadline=None)
@given(
    corpus=piece_corpus(),
    max_tokens=st.integers(8, 64),
    side_context=st.integers(0, 40),
)
def test_packed_windows_label_every_word_of_the_document_exactly_once(
    corpus: list[list[list[int]]], max_tokens: int, side_context: int
) -> None:
    windows = packed_windows(corpus, max_tokens, side_context, CLS, SEP)
    labelled: list[tuple[int, int]] = []
    for window in windows:
        tokens = window.token_ids.tolist()
        assert tokens[0] == CLS and tokens[-1] == SEP
        assert len(tokens) <= max_tokens
        assert sum(t.end - t.start for t in window.targets) == len(window.label_positions)
        for target, positions in window.parts():
            assert len(positions) == target.end - target.start
            for word, position in zip(range(target.start, target.end), positions, strict=True):
                # Every labelled position holds the first piece of its word.
                assert tokens[position] == corpus[target.sentence][word][0]
                labelled.append((target.sentence, word))
    expected = [(s, w) for s, pieces in enumerate(corpus) for w in range(len(pieces))]
    assert labelled == expected  # each word once, in document order


def test_packed_windows_share_a_window_across_sentences_with_context_on_both_sides() -> None:
    corpus = [[[10 + 10 * s + w] for w in range(4)] for s in range(6)]  # 6 sentences, 4 words
    windows = packed_windows(corpus, max_tokens=12, side_context=2, cls_id=CLS, sep_id=SEP)
    first, second = windows[0], windows[1]
    # The document's start needs no left context: 8 words labelled, 2 pieces of context after.
    assert first.targets == (Target(0, 0, 4), Target(1, 0, 4))
    assert first.token_ids.tolist() == [CLS, 10, 11, 12, 13, 20, 21, 22, 23, 30, 31, SEP]
    # The next window starts 2 pieces before its first labelled word.
    assert second.targets[0] == Target(2, 0, 4)
    assert second.token_ids.tolist()[:4] == [CLS, 22, 23, 30]
    assert second.label_positions.tolist()[:4] == [3, 4, 5, 6]


def test_a_word_longer_than_a_packed_window_keeps_its_first_pieces() -> None:
    corpus = [[[10], list(range(20, 60)), [11]]]
    windows = packed_windows(corpus, max_tokens=8, side_context=1, cls_id=CLS, sep_id=SEP)
    assert [window.targets for window in windows] == [
        (Target(0, 0, 1),),
        (Target(0, 1, 2),),
        (Target(0, 2, 3),),
    ]
    assert windows[1].token_ids.tolist() == [CLS, 10, 20, 21, 22, 23, 24, SEP]
    assert windows[1].label_positions.tolist() == [2]


def test_pad_batch_without_buckets_pads_to_the_longest_window() -> None:
    windows = packed_windows([[[10], [11], [12]]], 16, 0, CLS, SEP)
    short = Window(Target(0, 0, 1), np.asarray([CLS, 10, SEP], np.int32), np.asarray([1]))
    inputs = pad_batch([windows[0], short], PAD, bucketed=False)
    assert inputs["token_ids"].shape == (2, 5)
    assert inputs["padding_mask"].sum(axis=1).tolist() == [5, 3]
