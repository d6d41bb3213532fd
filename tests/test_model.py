"""The token classifier and its masked token loss, including the original per-sentence bug."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tagger.model import IGNORE_INDEX, MaskedTokenCrossEntropy, build_token_classifier
from tests.tiny import tiny_backbone

NUM_LABELS = 3


def numpy_masked_mean(labels: np.ndarray, logits: np.ndarray) -> float:
    """Cross-entropy of the scored tokens only, averaged over them, by hand."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    losses = [
        -log_probs[row, column, labels[row, column]]
        for row in range(labels.shape[0])
        for column in range(labels.shape[1])
        if labels[row, column] != IGNORE_INDEX
    ]
    return float(np.mean(losses)) if losses else 0.0


def random_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(3, 7, NUM_LABELS)).astype("float32")
    labels = rng.integers(0, NUM_LABELS, size=(3, 7)).astype("int32")
    labels[rng.random((3, 7)) < 0.5] = IGNORE_INDEX
    labels[0, 0] = 1  # at least one scored token
    return labels, logits


@pytest.mark.parametrize("seed", range(5))
def test_loss_is_the_masked_mean_over_scored_tokens(seed: int) -> None:
    labels, logits = random_case(seed)
    loss = float(MaskedTokenCrossEntropy()(labels, logits))
    assert loss == pytest.approx(numpy_masked_mean(labels, logits), rel=1e-5)


def test_ignored_tokens_change_nothing() -> None:
    labels, logits = random_case(42)
    ignored = labels == IGNORE_INDEX
    perturbed = logits.copy()
    perturbed[ignored] = np.random.default_rng(1).normal(0, 50, size=perturbed[ignored].shape)
    loss = MaskedTokenCrossEntropy()
    assert float(loss(labels, perturbed)) == pytest.approx(float(loss(labels, logits)), rel=1e-6)


def test_scored_tokens_do_change_the_loss() -> None:
    labels, logits = random_case(42)
    perturbed = logits.copy()
    perturbed[0, 0, 1] -= 5.0
    loss = MaskedTokenCrossEntropy()
    assert float(loss(labels, perturbed)) > float(loss(labels, logits)) + 0.1


def test_loss_with_no_scored_token_is_zero() -> None:
    labels = np.full((2, 4), IGNORE_INDEX, dtype="int32")
    logits = np.random.default_rng(0).normal(size=(2, 4, NUM_LABELS)).astype("float32")
    assert float(MaskedTokenCrossEntropy()(labels, logits)) == 0.0


def test_loss_is_not_a_per_sentence_mean() -> None:
    # One sentence with 1 scored token, one with 3: the mean is over 4 tokens, not 2 sentences.
    logits = np.zeros((2, 3, NUM_LABELS), dtype="float32")
    logits[0, 0] = [5.0, 0.0, 0.0]  # confident and right
    labels = np.asarray([[0, IGNORE_INDEX, IGNORE_INDEX], [1, 1, 1]], dtype="int32")
    loss = float(MaskedTokenCrossEntropy()(labels, logits))
    assert loss == pytest.approx(numpy_masked_mean(labels, logits), rel=1e-5)
    per_token = np.log(3.0)
    per_sentence_mean = (numpy_masked_mean(labels[:1], logits[:1]) + per_token) / 2
    assert loss != pytest.approx(per_sentence_mean, rel=1e-3)


def test_per_sentence_logits_are_rejected() -> None:
    """The original bug: logits `(batch, labels)` trained against `(batch, tokens)` labels."""
    labels = np.zeros((4, 3), dtype="int32")  # 4 sentences of 3 tokens
    per_sentence_logits = np.zeros((4, NUM_LABELS), dtype="float32")
    with pytest.raises(ValueError, match="per-sentence output cannot be trained"):
        MaskedTokenCrossEntropy()(labels, per_sentence_logits)


def test_mismatched_token_axis_is_rejected() -> None:
    labels = np.zeros((2, 5), dtype="int32")
    logits = np.zeros((2, 6, NUM_LABELS), dtype="float32")
    with pytest.raises(ValueError, match="differ on axis 1"):
        MaskedTokenCrossEntropy()(labels, logits)


def test_mismatched_batch_axis_is_rejected() -> None:
    labels = np.zeros((3, 5), dtype="int32")
    logits = np.zeros((2, 5, NUM_LABELS), dtype="float32")
    with pytest.raises(ValueError, match="differ on axis 0"):
        MaskedTokenCrossEntropy()(labels, logits)


