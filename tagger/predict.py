"""Label probabilities for every word of every sentence, through length-sorted windows."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from tagger.runtimes import LogitsRuntime
from tagger.tokenization import WordPieceEncoder
from tagger.windows import (
    PackedWindow,
    Target,
    Window,
    WindowSettings,
    build_window,
    length_sorted_batches,
    packed_windows,
    pad_batch,
    prediction_targets,
)

Progress = Callable[[int, int], None]
AnyWindow = Window | PackedWindow


def default_packed_context(windows: WindowSettings) -> int | None:
    """Context pieces on each side of packed windows, or None to read sentence by sentence.

    Only a model trained with context across sentences has seen windows that span
    sentence boundaries; half its context budget on each side kept test F1 within 0.2 of
    sentence-by-sentence reading at 0.58 times the tokens (BENCHMARKS.md, packing).
    """
    if windows.cross_sentence and windows.context_tokens > 0:
        return max(1, windows.context_tokens // 2)
    return None


class WordPredictor:
    """Runs a token classifier over whole sentences of any length.

    By default each sentence is cut into targets that fit one window; context fills the
    rest of the window, so a long sentence is read through overlapping windows and every
    word gets exactly one probability row, from the window in which it is a target.
    With `packed_context` set, consecutive sentences of a document share windows instead
    (see `tagger.windows.packed_windows`).
    """

    def __init__(
        self,
        runtime: LogitsRuntime,
        encoder: WordPieceEncoder,
        windows: WindowSettings,
        *,
        batch_size: int = 64,
        packed_context: int | None = None,
    ) -> None:
        self.runtime = runtime
        self.encoder = encoder
        self.windows = windows
        self.batch_size = batch_size
        self.packed_context = packed_context

    def windows_for(
        self, sentences: Sequence[Sequence[str]], *, documents: Sequence[int] | None = None
    ) -> list[AnyWindow]:
        """Windows of all sentences; `documents` (sentence counts) keeps context inside each.

        Without `documents` the sentences form one document, so with `cross_sentence`
        context flows between neighbours; independent texts must not see each other.
        """
        corpus = self.encoder.encode_sentences(sentences)
        windows: list[AnyWindow] = []
        first = 0
        for size in [len(corpus)] if documents is None else documents:
            document = corpus[first : first + size]
            windows.extend(_moved(window, first) for window in self._document_windows(document))
            first += size
        return windows

    def _document_windows(self, document: Sequence[Sequence[Sequence[int]]]) -> list[AnyWindow]:
        cls_id, sep_id = self.encoder.cls_id, self.encoder.sep_id
        if self.packed_context is not None:
            return list(
                packed_windows(
                    document, self.windows.max_tokens, self.packed_context, cls_id, sep_id
                )
            )
        return [
            build_window(target, document, self.windows, cls_id, sep_id)
            for index, pieces in enumerate(document)
            for target in prediction_targets(index, pieces, self.windows)
        ]

    def probabilities(
        self,
        sentences: Sequence[Sequence[str]],
        *,
        progress: Progress | None = None,
        documents: Sequence[int] | None = None,
    ) -> list[np.ndarray]:
        """One `(words, labels)` probability array per sentence."""
        windows = self.windows_for(sentences, documents=documents)
        result = [
            np.zeros((len(words), self.runtime.num_labels), np.float32) for words in sentences
        ]
        batches = length_sorted_batches(windows, self.batch_size)
        for done, batch in enumerate(batches, start=1):
            chosen = [windows[index] for index in batch]
            inputs = pad_batch(chosen, self.encoder.pad_id, bucketed=self.runtime.bucketed)
            probabilities = _softmax(self.runtime.logits(inputs))
            for row, window in enumerate(chosen):
                for target, positions in window.parts():
                    result[target.sentence][target.start : target.end] = probabilities[
                        row, positions
                    ]
            if progress is not None:
                progress(done, len(batches))
        return result


def _moved(window: AnyWindow, first_sentence: int) -> AnyWindow:
    """The window with its sentence indices counted from the start of all input."""
    if first_sentence == 0:
        return window
    if isinstance(window, PackedWindow):
        targets = tuple(
            dataclasses.replace(target, sentence=target.sentence + first_sentence)
            for target in window.targets
        )
        return dataclasses.replace(window, targets=targets)
    target = window.target
    return dataclasses.replace(
        window, target=Target(target.sentence + first_sentence, target.start, target.end)
    )


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
