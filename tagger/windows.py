"""Cut sentences into model windows: labelled target words plus unlabelled context.

A window is `[CLS] left-context target right-context [SEP]`. Only the first piece of each
target word is scored; context pieces let the model see the rest of a long sentence and,
optionally, the neighbouring sentences of the same abstract.

- Training cuts sentences into targets of at most `max_words` words, never inside an
  entity (`training_targets`), as the original project did.
- Prediction cuts them into targets that fit the window (`prediction_targets`), so that
  nothing is ever truncated: a long sentence becomes several overlapping windows and
  every word is labelled by exactly one of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SentencePieces = Sequence[Sequence[int]]  # the WordPiece ids of each word of one sentence

# Padded lengths are rounded up to one of these, so that compiled steps see few shapes.
LENGTH_BUCKETS = (16, 24, 32, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 448, 512)


@dataclass(frozen=True)
class Target:
    """Words `[start, end)` of sentence `sentence` are labelled by one window."""

    sentence: int
    start: int
    end: int


@dataclass(frozen=True)
class Window:
    """Token ids of one window and where its target words' first pieces sit in it."""

    target: Target
    token_ids: np.ndarray  # int32, [CLS] ... [SEP], unpadded
    label_positions: np.ndarray  # int32, one token position per target word


@dataclass(frozen=True)
class WindowSettings:
    """How windows are cut.

    Attributes:
        max_tokens: window length in WordPiece tokens, `[CLS]` and `[SEP]` included.
        max_words: training targets hold at most this many words (not cut inside an entity).
        context_tokens: at most this many context pieces around the target (split both sides).
        cross_sentence: whether context may come from the neighbouring sentences.
    """

    max_tokens: int = 128
    max_words: int = 30
    context_tokens: int = 0
    cross_sentence: bool = False

    def __post_init__(self) -> None:
        if not 8 <= self.max_tokens <= 512:
            raise ValueError(f"max_tokens={self.max_tokens}: BERT windows hold 8 to 512 tokens")
        if self.max_words < 1:
            raise ValueError(f"max_words={self.max_words}: must be at least 1")
        if self.context_tokens < 0:
            raise ValueError(f"context_tokens={self.context_tokens}: must be 0 or more")


def is_inside(label: str) -> bool:
    return label.startswith("I-") or label == "I"


