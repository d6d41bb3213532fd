"""The real MiniLM encoder on a slice of the real BC5CDR-disease data (about a minute on a CPU).

The tests that read the data skip without it (BC5CDR_DIR, else data/bc5cdr-disease); all
skip without the MiniLM package, which `make` installs beside requirements.txt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import pytest

from tagger.bio import read_bio
from tagger.encoders import Encoder, EncoderError, load_encoder
from tagger.tokenization import WordPieceEncoder
from tagger.windows import WindowSettings
from tests.helpers import is_valid_iob2
from training.evaluate import evaluate_tagger
from training.train import TrainSettings, fine_tune

pytestmark = pytest.mark.integration

WORDS = [
    "Parkinson", "'", "s", "disease", "naïve", "Café", "5", "-", "FU", "cocaine-induced",
    "hypokalaemia", "COVID-19", "α-synuclein", "IL-2R", "Na+/K+-ATPase", "", "\x00", "LDL",
    "nephrotoxicity", "Torsade", "de", "pointes", "mg/kg", "°C", "β2", "antineoplastic",
]  # fmt: skip


@pytest.fixture(scope="module")
def minilm() -> Encoder:
    try:
        return load_encoder(None)
    except EncoderError as error:
        pytest.skip(f"the default MiniLM encoder is not installed: {error}")


def hf_word_ids(folder: Path, sentences: list[list[str]]) -> list[list[list[int]]]:
    """The WordPiece ids of each word by the encoder's own Hugging Face tokenizer.json."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    encodings = tokenizer.encode_batch(sentences, is_pretokenized=True, add_special_tokens=False)
    result: list[list[list[int]]] = []
    for words, encoding in zip(sentences, encodings, strict=True):
        pieces: list[list[int]] = [[] for _ in words]
        for token_id, word in zip(encoding.ids, encoding.word_ids, strict=True):
            if word is not None:
                pieces[word].append(token_id)
        result.append(pieces)
    return result


def test_wordpiece_ids_match_the_encoders_own_tokenizer(minilm: Encoder) -> None:
    folder = minilm.vocab_path.parent
    if not (folder / "tokenizer.json").is_file():
        pytest.skip(f"{folder} has no tokenizer.json to compare with")
    ours = WordPieceEncoder.from_vocab_file(minilm.vocab_path, lowercase=minilm.lowercase)
    expected = hf_word_ids(folder, [WORDS])[0]
    got = ours.encode_words(WORDS)
    for word, hf_ids, our_ids in zip(WORDS, expected, got, strict=True):
        # HF gives a word that normalises to nothing no piece; we give it one [UNK].
        assert our_ids == (hf_ids or [ours.unk_id]), word
    assert minilm.lowercase and ours.pieces_as_text(got[0]) == ["parkinson"]


def test_wordpiece_ids_match_on_real_sentences(minilm: Encoder, bc5cdr_dir: Path) -> None:
    folder = minilm.vocab_path.parent
    if not (folder / "tokenizer.json").is_file():
        pytest.skip(f"{folder} has no tokenizer.json to compare with")
    ours = WordPieceEncoder.from_vocab_file(minilm.vocab_path, lowercase=minilm.lowercase)
    sentences = [list(sentence.words) for sentence in read_bio(bc5cdr_dir / "test.tsv")[:1000]]
    expected = hf_word_ids(folder, sentences)
    for words, got, want in zip(sentences, ours.encode_sentences(sentences), expected, strict=True):
        assert got == want, words


class BatchLosses(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.losses: list[float] = []

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.losses.append(float((logs or {})["loss"]))


def test_fine_tune_minilm_on_a_slice_of_bc5cdr(minilm: Encoder, bc5cdr_dir: Path) -> None:
    train = read_bio(bc5cdr_dir / "train.tsv")[:200]
    dev = read_bio(bc5cdr_dir / "devel.tsv")[:100]
    settings = TrainSettings(
        learning_rate=1e-4,
        epochs=1,
        batch_size=8,
        max_steps=20,
        windows=WindowSettings(max_tokens=128, max_words=30, context_tokens=0),
    )
    losses = BatchLosses()
    result = fine_tune(minilm, train, dev, settings, callbacks=[losses], verbose=0)
    assert len(losses.losses) == 20
    # Keras reports the running mean of the epoch: it falls as soon as the model learns.
    assert losses.losses[-1] < losses.losses[0]
    assert len(result.history) == 1 and result.best_epoch == 1

    metrics = evaluate_tagger(result.tagger, dev)
    assert {"precision", "recall", "f1", "n_gold", "n_pred", "by_length"} <= set(metrics)
    assert metrics["n_gold"] > 0 and 0.0 <= metrics["f1"] <= 100.0
    assert metrics["f1"] == result.history[0]["dev"]["f1"]

    predictions = result.tagger.tag_words([sentence.words for sentence in dev])
    for sentence, (labels, scores) in zip(dev, predictions, strict=True):
        assert len(labels) == len(scores) == len(sentence.words)
        assert set(labels) <= {"O", "B-Disease", "I-Disease"} and is_valid_iob2(labels), labels
