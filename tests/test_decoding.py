"""Decoding to valid IOB2: Viterbi, repaired arg-max, and scored spans."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tagger.decoding import (
    DECODERS,
    WordSpan,
    allowed_transitions,
    argmax_decode,
    argmax_drop_decode,
    get_decoder,
    spans_from_labels,
    viterbi_decode,
)
from tests.helpers import iob2_labels, is_valid_iob2

LABELS = ["O", "B-Disease", "I-Disease"]
TWO_TYPES = ["O", "B-Disease", "I-Disease", "B-Chemical", "I-Chemical"]


@st.composite
def probability_matrices(draw: st.DrawFn, labels: list[str]) -> np.ndarray:
    """Softmax of random logits: rows sum to 1, ties practically impossible."""
    words = draw(st.integers(0, 40))
    logits = draw(
        arrays(
            np.float64,
            (words, len(labels)),
            elements=st.floats(-8, 8, allow_nan=False, allow_infinity=False),
        )
    )
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True)) if words else logits
    return exp / exp.sum(axis=-1, keepdims=True) if words else exp


def path_log_probability(probabilities: np.ndarray, path: np.ndarray) -> float:
    rows = probabilities[np.arange(len(path)), path]
    return float(np.log(np.clip(rows, 1e-12, 1.0)).sum())


@pytest.mark.parametrize("labels", [LABELS, TWO_TYPES])
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_viterbi_output_is_always_valid_iob2(labels: list[str], data: st.DataObject) -> None:
    probabilities = data.draw(probability_matrices(labels))
    path = viterbi_decode(probabilities, labels)
    assert path.shape == (len(probabilities),)
    decoded = [labels[i] for i in path]
    assert is_valid_iob2(decoded), decoded
    if len(decoded):
        assert not decoded[0].startswith("I-")


@st.composite
def probabilities_with_valid_argmax(
    draw: st.DrawFn, labels: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """A valid IOB2 path and probabilities whose arg-max is that path, by a clear margin.

    Random logits rarely have a valid arg-max (any I- after an O breaks it), so the valid
    path is drawn first and its label's logit raised above the rest of each row.
    """
    types = sorted({label[2:] for label in labels if label != "O"})
    path_labels = draw(iob2_labels(types, max_segments=30, max_entity=6))
    path = np.asarray([labels.index(label) for label in path_labels], dtype=np.int64)
    words = len(path)
    logits = draw(
        arrays(
            np.float64,
            (words, len(labels)),
            elements=st.floats(-8, 8, allow_nan=False, allow_infinity=False),
        )
    )
    margins = draw(arrays(np.float64, (words,), elements=st.floats(0.05, 8)))
    logits[np.arange(words), path] = logits.max(axis=-1) + margins
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True), path


@pytest.mark.parametrize("labels", [LABELS, TWO_TYPES])
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_viterbi_equals_argmax_when_argmax_is_valid(
    labels: list[str], data: st.DataObject
) -> None:
    probabilities, path = data.draw(probabilities_with_valid_argmax(labels))
    np.testing.assert_array_equal(probabilities.argmax(axis=-1), path)
    inside = sum(labels[i].startswith("I-") for i in path)
    event("an I- label follows a B- or I-" if inside else "no I- label")
    np.testing.assert_array_equal(viterbi_decode(probabilities, labels), path)


@settings(max_examples=100, deadline=None)
@given(probabilities=probability_matrices(LABELS))
def test_viterbi_beats_every_other_valid_path_tried(probabilities: np.ndarray) -> None:
    best = viterbi_decode(probabilities, LABELS)
    repaired = argmax_decode(probabilities, LABELS)
    all_outside = np.zeros(len(probabilities), dtype=np.int64)
    for other in (repaired, all_outside):
        assert path_log_probability(probabilities, best) >= (
            path_log_probability(probabilities, other) - 1e-9
        )


def test_viterbi_prefers_the_best_valid_sequence_over_a_repair() -> None:
    # Arg-max says O I I; the best valid path is B I I (the first word is nearly a tie).
    probabilities = np.asarray([[0.5, 0.45, 0.05], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8]])
    assert [LABELS[i] for i in viterbi_decode(probabilities, LABELS)] == [
        "B-Disease",
        "I-Disease",
        "I-Disease",
    ]
    assert [LABELS[i] for i in argmax_decode(probabilities, LABELS)] == [
        "O",
        "B-Disease",
        "I-Disease",
    ]


def test_viterbi_of_an_empty_sentence_is_empty() -> None:
    assert viterbi_decode(np.zeros((0, 3)), LABELS).shape == (0,)


@settings(max_examples=100, deadline=None)
@given(probabilities=probability_matrices(TWO_TYPES))
def test_argmax_decode_repairs_to_valid_iob2(probabilities: np.ndarray) -> None:
    argmax = probabilities.argmax(axis=-1) if len(probabilities) else np.zeros(0, np.int64)
    path = argmax_decode(probabilities, TWO_TYPES)
    decoded = [TWO_TYPES[i] for i in path]
    assert is_valid_iob2(decoded)
    for raw, fixed in zip(argmax, path, strict=True):
        # Only I-X may change, and only into B-X.
        if raw != fixed:
            assert TWO_TYPES[raw].startswith("I-")
            assert TWO_TYPES[fixed] == "B-" + TWO_TYPES[raw][2:]


def test_argmax_decode_repairs_i_after_o_and_after_another_type() -> None:
    one_hot = np.eye(len(TWO_TYPES))[[2, 2, 0, 2, 3, 2, 4]]
    decoded = [TWO_TYPES[i] for i in argmax_decode(one_hot, TWO_TYPES)]
    assert decoded == [
        "B-Disease",
        "I-Disease",
        "O",
        "B-Disease",
        "B-Chemical",
        "B-Disease",
        "B-Chemical",
    ]


def test_allowed_transitions() -> None:
    start, allowed = allowed_transitions(LABELS)
    assert start.tolist() == [True, True, False]
    assert allowed.tolist() == [
        [True, True, False],  # after O: no I
        [True, True, True],
        [True, True, True],
    ]


def test_decoders_registry() -> None:
    assert get_decoder("viterbi") is viterbi_decode
    assert get_decoder("argmax") is argmax_decode
    with pytest.raises(ValueError, match=r"unknown decoder 'beam'.*argmax.*viterbi"):
        get_decoder("beam")
    assert set(DECODERS) == {"viterbi", "argmax", "argmax-drop"}


def test_spans_from_labels_scores_with_the_least_confident_word() -> None:
    labels = ["O", "B-Disease", "I-Disease", "I-Disease", "O", "B-Disease", "B-Disease"]
    scores = [0.9, 0.8, 0.6, 0.95, 0.99, 0.7, 0.5]
    assert spans_from_labels(labels, scores) == [
        WordSpan(1, 4, "Disease", 0.6),
        WordSpan(5, 6, "Disease", 0.7),
        WordSpan(6, 7, "Disease", 0.5),
    ]


def test_spans_from_labels_at_sentence_end_and_of_two_types() -> None:
    labels = ["B-Disease", "I-Disease", "B-Chemical", "I-Chemical"]
    assert spans_from_labels(labels, [0.5, 0.4, 0.3, 0.2]) == [
        WordSpan(0, 2, "Disease", 0.4),
        WordSpan(2, 4, "Chemical", 0.2),
    ]
    assert spans_from_labels([], []) == []
    assert spans_from_labels(["O", "O"], [1.0, 1.0]) == []


def test_spans_from_labels_tolerates_a_stray_inside_label() -> None:
    labels = ["O", "I-Disease", "I-Disease", "I-Chemical"]
    assert spans_from_labels(labels, [1.0, 0.5, 0.6, 0.7]) == [
        WordSpan(1, 3, "Disease", 0.5),
        WordSpan(3, 4, "Chemical", 0.7),
    ]


def test_argmax_drop_sets_a_stray_inside_tag_to_outside() -> None:
    # Words: O, I (stray), B, I, O, I (stray after O)
    probabilities = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.2, 0.1, 0.7],
            [0.1, 0.8, 0.1],
            [0.1, 0.1, 0.8],
            [0.9, 0.05, 0.05],
            [0.3, 0.1, 0.6],
        ]
    )
    dropped = [LABELS[i] for i in argmax_drop_decode(probabilities, LABELS)]
    repaired = [LABELS[i] for i in argmax_decode(probabilities.copy(), LABELS)]
    assert dropped == ["O", "O", "B-Disease", "I-Disease", "O", "O"]
    assert repaired == ["O", "B-Disease", "B-Disease", "I-Disease", "O", "B-Disease"]


@settings(max_examples=100, deadline=None)
@given(probabilities=probability_matrices(TWO_TYPES))
def test_argmax_drop_is_valid_and_keeps_every_entity_strict_iob2_reads(
    probabilities: np.ndarray,
) -> None:
    from seqeval.scheme import IOB2, Entities

    raw = [TWO_TYPES[i] for i in probabilities.argmax(axis=-1)] if len(probabilities) else []
    dropped = [TWO_TYPES[i] for i in argmax_drop_decode(probabilities, TWO_TYPES)]
    assert is_valid_iob2(dropped)

    # Strict IOB2 scoring finds the same entities in the raw arg-max and in the dropped labels.
    def entities(labels: list[str]) -> list[tuple[str, int, int]]:
        return [e.to_tuple()[1:] for e in Entities([labels], IOB2).entities[0]]

    assert entities(dropped) == entities(raw)
