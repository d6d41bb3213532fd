"""A tiny random BERT, a tiny disease corpus and its recipe, so tests run in seconds on a CPU.

The corpus and the recipe need no Keras; `tiny_backbone`, `tiny_encoder` and
`train_tiny_model` import it when called. The `tiny_model_dir` fixture (root conftest.py)
is the folder `train_tiny_model` writes.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tagger.bio import Sentence
from tagger.windows import WindowSettings
from training.recipes import TrainSettings

if TYPE_CHECKING:
    from tagger.encoders import Encoder

DISEASES = (
    "renal failure",
    "hypotension",
    "seizures",
    "hepatitis",
    "cardiac arrhythmia",
    "nephrotoxicity",
)
DRUGS = ("cocaine", "lithium", "cisplatin", "selegiline", "heparin")
TEMPLATES = (
    "patients developed {disease} after {drug} .",
    "{drug} induced {disease} in two patients .",
    "no {disease} was seen with {drug} treatment .",
)
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PIECES = ["##s", "##ed", "##ing", "-", "'", "(", ")", ",", ":", ";", "a", "the", "and", "of", "in"]


def tiny_corpus(repeat: int = 2) -> list[Sentence]:
    """Sentences with a disease mention each, labelled in IOB2."""
    sentences: list[Sentence] = []
    combos = itertools.product(TEMPLATES, DISEASES, DRUGS)
    for template, disease, drug in itertools.islice(combos, 30 * repeat):
        words: list[str] = []
        labels: list[str] = []
        for word in template.split():
            if word == "{disease}":
                parts = disease.split()
                words += parts
                labels += ["B-Disease"] + ["I-Disease"] * (len(parts) - 1)
            else:
                words.append(drug if word == "{drug}" else word)
                labels.append("O")
        sentences.append(Sentence(words, labels))
    return sentences


def tiny_vocabulary() -> list[str]:
    words = {w for s in tiny_corpus() for w in s.words}
    words |= {"patient", "disease", "failure", "no", "was", "with"}
    return SPECIALS + PIECES + sorted(words - set(PIECES))


def tiny_backbone(vocabulary_size: int = 30, *, seed: int = 0, **sizes: Any) -> Any:
    """A random KerasHub BertBackbone, 1 layer and 8 wide unless `sizes` say otherwise."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    shape = {
        "num_layers": 1,
        "num_heads": 2,
        "hidden_dim": 8,
        "intermediate_dim": 16,
        "max_sequence_length": 32,
    }
    return keras_hub.models.BertBackbone(vocabulary_size=vocabulary_size, **{**shape, **sizes})


def tiny_encoder(folder: Path, *, seed: int = 1) -> Encoder:
    """A 2-layer, 16-wide random BERT with the tiny vocabulary written to `folder`."""
    from tagger.encoders import Encoder

    folder.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocabulary()
    vocab_path = folder / "vocab.txt"
    vocab_path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    backbone = tiny_backbone(
        len(vocab),
        seed=seed,
        num_layers=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=64,
        dropout=0.0,
    )
    return Encoder(backbone, vocab_path, lowercase=True, source="tiny-random-bert")


TINY_WINDOWS = WindowSettings(max_tokens=24, max_words=8, context_tokens=6, cross_sentence=True)
TINY_TRAIN_SENTENCES = 48


def tiny_split() -> tuple[list[Sentence], list[Sentence]]:
    """The tiny corpus as train and dev sets: the first TINY_TRAIN_SENTENCES, the rest."""
    corpus = tiny_corpus()
    return corpus[:TINY_TRAIN_SENTENCES], corpus[TINY_TRAIN_SENTENCES:]


def tiny_recipe(epochs: int = 2, **changes: Any) -> TrainSettings:
    """The recipe for the tiny BERT: a high learning rate, short windows, every epoch run.

    `patience` equals `epochs`, so early stopping never cuts a tiny run short; `changes`
    set any other field.

    >>> tiny_recipe(4).epochs, tiny_recipe(4).patience, tiny_recipe(max_steps=3).max_steps
    (4, 4, 3)
    """
    recipe = TrainSettings(
        learning_rate=5e-3, epochs=epochs, batch_size=8, windows=TINY_WINDOWS, patience=epochs
    )
    return dataclasses.replace(recipe, **changes)


TINY_RECIPE = tiny_recipe()  # two epochs: what the worker and app tests retrain with


def train_tiny_model(folder: Path, *, epochs: int = 6, max_steps: int | None = None) -> Path:
    """Fine-tune the tiny BERT for a few steps and save it as a real model folder."""
    from tagger.model_folder import save_model_folder
    from training.train import fine_tune

    encoder = tiny_encoder(folder.parent / f"{folder.name}-encoder")
    train, dev = tiny_split()
    result = fine_tune(encoder, train, dev, tiny_recipe(epochs, max_steps=max_steps), verbose=0)
    return save_model_folder(result.tagger.model, encoder.vocab_path, result.tagger.info, folder)


def tiny_training_folders(root: Path) -> tuple[Path, Path]:
    """An encoder folder ``load_encoder`` reads and a BIO data folder (train 40, devel 10,
    test the rest of :func:`tiny_corpus`), for the ``python -m training.train`` tests."""
    from tagger.bio import write_bio

    encoder_dir = root / "encoder"
    tiny_encoder(encoder_dir).backbone.save_to_preset(str(encoder_dir))
    corpus = tiny_corpus()
    data = root / "data"
    data.mkdir()
    write_bio(corpus[:40], data / "train.tsv")
    write_bio(corpus[40:50], data / "devel.tsv")
    write_bio(corpus[50:], data / "test.tsv")
    return encoder_dir, data
