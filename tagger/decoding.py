"""From per-word label probabilities to valid IOB2 labels and scored spans.

Arg-max decoding emits `I-` tags that follow `O` (the plain Hugging Face recipe produces
hundreds on BC5CDR test). `viterbi_decode` instead finds the most probable label sequence
among those that are valid IOB2: `I-X` only after `B-X` or `I-X`. The two arg-max decoders
differ in what they make of a stray `I-`: `argmax` starts an entity there (`B-`),
`argmax-drop` drops it (`O`), which is how strict IOB2 scoring reads the raw arg-max
labels of the Hugging Face recipe, and so what the parity benchmark compares against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tagger.errors import TaggerError

Decoder = Callable[[np.ndarray, Sequence[str]], np.ndarray]


def allowed_transitions(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """`(start_allowed[j], allowed[i, j])`: may a sentence start with j, may j follow i."""
    size = len(labels)
    allowed = np.ones((size, size), dtype=bool)
    start_allowed = np.ones(size, dtype=bool)
    for j, label in enumerate(labels):
        if label.startswith("I-"):
            kind = label[2:]
            start_allowed[j] = False
            for i, previous in enumerate(labels):
                allowed[i, j] = previous in (f"B-{kind}", f"I-{kind}")
    return start_allowed, allowed


def viterbi_decode(probabilities: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """The most probable valid IOB2 label indices for one sentence (words x labels)."""
    if len(probabilities) == 0:
        return np.zeros(0, dtype=np.int64)
    log_probs = np.log(np.clip(probabilities, 1e-12, 1.0))
    start_allowed, allowed = allowed_transitions(labels)
    transition = np.where(allowed, 0.0, -np.inf)
    score = np.where(start_allowed, log_probs[0], -np.inf)
    backpointers = np.zeros(probabilities.shape, dtype=np.int64)
    for position in range(1, len(log_probs)):
        candidates = score[:, None] + transition
        backpointers[position] = candidates.argmax(axis=0)
        score = candidates.max(axis=0) + log_probs[position]
    path = np.zeros(len(log_probs), dtype=np.int64)
    path[-1] = int(score.argmax())
    for position in range(len(log_probs) - 1, 0, -1):
        path[position - 1] = backpointers[position, path[position]]
    return path


def argmax_decode(probabilities: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Each word's most probable label, then `I-` after `O` repaired to `B-`."""
    path = probabilities.argmax(axis=-1) if len(probabilities) else np.zeros(0, np.int64)
    index = {label: i for i, label in enumerate(labels)}
    previous = "O"
    for position, label_index in enumerate(path):
        label = labels[label_index]
        if label.startswith("I-") and previous not in (f"B-{label[2:]}", label):
            path[position] = index[f"B-{label[2:]}"]
            label = f"B-{label[2:]}"
        previous = label
    return path


def argmax_drop_decode(probabilities: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Each word's most probable label, then `I-` that continues nothing set to `O`."""
    path = probabilities.argmax(axis=-1) if len(probabilities) else np.zeros(0, np.int64)
    outside = labels.index("O")
    previous = "O"
    for position, label_index in enumerate(path):
        label = labels[label_index]
        if label.startswith("I-") and previous not in (f"B-{label[2:]}", label):
            path[position] = outside
            label = "O"
        previous = label
    return path


DECODERS: dict[str, Decoder] = {
    "viterbi": viterbi_decode,
    "argmax": argmax_decode,
    "argmax-drop": argmax_drop_decode,
}


class DecoderError(TaggerError, ValueError):
    """A decoder name that is not one of :data:`DECODERS`."""


def get_decoder(name: str) -> Decoder:
    """The decoder called `name`.

    >>> get_decoder("viterbi") is viterbi_decode
    True
    >>> try:
    ...     get_decoder("beam")
    ... except DecoderError as error:
    ...     print(error)
    unknown decoder 'beam'. Fix: use --decoder argmax, argmax-drop or viterbi.
    """
    try:
        return DECODERS[name]
    except KeyError:
        choices = sorted(DECODERS)
        raise DecoderError(
            f"unknown decoder {name!r}",
            fix=f"use --decoder {', '.join(choices[:-1])} or {choices[-1]}",
        ) from None


@dataclass(frozen=True)
class WordSpan:
    """Words `[start, end)` form one entity of type `label`; `score` is its confidence."""

    start: int
    end: int
    label: str
    score: float


def spans_from_labels(labels: Sequence[str], scores: Sequence[float]) -> list[WordSpan]:
    """Entities of a valid IOB2 sequence; a span's score is its least confident word's."""
    spans: list[WordSpan] = []
    start: int | None = None
    kind = ""
    for position, label in enumerate([*labels, "O"]):
        continues = label == f"I-{kind}" and start is not None
        if start is not None and not continues:
            spans.append(WordSpan(start, position, kind, float(min(scores[start:position]))))
            start = None
        if label.startswith("B-") or (label.startswith("I-") and start is None):
            start, kind = position, label[2:]
    return spans
