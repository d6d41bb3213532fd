"""Training windows and shuffled, length-bucketed batches for `model.fit`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import numpy as np

from tagger.bio import Sentence
from tagger.model import IGNORE_INDEX
from tagger.tokenization import WordPieceEncoder
from tagger.windows import (
    PackedWindow,
    Target,
    Window,
    WindowSettings,
    bucket_length,
    build_window,
    packed_windows,
    pad_batch,
    split_oversized,
    training_targets,
)

AnyWindow = Window | PackedWindow


def training_windows(
    sentences: Sequence[Sentence], encoder: WordPieceEncoder, settings: WindowSettings
) -> list[AnyWindow]:
    """The windows one training epoch reads, as `settings` cut them.

    Unpacked (the default): one window per chunk of at most `max_words` words, never cut
    inside an entity, framed by up to `context_tokens` context pieces. Packed
    (`settings.packed`): `tagger.windows.packed_windows` over the sentences in file order,
    with `context_tokens // 2` context pieces on each side, as prediction reads a packed
    model's documents; without `cross_sentence` each sentence is packed on its own, so
    no window holds pieces of two sentences. Either way every word is labelled once.

    Args:
        sentences: the training sentences, in file order (neighbours are neighbours in
            the abstract, so context across sentences reads the abstract's own text).
        encoder: the WordPiece encoder of the model being trained.
        settings: how windows are cut.

    Returns:
        Windows whose targets index `sentences`.

    Example:

    >>> from tagger.tokenization import WordPieceEncoder
    >>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "no", "fever", "."]
    >>> encoder = WordPieceEncoder({t: i for i, t in enumerate(vocab)}, lowercase=True)
    >>> corpus = [Sentence(["No", "fever", "."], ["O", "B-Disease", "O"])] * 4
    >>> chunked = training_windows(corpus, encoder, WindowSettings(max_tokens=8))
    >>> packed = training_windows(
    ...     corpus, encoder, WindowSettings(max_tokens=8, cross_sentence=True, packed=True)
    ... )
    >>> len(chunked), sum(len(w.token_ids) for w in chunked)  # 4 x [CLS] 3 words [SEP]
    (4, 20)
    >>> len(packed), sum(len(w.token_ids) for w in packed)  # 6 + 6 words, 2 x [CLS] [SEP]
    (2, 16)
    """
    corpus = encoder.encode_sentences([sentence.words for sentence in sentences])
    if settings.packed:
        return _packed_training_windows(corpus, settings, encoder.cls_id, encoder.sep_id)
    windows: list[AnyWindow] = []
    for index, sentence in enumerate(sentences):
        for chunk in training_targets(index, sentence.labels, settings.max_words):
            for target in split_oversized(chunk, corpus[index], settings.max_tokens):
                windows.append(
                    build_window(target, corpus, settings, encoder.cls_id, encoder.sep_id)
                )
    return windows


def _packed_training_windows(
    corpus: Sequence[Sequence[Sequence[int]]], settings: WindowSettings, cls_id: int, sep_id: int
) -> list[AnyWindow]:
    side_context = settings.context_tokens // 2
    if settings.cross_sentence:
        return list(packed_windows(corpus, settings.max_tokens, side_context, cls_id, sep_id))
    windows: list[AnyWindow] = []
    for index, sentence in enumerate(corpus):
        for window in packed_windows([sentence], settings.max_tokens, side_context, cls_id, sep_id):
            targets = tuple(Target(index, t.start, t.end) for t in window.targets)
            windows.append(dataclasses.replace(window, targets=targets))
    return windows


def window_labels(
    window: AnyWindow, sentences: Sequence[Sentence], label_ids: dict[str, int], length: int
) -> np.ndarray:
    """`(length,)` label ids: the target words' first pieces, IGNORE_INDEX elsewhere.

    Args:
        window: an unpacked or a packed window.
        sentences: the corpus its targets' sentence indices point into.
        label_ids: the id of each label.
        length: the padded length of the window's batch.
    """
    labels = np.full(length, IGNORE_INDEX, dtype=np.int32)
    for target, positions in window.parts():
        words = sentences[target.sentence].labels[target.start : target.end]
        labels[positions] = [label_ids[label] for label in words]
    return labels


class WindowBatches(keras.utils.PyDataset):
    """Batches of similar-length windows, reshuffled every epoch.

    Windows are shuffled, grouped into pools of `pool_batches` batches, sorted by length
    inside a pool and cut into batches, whose order is shuffled again: little padding,
    yet every epoch sees different batch compositions.
    """

    def __init__(
        self,
        windows: Sequence[AnyWindow],
        sentences: Sequence[Sentence],
        label_ids: dict[str, int],
        *,
        batch_size: int,
        pad_id: int,
        seed: int,
        max_batches: int | None = None,
        pool_batches: int = 50,
        aux_sentences: Sequence[Sentence] | None = None,
        aux_label_ids: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        if (aux_sentences is None) != (aux_label_ids is None):
            raise ValueError("aux_sentences and aux_label_ids go together")
        self.aux_sentences = aux_sentences
        self.aux_label_ids = aux_label_ids
        self.windows = list(windows)
        self.sentences = sentences
        self.label_ids = label_ids
        self.batch_size = batch_size
        self.pad_id = pad_id
        self.max_batches = max_batches
        self.pool_batches = pool_batches
        self.rng = np.random.default_rng(seed)
        self.batches = self._make_batches()

    def _make_batches(self) -> list[list[int]]:
        order = self.rng.permutation(len(self.windows))
        pool_size = self.batch_size * self.pool_batches
        batches: list[list[int]] = []
        for start in range(0, len(order), pool_size):
            pool = sorted(
                order[start : start + pool_size], key=lambda i: len(self.windows[i].token_ids)
            )
            batches.extend(
                pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size)
            )
        self.rng.shuffle(batches)
        batches = batches[: self.max_batches] if self.max_batches else batches
        self._vary_first_two_lengths(batches)
        return batches

    def _vary_first_two_lengths(self, batches: list[list[int]]) -> None:
        # Keras' TensorFlow adapter infers the input signature from the first two batches:
        # if both have the same padded length, that length is fixed for the whole run.
        lengths = [self._padded_length(batch) for batch in batches]
        for index in range(1, len(batches)):
            if lengths[index] != lengths[0]:
                batches[1], batches[index] = batches[index], batches[1]
                return

    def _padded_length(self, batch: list[int]) -> int:
        return bucket_length(max(len(self.windows[i].token_ids) for i in batch))

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(
        self, index: int
    ) -> tuple[dict[str, np.ndarray], np.ndarray | tuple[np.ndarray, np.ndarray]]:
        """The batch's inputs and labels; with auxiliary labels, a pair of label arrays
        (for a :func:`training.multitask.multitask_trainer`'s two outputs)."""
        chosen = [self.windows[i] for i in self.batches[index]]
        inputs = pad_batch(chosen, self.pad_id)
        length = inputs["token_ids"].shape[1]
        labels = np.stack(
            [window_labels(window, self.sentences, self.label_ids, length) for window in chosen]
        )
        if self.aux_sentences is None or self.aux_label_ids is None:
            return inputs, labels
        aux_labels = np.stack(
            [
                window_labels(window, self.aux_sentences, self.aux_label_ids, length)
                for window in chosen
            ]
        )
        return inputs, (labels, aux_labels)

    def on_epoch_end(self) -> None:
        self.batches = self._make_batches()