def sentence_level_model(vocabulary: int = 20) -> keras.Model:
    """What the original project built: one label distribution per sentence."""
    token_ids = keras.Input(shape=(None,), dtype="int32")
    hidden = keras.layers.Embedding(vocabulary, 8)(token_ids)
    pooled = keras.layers.GlobalAveragePooling1D()(hidden)
    return keras.Model(token_ids, keras.layers.Dense(NUM_LABELS)(pooled))


def token_level_model(vocabulary: int = 20) -> keras.Model:
    token_ids = keras.Input(shape=(None,), dtype="int32")
    hidden = keras.layers.Embedding(vocabulary, 8)(token_ids)
    return keras.Model(token_ids, keras.layers.Dense(NUM_LABELS)(hidden))


def token_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    token_ids = rng.integers(1, 20, size=(16, 6)).astype("int32")
    labels = (token_ids % NUM_LABELS).astype("int32")
    labels[:, -2:] = IGNORE_INDEX
    return token_ids, labels


def test_fitting_a_per_sentence_model_to_token_labels_fails() -> None:
    keras.utils.set_random_seed(0)
    model = sentence_level_model()
    model.compile(optimizer="adam", loss=MaskedTokenCrossEntropy())
    token_ids, labels = token_data()
    with pytest.raises(ValueError, match="per-sentence output cannot be trained"):
        model.fit(token_ids, labels, batch_size=8, epochs=1, verbose=0)


def test_fitting_a_per_token_model_learns() -> None:
    keras.utils.set_random_seed(0)
    model = token_level_model()
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=MaskedTokenCrossEntropy())
    token_ids, labels = token_data()
    history = model.fit(token_ids, labels, batch_size=8, epochs=15, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]


def test_loss_survives_serialization() -> None:
    loss = MaskedTokenCrossEntropy(name="custom")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, MaskedTokenCrossEntropy)
    labels, logits = random_case(3)
    assert float(restored(labels, logits)) == pytest.approx(float(loss(labels, logits)))


def test_classifier_outputs_one_logit_row_per_token() -> None:
    model = build_token_classifier(tiny_backbone(), NUM_LABELS, dropout=0.2)
    assert model.output_shape == (None, None, NUM_LABELS)
    assert model.get_layer("classifier_dropout").rate == 0.2
    inputs = {
        "token_ids": np.asarray([[2, 5, 6, 3, 0], [2, 7, 3, 0, 0]], dtype="int32"),
        "segment_ids": np.zeros((2, 5), dtype="int32"),
        "padding_mask": np.asarray([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]], dtype=bool),
    }
    logits = np.asarray(model.predict_on_batch(inputs))
    assert logits.shape == (2, 5, NUM_LABELS)
    assert np.isfinite(logits).all()
    labels = np.full((2, 5), IGNORE_INDEX, dtype="int32")
    labels[:, 1] = [0, 2]
    assert np.isfinite(float(MaskedTokenCrossEntropy()(labels, logits)))


def test_classifier_freezes_the_unused_pooler() -> None:
    backbone = tiny_backbone()
    model = build_token_classifier(backbone, NUM_LABELS)
    assert not backbone.get_layer("pooled_dense").trainable
    trainable = {id(variable) for variable in model.trainable_variables}
    pooler = backbone.get_layer("pooled_dense").weights
    assert pooler and not any(id(variable) in trainable for variable in pooler)
    assert any("token_logits" in variable.path for variable in model.trainable_variables)


def test_inference_is_deterministic_despite_dropout() -> None:
    model = build_token_classifier(tiny_backbone(), NUM_LABELS, dropout=0.5)
    inputs = {
        "token_ids": np.asarray([[2, 5, 6, 3]], dtype="int32"),
        "segment_ids": np.zeros((1, 4), dtype="int32"),
        "padding_mask": np.ones((1, 4), dtype=bool),
    }
    first = np.asarray(model.predict_on_batch(inputs))
    np.testing.assert_array_equal(first, np.asarray(model.predict_on_batch(inputs)))


def test_one_hot_labels_are_rejected() -> None:
    labels = np.eye(NUM_LABELS, dtype="float32")[np.zeros((2, 4), dtype=int)]
    logits = np.zeros((2, 4, NUM_LABELS), dtype="float32")
    with pytest.raises(ValueError, match="labels \\(batch, tokens\\)"):
        MaskedTokenCrossEntropy()(labels, logits)
