"""The `Tagger` API: load a trained model folder, tag raw text or pre-split words.

Example:
    >>> tagger = Tagger.load("models/default")  # doctest: +SKIP
    >>> for span in tagger.tag("Cocaine-induced seizures in two patients."):  # doctest: +SKIP
    ...     print(span.start, span.end, span.text, span.label, round(span.score, 2))
    16 24 seizures Disease 0.98
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tagger.decoding import get_decoder, spans_from_labels
from tagger.device import describe_device
from tagger.model_folder import LoadedModel, load_model_folder
from tagger.predict import Progress, WordPredictor
from tagger.spans import Span, TaggedSentence
from tagger.text import TextSentence, split_text

WordLabels = tuple[tuple[str, ...], tuple[float, ...]]


class Tagger:
    """A trained disease tagger, ready to tag text and BIO data."""

    def __init__(
        self, loaded: LoadedModel, *, batch_size: int = 64, decoder: str | None = None
    ) -> None:
        self.model = loaded.model
        self.folder = loaded.folder
        self.info = loaded.metadata
        self.labels = list(loaded.metadata.labels)
        self._decode = get_decoder(decoder or loaded.metadata.decoder)
        self._predictor = WordPredictor(
            loaded.model, loaded.encoder, loaded.metadata.windows, batch_size=batch_size
        )

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        *,
        batch_size: int = 64,
        decoder: str | None = None,
        precision: str = "float32",
    ) -> Tagger:
        """Load a model folder.

        `decoder` overrides the one it was trained with; `precision="bfloat16"` runs
        mixed precision (see `load_model_folder`).
        """
        loaded = load_model_folder(model_dir, precision=precision)
        return cls(loaded, batch_size=batch_size, decoder=decoder)

    @property
    def version(self) -> str:
        return self.info.version

    @property
    def device(self) -> str:
        return describe_device()

    @property
    def metadata(self) -> dict[str, Any]:
        return self.info.to_json()

    def tag_words(
        self,
        sentences: Sequence[Sequence[str]],
        *,
        batch_size: int | None = None,
        progress: Progress | None = None,
        documents: Sequence[int] | None = None,
    ) -> list[WordLabels]:
        """Valid IOB2 labels and a confidence for every word of every sentence.

        `documents` gives the sentence count of each independent document, in order;
        context never crosses from one to the next. Without it, all sentences form one.
        """
        if batch_size is not None:
            self._predictor.batch_size = batch_size
        probabilities = self._predictor.probabilities(
            sentences, progress=progress, documents=documents
        )
        return [self._decode_sentence(rows) for rows in probabilities]

    def _decode_sentence(self, rows: np.ndarray) -> WordLabels:
        path = self._decode(rows, self.labels)
        labels = tuple(self.labels[index] for index in path)
        scores = tuple(float(rows[position, index]) for position, index in enumerate(path))
        return labels, scores

    def analyze_many(
        self, texts: Sequence[str], *, progress: Progress | None = None
    ) -> list[list[TaggedSentence]]:
        """Sentences of each text with labels; all texts share the same batches."""
        split = [split_text(text) for text in texts]
        flat: list[TextSentence] = [sentence for sentences in split for sentence in sentences]
        predictions = self.tag_words(
            [sentence.words for sentence in flat],
            progress=progress,
            documents=[len(sentences) for sentences in split],
        )
        tagged = iter(
            TaggedSentence(s.words, s.offsets, s.start, s.end, labels, scores)
            for s, (labels, scores) in zip(flat, predictions, strict=True)
        )
        return [[next(tagged) for _ in sentences] for sentences in split]

    def analyze(self, text: str) -> list[TaggedSentence]:
        return self.analyze_many([text])[0]

    def tag_many(
        self, texts: Sequence[str], *, progress: Callable[[int, int], None] | None = None
    ) -> list[list[Span]]:
        """Spans of each text, character offsets into that text."""
        analyzed = self.analyze_many(texts, progress=progress)
        return [spans_of(text, sentences) for text, sentences in zip(texts, analyzed, strict=True)]

    def tag(self, text: str) -> list[Span]:
        return self.tag_many([text])[0]


def spans_of(text: str, sentences: Sequence[TaggedSentence]) -> list[Span]:
    """Character spans of the entities in tagged sentences of `text`."""
    spans: list[Span] = []
    for index, sentence in enumerate(sentences):
        for word_span in spans_from_labels(sentence.labels, sentence.scores):
            start = sentence.offsets[word_span.start][0]
            end = sentence.offsets[word_span.end - 1][1]
            spans.append(Span(start, end, text[start:end], word_span.label, word_span.score, index))
    return spans