def training_targets(sentence: int, labels: Sequence[str], max_words: int) -> list[Target]:
    """Chunks of at most `max_words` words that never start inside an entity.

    An entity longer than `max_words` is kept whole in one oversized chunk rather than cut.
    """
    targets: list[Target] = []
    start, length = 0, len(labels)
    # Even chunks (ceil(n / pieces) words each) rather than 30 + a stub of 2 words.
    chunk = -(-length // max(1, -(-length // max_words))) if length else max_words
    while start < length:
        end = min(start + chunk, length)
        while start < end < length and is_inside(labels[end]):
            end -= 1
        if end == start:  # the entity starting here is longer than max_words
            end = start + 1
            while end < length and is_inside(labels[end]):
                end += 1
        targets.append(Target(sentence, start, end))
        start = end
    return targets


def prediction_targets(
    sentence: int, pieces: SentencePieces, settings: WindowSettings
) -> list[Target]:
    """Chunks of at most `max_words` words whose pieces fit one window.

    Any word may start a chunk here (the labels are unknown); context around each chunk
    gives the model the rest of the sentence, as in training.
    """
    return _fitting_chunks(sentence, pieces, settings.max_tokens, settings.max_words)


def _fitting_chunks(
    sentence: int, pieces: SentencePieces, max_tokens: int, max_words: int
) -> list[Target]:
    if not pieces:
        return []
    budget = max_tokens - 2
    targets: list[Target] = []
    start, used = 0, 0
    for index, word_pieces in enumerate(pieces):
        size = min(len(word_pieces), budget)
        if index > start and (used + size > budget or index - start >= max_words):
            targets.append(Target(sentence, start, index))
            start, used = index, 0
        used += size
    targets.append(Target(sentence, start, len(pieces)))
    return targets


def split_oversized(target: Target, pieces: SentencePieces, max_tokens: int) -> list[Target]:
    """A training target whose pieces overflow the window is cut further (rare: long words)."""
    sentence_pieces = pieces[target.start : target.end]
    if sum(min(len(word), max_tokens - 2) for word in sentence_pieces) <= max_tokens - 2:
        return [target]
    sub = _fitting_chunks(target.sentence, sentence_pieces, max_tokens, len(sentence_pieces))
    return [Target(target.sentence, target.start + t.start, target.start + t.end) for t in sub]


def build_window(
    target: Target,
    corpus: Sequence[SentencePieces],
    settings: WindowSettings,
    cls_id: int,
    sep_id: int,
) -> Window:
    """Assemble one window: target pieces in the middle, context filling the rest."""
    budget = settings.max_tokens - 2
    sentence = corpus[target.sentence]
    core: list[int] = []
    label_positions: list[int] = []
    for word_pieces in sentence[target.start : target.end]:
        room = budget - len(core)
        label_positions.append(len(core))
        core.extend(word_pieces[: max(room, 1)])
    core = core[:budget]
    context_room = min(settings.context_tokens, budget - len(core))
    left_want = context_room // 2
    right = _right_context(target, corpus, settings.cross_sentence, context_room - left_want)
    left = _left_context(target, corpus, settings.cross_sentence, context_room - len(right))
    right = right[: context_room - len(left)]
    offset = 1 + len(left)
    token_ids = np.asarray([cls_id, *left, *core, *right, sep_id], dtype=np.int32)
    positions = np.asarray(label_positions, dtype=np.int32) + offset
    return Window(target, token_ids, positions)


def _left_context(
    target: Target, corpus: Sequence[SentencePieces], cross_sentence: bool, limit: int
) -> list[int]:
    if limit <= 0:
        return []
    chunks: list[list[int]] = [_flatten(corpus[target.sentence][: target.start])]
    have = len(chunks[0])
    index = target.sentence - 1
    while cross_sentence and have < limit and index >= 0:
        chunks.append(_flatten(corpus[index]))
        have += len(chunks[-1])
        index -= 1
    tokens = [token for chunk in reversed(chunks) for token in chunk]
    return tokens[-limit:]


def _right_context(
    target: Target, corpus: Sequence[SentencePieces], cross_sentence: bool, limit: int
) -> list[int]:
    if limit <= 0:
        return []
    tokens = _flatten(corpus[target.sentence][target.end :])
    index = target.sentence + 1
    while cross_sentence and len(tokens) < limit and index < len(corpus):
        tokens.extend(_flatten(corpus[index]))
        index += 1
    return tokens[:limit]


def _flatten(words: SentencePieces) -> list[int]:
    return [token for word in words for token in word]


def bucket_length(length: int) -> int:
    """The padded length for a window of `length` tokens."""
    for bucket in LENGTH_BUCKETS:
        if length <= bucket:
            return bucket
    raise ValueError(f"a window of {length} tokens exceeds BERT's 512")


def pad_batch(windows: Sequence[Window], pad_id: int) -> dict[str, np.ndarray]:
    """Model inputs for a batch, padded to the bucket of its longest window."""
    length = bucket_length(max(len(window.token_ids) for window in windows))
    token_ids = np.full((len(windows), length), pad_id, dtype=np.int32)
    padding_mask = np.zeros((len(windows), length), dtype=bool)
    for row, window in enumerate(windows):
        token_ids[row, : len(window.token_ids)] = window.token_ids
        padding_mask[row, : len(window.token_ids)] = True
    return {
        "token_ids": token_ids,
        "segment_ids": np.zeros_like(token_ids),
        "padding_mask": padding_mask,
    }


def length_sorted_batches(windows: Sequence[Window], batch_size: int) -> list[list[int]]:
    """Indices of windows grouped into batches of similar length (less padding)."""
    order = sorted(range(len(windows)), key=lambda index: len(windows[index].token_ids))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
