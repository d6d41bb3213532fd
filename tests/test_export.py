"""The TensorFlow SavedModel export gives the Keras model's predictions."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from tagger.export import main
from tagger.model_folder import load_model_folder
from tagger.tokenization import WordPieceEncoder

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="the SavedModel export needs TensorFlow"
)


def encoded_batch(model_dir: Path) -> dict[str, np.ndarray]:
    """Two real sentences as WordPiece ids, the second padded."""
    encoder = WordPieceEncoder.from_vocab_file(model_dir / "vocab.txt", lowercase=True)
    vocab = encoder.vocab
    sentences = [
        ["patients", "developed", "renal", "failure", "after", "cocaine", "."],
        ["hepatitis", "was", "seen", "."],
    ]
    rows = [
        [vocab["[CLS]"], *(vocab.get(w, vocab["[UNK]"]) for w in s), vocab["[SEP]"]]
        for s in sentences
    ]
    width = max(len(row) for row in rows)
    token_ids = np.full((len(rows), width), vocab["[PAD]"], dtype="int32")
    for index, row in enumerate(rows):
        token_ids[index, : len(row)] = row
    return {
        "token_ids": token_ids,
        "segment_ids": np.zeros_like(token_ids),
        "padding_mask": (token_ids != vocab["[PAD]"]).astype("int32"),
    }


def test_export_gives_the_same_logits_as_the_keras_model(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    import tensorflow as tf

    out = tmp_path / "exports" / "tagger" / "1"
    assert main(["--model", str(tiny_model_dir), "--out", str(out)]) == 0
    assert (out / "saved_model.pb").is_file()
    assert (out / "assets.extra" / "vocab.txt").is_file()
    labels = json.loads((out / "assets.extra" / "model.json").read_text())["labels"]
    assert labels == ["O", "B-Disease", "I-Disease"]

    batch = encoded_batch(tiny_model_dir)
    keras_model = load_model_folder(tiny_model_dir).model
    expected = keras.ops.convert_to_numpy(
        keras_model({**batch, "padding_mask": batch["padding_mask"].astype(bool)}, training=False)
    )

    exported = tf.saved_model.load(str(out))
    signature = exported.signatures["serving_default"]
    outputs = signature(**{name: tf.constant(value) for name, value in batch.items()})
    np.testing.assert_allclose(outputs["logits"].numpy(), expected, rtol=1e-5, atol=1e-5)
    probabilities = outputs["probabilities"].numpy()
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    assert (probabilities.argmax(-1) == expected.argmax(-1)).all()
    direct = exported.serve(*(tf.constant(batch[name]) for name in batch))
    np.testing.assert_allclose(direct["logits"].numpy(), expected, rtol=1e-5, atol=1e-5)


def test_export_of_an_incomplete_folder_fails_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken").mkdir()
    assert main(["--model", str(tmp_path / "broken"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"python -m tagger.export: error: {tmp_path / 'broken'}: incomplete")
    assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_export_without_model_takes_the_version_in_service(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAGGER_REGISTRY_DIR", str(tmp_path / "registry"))
    assert main(["--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m tagger.export: error: no model is in service: ")
    assert f"{tmp_path / 'registry' / 'current'} does not exist yet" in err
    assert err.count("\n") == 1 and "Fix: pass --model" in err
