"""Multi-task fine-tuning: a second label set over the same sentences, through its own head.

BC5CDR labels the same sentences twice, once for diseases and once for chemicals
(``bc5cdr-chem/``, token for token aligned). Training on both shapes the encoder with
twice the supervision: an auxiliary token head reads the same (dropout-regularised)
sequence output as the disease classifier, and each step's loss is the disease loss
plus ``weight`` times the auxiliary loss. Only the disease classifier is saved, scored
and served; the auxiliary head is dropped with the training model.

``python -m training.train --aux-labels DIR`` reads ``DIR/train.tsv`` (and
``DIR/devel.tsv`` for ``--refit-on-devel``); every sentence must have exactly the words
of the disease split's, or the error names the file and line where they part.

Example (two label sets on one tiny sentence):

>>> from tagger.bio import Sentence
>>> disease = [Sentence(("Cocaine", "toxicity"), ("O", "B-Disease"))]
>>> chemical = [Sentence(("Cocaine", "toxicity"), ("B-Chemical", "O"), line=1)]
>>> task = AuxiliaryTask("Chemical", align_labels(disease, chemical, "chem/train.tsv"))
>>> task.labels, task.label_ids()["B-Chemical"], task.weight
(('O', 'B-Chemical', 'I-Chemical'), 1, 0.5)
>>> try:
...     align_labels(disease, [Sentence(("Cocaine", "abuse"), ("O", "O"), line=7)], "chem.tsv")
... except DataError as error:
...     print(error)  # doctest: +ELLIPSIS
chem.tsv:8: 'abuse' where the training split has 'toxicity' (sentence 1, word 2); the ...
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from tagger.bio import Sentence, read_bio
from tagger.model import MaskedTokenCrossEntropy
from training.data import DataError, file_sha256

# BC5CDR's second label set: chemicals.
DEFAULT_AUX_ENTITY_TYPE = "Chemical"
# Half the disease loss: the auxiliary task shapes the encoder without leading it.
DEFAULT_AUX_WEIGHT = 0.5

_ALIGN_FIX = (
    "the auxiliary labels must be for exactly the training sentences, token for token: "
    "pass --aux-labels a folder of the same splits labelled for another entity type"
)


@dataclass(frozen=True)
class AuxiliaryTask:
    """A second label set for the training sentences and the weight of its loss.

    Args:
        entity_type: the auxiliary entity type, e.g. ``Chemical``.
        train: the training sentences with the auxiliary labels, aligned with the
            disease training sentences (same order, same words).
        weight: the auxiliary loss's weight against the disease loss's 1.
        dev: the devel sentences with the auxiliary labels (only a refit on train and
            devel trains on them).
        source: where the labels came from, for ``model.json``.
    """

    entity_type: str
    train: Sequence[Sentence]
    weight: float = DEFAULT_AUX_WEIGHT
    dev: Sequence[Sentence] = ()
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> tuple[str, ...]:
        return ("O", f"B-{self.entity_type}", f"I-{self.entity_type}")

    def label_ids(self) -> dict[str, int]:
        return {label: index for index, label in enumerate(self.labels)}

    def describe(self) -> dict[str, Any]:
        """What ``model.json``'s ``training["auxiliary"]`` records."""
        return {"entity_type": self.entity_type, "weight": self.weight, **self.source}


def align_labels(
    main: Sequence[Sentence], auxiliary: Sequence[Sentence], source: str
) -> list[Sentence]:
    """`main`'s sentences with `auxiliary`'s labels, after checking the words are the same.

    Raises:
        DataError: naming ``source`` and the line where the words part, or the counts.
    """
    if len(main) != len(auxiliary):
        raise DataError(
            f"{source} has {len(auxiliary)} sentences, the training split {len(main)}; {_ALIGN_FIX}"
        )
    aligned = []
    for number, (sentence, other) in enumerate(zip(main, auxiliary, strict=True), start=1):
        if sentence.words != other.words:
            _raise_misaligned(sentence, other, number, source)
        aligned.append(Sentence(sentence.words, other.labels, other.line))
    return aligned


def _raise_misaligned(sentence: Sentence, other: Sentence, number: int, source: str) -> None:
    shared = min(len(sentence.words), len(other.words))
    index = next((i for i in range(shared) if sentence.words[i] != other.words[i]), None)
    if index is None:
        raise DataError(
            f"{_where(source, other, shared + 1)} sentence {number} has {len(other.words)} "
            f"words, the training split's {len(sentence.words)}; {_ALIGN_FIX}"
        )
    raise DataError(
        f"{_where(source, other, index + 1)} {other.words[index]!r} where the training split "
        f"has {sentence.words[index]!r} (sentence {number}, word {index + 1}); {_ALIGN_FIX}"
    )


def _where(source: str, sentence: Sentence, word: int) -> str:
    return f"{source}:{sentence.line + word - 1}:" if sentence.line else f"{source}:"


def load_auxiliary_task(
    folder: str | os.PathLike[str],
    train: Sequence[Sentence],
    dev: Sequence[Sentence] = (),
    *,
    entity_type: str = DEFAULT_AUX_ENTITY_TYPE,
    weight: float = DEFAULT_AUX_WEIGHT,
) -> AuxiliaryTask:
    """The auxiliary labels in `folder` (``train.tsv``; ``devel.tsv`` when `dev` is given),
    aligned with `train` and `dev` (each may be a prefix of its split)."""
    root = Path(folder)
    splits = {"train": train, **({"devel": dev} if dev else {})}
    aligned: dict[str, list[Sentence]] = {}
    source: dict[str, Any] = {}
    for split, sentences in splits.items():
        path = root / f"{split}.tsv"
        if not path.is_file():
            raise DataError(
                f"{path} is missing; --aux-labels needs {split}.tsv beside the others: "
                "pass a folder with the auxiliary train.tsv (and devel.tsv for "
                "--refit-on-devel)"
            )
        labelled = read_bio(path, entity_types=(entity_type,))[: len(sentences)]
        aligned[split] = align_labels(sentences, labelled, os.fspath(path))
        source[split] = {"file": path.name, "sha256": file_sha256(path)}
    return AuxiliaryTask(entity_type, aligned["train"], weight, aligned.get("devel", []), source)


def multitask_trainer(classifier: keras.Model, task: AuxiliaryTask) -> keras.Model:
    """The model trained on both label sets: `classifier`'s inputs, its logits and an
    auxiliary head's, both read from the classifier's dropout output.

    Training the returned model trains `classifier`'s own layers (they are shared);
    `classifier` alone is what is saved.
    """
    shared = classifier.get_layer("classifier_dropout").output
    logits = keras.layers.Dense(
        len(task.labels),
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        name="aux_token_logits",
    )(shared)
    logits = keras.layers.Activation("linear", dtype="float32", name="aux_float32_logits")(logits)
    return keras.Model(classifier.input, [classifier.output, logits], name="multitask_trainer")


def multitask_losses(task: AuxiliaryTask) -> dict[str, Any]:
    """``compile`` arguments: the same masked loss on both outputs, the auxiliary one weighted."""
    return {
        "loss": [MaskedTokenCrossEntropy(), MaskedTokenCrossEntropy()],
        "loss_weights": [1.0, task.weight],
    }
