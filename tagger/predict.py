"""Label probabilities for every word of every sentence, through length-sorted windows."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np

from tagger.tokenization import WordPieceEncoder
from tagger.windows import (
    Target,
    Window,
    WindowSettings,
    build_window,
    length_sorted_batches,
    pad_batch,
    prediction_targets,
)

Progress = Callable[[int, int], None]


class WordPredictor:
    """Runs a token classifier over whole sentences of any length.

    Each sentence is cut into targets that fit one window; context fills the rest of the
    window, so a long sentence is read through overlapping windows and every word gets
    exactly one probability row, from the window in which it is a target.
    """

    def __init__(
        self,
        model: keras.Model,
        encoder: WordPieceEncoder,
        windows: WindowSettings,
        *,
        batch_size: int = 64,
    ) -> None:
        self.model = model
        self.encoder = encoder
        self.windows = windows
        self.batch_size = batch_size

    def windows_for(
        self, sentences: Sequence[Sequence[str]], *, documents: Sequence[int] | None = None
    ) -> list[Window]:
        """Windows of all sentences; `documents` (sentence counts) keeps context inside each.

        Without `documents` the sentences form one document, so with `cross_sentence`
        context flows between neighbours; independent texts must not see each other.
        """
        corpus = self.encoder.encode_sentences(sentences)
        windows: list[Window] = []
        first = 0
        for size in [len(corpus)] if documents is None else documents:
            document = corpus[first : first + size]
            for index, pieces in enumerate(document):
                for target in prediction_targets(index, pieces, self.windows):
                    window = build_window(
                        target, document, self.windows, self.encoder.cls_id, self.encoder.sep_id
                    )
                    moved = Target(first + index, target.start, target.end)
                    windows.append(Window(moved, window.token_ids, window.label_positions))
            first += size
        return windows

    def probabilities(
        self,
        sentences: Sequence[Sequence[str]],
        *,
        progress: Progress | None = None,
        documents: Sequence[int] | None = None,
    ) -> list[np.ndarray]:
        """One `(words, labels)` probability array per sentence."""
        windows = self.windows_for(sentences, documents=documents)
        num_labels = int(self.model.output_shape[-1])
        result = [np.zeros((len(words), num_labels), np.float32) for words in sentences]
        batches = length_sorted_batches(windows, self.batch_size)
        for done, batch in enumerate(batches, start=1):
            chosen = [windows[index] for index in batch]
            logits = np.asarray(self.model.predict_on_batch(pad_batch(chosen, self.encoder.pad_id)))
            probabilities = _softmax(logits)
            for row, window in enumerate(chosen):
                target = window.target
                rows = probabilities[row, window.label_positions]
                result[target.sentence][target.start : target.end] = rows
            if progress is not None:
                progress(done, len(batches))
        return result


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
