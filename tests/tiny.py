"""A tiny random BERT and a tiny disease corpus, so tests run in seconds on any CPU."""

from __future__ import annotations

import itertools
from pathlib import Path

import keras_hub

from tagger.bio import Sentence
from tagger.encoders import Encoder
from tagger.windows import WindowSettings

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


def tiny_encoder(folder: Path, *, seed: int = 1) -> Encoder:
    """A 2-layer, 16-wide random BERT with the tiny vocabulary written to `folder`."""
    import keras

    keras.utils.set_random_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocabulary()
    vocab_path = folder / "vocab.txt"
    vocab_path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocab),
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=64,
        dropout=0.0,
    )
    return Encoder(backbone, vocab_path, lowercase=True, source="tiny-random-bert")


TINY_WINDOWS = WindowSettings(max_tokens=24, max_words=8, context_tokens=6, cross_sentence=True)


def train_tiny_model(folder: Path, *, epochs: int = 6, max_steps: int | None = None) -> Path:
    """Fine-tune the tiny BERT for a few steps and save it as a real model folder."""
    from tagger.model_folder import save_model_folder
    from training.train import TrainSettings, fine_tune

    encoder = tiny_encoder(folder.parent / f"{folder.name}-encoder")
    corpus = tiny_corpus()
    settings = TrainSettings(
        learning_rate=5e-3,
        epochs=epochs,
        batch_size=8,
        windows=TINY_WINDOWS,
        max_steps=max_steps,
        patience=epochs,
    )
    result = fine_tune(encoder, corpus[:48], corpus[48:], settings, verbose=0)
    return save_model_folder(result.tagger.model, encoder.vocab_path, result.tagger.info, folder)
