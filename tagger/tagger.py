"""The `Tagger` API: load a trained model folder, tag raw text or pre-split words.

Example (the folder is usually ``models/default``; here it is ``tiny_model_dir``, a tiny
model trained in seconds, so the example shows the form of the answers, not which words
the model marks):
    >>> tagger = Tagger.load(tiny_model_dir)
    >>> tagger.labels
    ['O', 'B-Disease', 'I-Disease']
    >>> text = "Cocaine-induced seizures in two patients. No fever was seen."

`analyze` splits the text into sentences and words and labels every word in IOB2:
    >>> sentences = tagger.analyze(text)
    >>> for sentence in sentences:
    ...     print(sentence.words, len(sentence.labels), len(sentence.scores))
    ('Cocaine', '-', 'induced', 'seizures', 'in', 'two', 'patients', '.') 8 8
    ('No', 'fever', 'was', 'seen', '.') 5 5

`tag` gives one span per mention (each starts at a B- label), with character offsets:
    >>> spans = tagger.tag(text)
    >>> len(spans) == sum(label.startswith("B-") for s in sentences for label in s.labels)
    True
    >>> all(span.text == text[span.start : span.end] for span in spans)
    True
    >>> {span.label for span in spans} <= {"Disease"}, all(0 <= span.score <= 1 for span in spans)
    (True, True)

`tag_words` labels words split beforehand:
    >>> labels, scores = tagger.tag_words([["Cocaine", "-", "induced", "seizures", "."]])[0]
    >>> len(labels), len(scores), set(labels) <= set(tagger.labels)
    (5, 5, True)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tagger.decoding import DecoderError, get_decoder
from tagger.device import describe_device
from tagger.model_folder import (
    METADATA_FILE,
    LoadedModel,
    ModelFolderError,
    load_model_folder,
    load_without_weights,
)
from tagger.predict import Progress, WordPredictor, default_packed_context
from tagger.references import ModelReference, resolve_model
from tagger.runtimes import (
    RUNTIME_NAMES,
    SERVING_NOTE_FLAG,
    KerasRuntime,
    LogitsRuntime,
    OnnxRuntime,
    RuntimeSetupError,
    choose_serving,
    default_runtime,
    ensure_onnx_graph,
)
from tagger.spans import Span, TaggedSentence, spans_of
from tagger.text import TextSentence, split_text
from tagger.windows import WindowSettingsError

WordLabels = tuple[tuple[str, ...], tuple[float, ...]]
logger = logging.getLogger(__name__)
# Keras dtype policies back to the precision names of `Tagger.load`.
_POLICY_PRECISIONS = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}


class Tagger:
    """A trained disease tagger, ready to tag text and BIO data.

    `Tagger(loaded)` serves a Keras model already in memory (training does this);
    `Tagger.load(model)` reads a model folder and picks the runtime.

    Attributes:
        runtime: what computes the logits (`tagger.runtimes.KerasRuntime` or `OnnxRuntime`).
        runtime_name: `keras` or `onnx`.
        precision: the precision served (`float32`, `bfloat16`, `float16` or `int8`).
        serving_note: None, or why it serves otherwise than the default would, e.g.
            "serving with Keras float32 instead of ONNX Runtime int8: the ONNX graph cache
            /x is not writable (...) (set TAGGER_CACHE_DIR to a writable folder)".
    """

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        batch_size: int = 64,
        decoder: str | None = None,
        runtime: LogitsRuntime | None = None,
        packed_context: int | str | None = "auto",
        precision: str | None = None,
        serving_note: str | None = None,
    ) -> None:
        if runtime is None:
            if loaded.model is None:
                raise ValueError("a Tagger needs a Keras model or a runtime to compute logits")
            runtime = KerasRuntime(loaded.model)
        self._keras_model = loaded.model
        self.runtime = runtime
        self.runtime_name = _runtime_name(runtime)
        self.precision = precision or _keras_precision(loaded.model)
        self.serving_note = serving_note
        self.folder = loaded.folder
        self.info = loaded.metadata
        self.labels = list(loaded.metadata.labels)
        self._decoder_name = decoder
        self._decode = _decoder(decoder, loaded)
        if packed_context == "auto":
            packed_context = default_packed_context(loaded.metadata.windows)
        elif isinstance(packed_context, str) or (packed_context is not None and packed_context < 0):
            raise WindowSettingsError(
                f"packed_context={packed_context!r} is not a context size",
                fix="pass packed_context='auto' (the model's default), None (one window per "
                "sentence) or a number of context tokens, 0 or more",
            )
        self._loaded = loaded
        self._packed_context = packed_context
        self._predictor = WordPredictor(
            runtime,
            loaded.encoder,
            loaded.metadata.windows,
            batch_size=batch_size,
            packed_context=packed_context,
        )

    @classmethod
    def load(
        cls,
        model: ModelReference | None = None,
        *,
        batch_size: int = 64,
        decoder: str | None = None,
        precision: str | None = None,
        runtime: str = "auto",
        packed_context: int | str | None = "auto",
        threads: int | None = None,
    ) -> Tagger:
        """Load a model: a folder, a registry version id, or `current` (None: `current`).

        `runtime` is `keras`, `onnx` (see `tagger.runtimes`) or `auto`: ONNX Runtime on a
        CPU-only machine, Keras where a GPU is visible, or the one runtime that has the
        `precision` asked for. `precision` is float32, bfloat16 or float16 on Keras (mixed
        precision), float32 or int8 on ONNX Runtime; by default float32 on Keras and int8
        on ONNX Runtime (BENCHMARKS.md has the F1 of each). A combination that cannot be
        served raises `RuntimeSetupError`; the one fallback, `auto` serving Keras float32
        when ONNX Runtime cannot be set up (and no other precision was asked for), logs a
        warning and sets `serving_note`. `decoder` overrides the one the model was trained
        with. `packed_context` is the context on each side of windows shared by
        consecutive sentences ("auto": the model's default, None: one window per sentence,
        as in training). `threads` is how many windows ONNX Runtime runs at once (default:
        every core this process may run on; a batch worker sharing a machine gives its
        share); Keras takes its threads from TensorFlow's settings.
        """
        chosen, served = choose_serving(runtime, precision)
        folder = resolve_model(model)
        note = None
        try:
            loaded, logits_runtime = RUNTIME_LOADERS[chosen](folder, served, threads)
        except RuntimeSetupError as error:
            if not (runtime == "auto" and chosen == "onnx" and precision in (None, "float32")):
                raise
            note = (
                f"serving with Keras float32 instead of {RUNTIME_NAMES[chosen]} {served}: "
                f"{error.what} ({error.remedy} to serve with {RUNTIME_NAMES[chosen]})"
            )
            logger.warning("%s", note, extra={SERVING_NOTE_FLAG: True})
            served = "float32"
            loaded, logits_runtime = _load_keras(folder, served, threads)
        return cls(
            loaded,
            batch_size=batch_size,
            decoder=decoder,
            runtime=logits_runtime,
            packed_context=packed_context,
            precision=served,
            serving_note=note,
        )

    def describe_serving(self) -> str:
        """How the model is served, e.g. `ONNX Runtime int8 on CPU`, `Keras float32 on CPU`.

        A fallback is not part of it: show `serving_note` next to it when it is set.
        """
        device = "CPU" if isinstance(self.runtime, OnnxRuntime) else self.device
        name = RUNTIME_NAMES.get(self.runtime_name, self.runtime_name)
        return f"{name} {self.precision} on {device}"

    @property
    def model(self) -> Any:
        """The Keras model (for training and export); only the keras runtime has one."""
        if self._keras_model is None:
            raise AttributeError(
                "this Tagger runs on ONNX Runtime and holds no Keras model; load it with "
                "runtime='keras' to train or export it"
            )
        return self._keras_model

    @property
    def version(self) -> str:
        return self.info.version

    @property
    def device(self) -> str:
        if isinstance(self.runtime, OnnxRuntime):
            return "CPU (ONNX Runtime)"
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


def _runtime_name(runtime: LogitsRuntime) -> str:
    if isinstance(runtime, OnnxRuntime):
        return "onnx"
    if isinstance(runtime, KerasRuntime):
        return "keras"
    return type(runtime).__name__


def _keras_precision(model: Any) -> str:
    """The precision of a Keras model: its layers carry the mixed policy, not the model."""
    policies = {getattr(layer.dtype_policy, "name", "") for layer in getattr(model, "layers", [])}
    found = [precision for policy, precision in _POLICY_PRECISIONS.items() if policy in policies]
    return found[0] if found else "float32"


def _decoder(decoder: str | None, loaded: LoadedModel) -> Callable[..., Any]:
    if decoder is not None:
        return get_decoder(decoder)
    try:
        return get_decoder(loaded.metadata.decoder)
    except DecoderError as error:
        raise ModelFolderError(
            f"{loaded.folder / METADATA_FILE}: {error.what}",
            fix="retrain the model with `python -m training.train --decoder ...`, or choose "
            "a decoder when loading it",
        ) from None


def _load_keras(
    folder: Path, precision: str, threads: int | None
) -> tuple[LoadedModel, LogitsRuntime]:
    loaded = load_model_folder(folder, precision=precision)
    return loaded, KerasRuntime(loaded.model)


def _load_onnx(
    folder: Path, precision: str, threads: int | None
) -> tuple[LoadedModel, LogitsRuntime]:
    loaded = load_without_weights(folder)
    graph = ensure_onnx_graph(folder, loaded.metadata.version, precision)
    return loaded, OnnxRuntime(graph, threads=threads)


RuntimeLoader = Callable[[Path, str, int | None], tuple[LoadedModel, LogitsRuntime]]
RUNTIME_LOADERS: dict[str, RuntimeLoader] = {
    "keras": _load_keras,
    "onnx": _load_onnx,
}


def scoring_tagger(tagger: Tagger) -> Tagger:
    """A tagger of the same Keras model for scoring it: on ONNX Runtime float32 where that
    is how a CPU-only machine serves, else `tagger` itself.

    Training scores its model on devel every epoch and on test at the end; ONNX Runtime's
    float32 kernels give the same labels as Keras up to float rounding, in less time on
    the CPU. The graph is built from the weights as they are now: call this again after
    they change.

    Example:
        >>> keras_tagger = Tagger.load(tiny_model_dir, runtime="keras")
        >>> scoring_tagger(keras_tagger).describe_serving()
        'ONNX Runtime float32 on CPU'
    """
    model = getattr(tagger, "_keras_model", None)  # test doubles have none
    if model is None or default_runtime() != "onnx":
        return tagger
    from tagger.onnx_graph import classifier_graph, classifier_weights

    loaded = tagger._loaded
    graph = classifier_graph(classifier_weights(model), loaded.metadata.backbone_config)
    return Tagger(
        loaded,
        decoder=tagger._decoder_name,
        runtime=OnnxRuntime(graph.SerializeToString()),
        packed_context=tagger._packed_context,
        precision="float32",
    )
