"""Cut sentences into model windows: labelled target words plus unlabelled context.

A window is `[CLS] left-context target right-context [SEP]`. Only the first piece of each
target word is scored; context pieces let the model see the rest of a long sentence and,
optionally, the neighbouring sentences of the same abstract.

- Training cuts sentences into targets of at most `max_words` words, never inside an
  entity (`training_targets`), as the original project did.
- Prediction cuts them into targets that fit the window (`prediction_targets`), so that
  nothing is ever truncated: a long sentence becomes several overlapping windows and
  every word is labelled by exactly one of them.
- A model trained with context across sentences can instead read a whole document
  through packed windows (`packed_windows`): consecutive words of several sentences are
  labelled in one window, with a little context on both sides. Each window then labels
  far more words than context it spends, which roughly halves prediction cost.
- Training can read packed windows too (`WindowSettings.packed`): the training corpus is
  cut by `packed_windows` as prediction cuts a document, so that each window spends far
  fewer of its tokens on context than one chunk framed by `context_tokens` pieces does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from tagger.errors import TaggerError

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

    def parts(self) -> Iterator[tuple[Target, np.ndarray]]:
        """Each target with the token positions of its words (one here; see PackedWindow)."""
        yield self.target, self.label_positions


@dataclass(frozen=True)
class PackedWindow:
    """Consecutive targets, parts of neighbouring sentences, labelled in one window."""

    targets: tuple[Target, ...]
    token_ids: np.ndarray  # int32, [CLS] ... [SEP], unpadded
    label_positions: np.ndarray  # int32, one token position per word of all targets, in order

    def parts(self) -> Iterator[tuple[Target, np.ndarray]]:
        start = 0
        for target in self.targets:
            size = target.end - target.start
            yield target, self.label_positions[start : start + size]
            start += size


class WindowSettingsError(TaggerError, ValueError):
    """Window settings that cannot cut a window; the fix names the training flag."""


@dataclass(frozen=True)
class WindowSettings:
    """How windows are cut.

    Attributes:
        max_tokens: window length in WordPiece tokens, `[CLS]` and `[SEP]` included.
        max_words: training targets hold at most this many words (not cut inside an entity).
        context_tokens: at most this many context pieces around the target (split both sides).
        cross_sentence: whether context may come from the neighbouring sentences.
        packed: whether training reads packed windows (`packed_windows`): each window
            labels as many consecutive words, of one or several sentences, as fit between
            `context_tokens // 2` context pieces on each side (context from other
            sentences only with `cross_sentence`); `max_words` then plays no part. False
            (one chunk per window) in every model folder written before the field existed.

    Example:

    >>> WindowSettings(max_tokens=4)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tagger.windows.WindowSettingsError: max_tokens=4: a BERT window holds 8 to 512 ...
    >>> WindowSettings(packed=True, context_tokens=64).packed
    True
    """

    max_tokens: int = 128
    max_words: int = 30
    context_tokens: int = 0
    cross_sentence: bool = False
    packed: bool = False

    def __post_init__(self) -> None:
        if not 8 <= self.max_tokens <= 512:
            raise WindowSettingsError(
                f"max_tokens={self.max_tokens}: a BERT window holds 8 to 512 tokens",
                fix="pass --max-tokens between 8 and 512 to python -m training.train",
            )
        if self.max_words < 1:
            raise WindowSettingsError(
                f"max_words={self.max_words}: a training chunk holds at least 1 word",
                fix="pass --max-words 1 or more to python -m training.train",
            )
        if self.context_tokens < 0:
            raise WindowSettingsError(
                f"context_tokens={self.context_tokens}: context cannot be negative",
                fix="pass --context-tokens 0 or more to python -m training.train",
            )
        for name, flag in (("cross_sentence", "cross-sentence"), ("packed", "packed-windows")):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise WindowSettingsError(
                    f"{name}={value!r}: this window setting is true or false",
                    fix=f"pass --{flag} or --no-{flag} to python -m training.train, "
                    f'or write {name} as JSON true or false (not a string) in "windows"',
                )


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


def packed_windows(
    document: Sequence[SentencePieces],
    max_tokens: int,
    side_context: int,
    cls_id: int,
    sep_id: int,
) -> list[PackedWindow]:
    """Windows that label every word of `document` exactly once, several sentences each.

    Each window is `[CLS]`, up to `side_context` pieces before its first labelled word,
    as many following words as fit while leaving `side_context` pieces after them, those
    pieces, `[SEP]`. A word longer than a window keeps only its first pieces, as in
    `build_window`. Sentence indices of the targets are positions in `document`.
    """
    budget = max_tokens - 2
    side_context = min(side_context, (budget - 1) // 2)
    words = [
        (sentence, index, list(pieces[:budget]))
        for sentence, sentence_pieces in enumerate(document)
        for index, pieces in enumerate(sentence_pieces)
    ]
    stream = [token for _, _, pieces in words for token in pieces]
    word_starts = np.cumsum([0] + [len(pieces) for _, _, pieces in words])
    windows: list[PackedWindow] = []
    first = 0
    while first < len(words):
        left_start = max(0, int(word_starts[first]) - side_context)
        limit = left_start + budget - side_context  # where the labelled words must end
        last = first + 1
        while last < len(words) and word_starts[last + 1] <= limit:
            last += 1
        end = min(len(stream), left_start + budget)
        token_ids = np.asarray([cls_id, *stream[left_start:end], sep_id], dtype=np.int32)
        positions = word_starts[first:last] - left_start + 1
        windows.append(
            PackedWindow(_targets_of(words[first:last]), token_ids, positions.astype(np.int32))
        )
        first = last
    return windows


def _targets_of(words: Sequence[tuple[int, int, list[int]]]) -> tuple[Target, ...]:
    """Consecutive (sentence, word index) pairs grouped into one Target per sentence."""
    targets: list[Target] = []
    for sentence, index, _ in words:
        if targets and targets[-1].sentence == sentence:
            targets[-1] = Target(sentence, targets[-1].start, index + 1)
        else:
            targets.append(Target(sentence, index, index + 1))
    return tuple(targets)


def bucket_length(length: int) -> int:
    """The padded length for a window of `length` tokens."""
    for bucket in LENGTH_BUCKETS:
        if length <= bucket:
            return bucket
    raise ValueError(f"a window of {length} tokens exceeds BERT's 512")


def pad_batch(
    windows: Sequence[Window | PackedWindow], pad_id: int, *, bucketed: bool = True
) -> dict[str, np.ndarray]:
    """Model inputs for a batch, padded to its longest window, rounded up to a length
    bucket when `bucketed` (compiled Keras steps then see few distinct shapes)."""
    longest = max(len(window.token_ids) for window in windows)
    length = bucket_length(longest) if bucketed else longest
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


def length_sorted_batches(
    windows: Sequence[Window | PackedWindow], batch_size: int
) -> list[list[int]]:
    """Indices of windows grouped into batches of similar length (less padding)."""
    order = sorted(range(len(windows)), key=lambda index: len(windows[index].token_ids))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
