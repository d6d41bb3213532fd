"""Tests for loading a Google/BioBERT TF1 checkpoint folder into a KerasHub BertBackbone.

A tiny checkpoint is written with the exact TF1 variable names, loaded, and the backbone's
outputs are compared with a BERT forward pass computed independently in NumPy.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tagger.encoders.base import Encoder, EncoderError
from tagger.encoders.tf_checkpoint import (
    find_checkpoint_prefix,
    is_tf_checkpoint,
    load_tf_checkpoint,
)

VOCAB_SIZE = 40
HIDDEN = 16
LAYERS = 2
HEADS = 2
INTERMEDIATE = 32
POSITIONS = 24
SEGMENTS = 2
LAYER_NORM_EPSILON = 1e-12

TINY_CONFIG: dict[str, object] = {
    "attention_probs_dropout_prob": 0.1,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": HIDDEN,
    "initializer_range": 0.02,
    "intermediate_size": INTERMEDIATE,
    "max_position_embeddings": POSITIONS,
    "num_attention_heads": HEADS,
    "num_hidden_layers": LAYERS,
    "type_vocab_size": SEGMENTS,
    "vocab_size": VOCAB_SIZE,
}

SPECIAL_TOKENS = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
UNCASED_WORDS = ["the", "of", "and", "disease", "cancer", "##s", "##ing", "renal", "failure"]
CASED_WORDS = ["the", "of", "and", "Disease", "cancer", "##s", "##ing", "Renal", "failure"]


def padded_vocab(words: list[str]) -> list[str]:
    """Special tokens + words + lower-case fillers up to VOCAB_SIZE."""
    head = SPECIAL_TOKENS + words
    return head + [f"w{index}" for index in range(VOCAB_SIZE - len(head))]


def random_bert_weights(seed: int) -> dict[str, np.ndarray]:
    """Random float32 weights under the exact TF1 BERT variable names."""
    rng = np.random.default_rng(seed)

    def normal(*shape: int, scale: float = 0.3) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def gamma() -> np.ndarray:
        return (1.0 + normal(HIDDEN, scale=0.1)).astype(np.float32)

    weights = {
        "bert/embeddings/word_embeddings": normal(VOCAB_SIZE, HIDDEN),
        "bert/embeddings/position_embeddings": normal(POSITIONS, HIDDEN),
        "bert/embeddings/token_type_embeddings": normal(SEGMENTS, HIDDEN),
        "bert/embeddings/LayerNorm/gamma": gamma(),
        "bert/embeddings/LayerNorm/beta": normal(HIDDEN, scale=0.1),
        "bert/pooler/dense/kernel": normal(HIDDEN, HIDDEN),
        "bert/pooler/dense/bias": normal(HIDDEN, scale=0.1),
    }
    for layer in range(LAYERS):
        prefix = f"bert/encoder/layer_{layer}"
        for projection in ("query", "key", "value"):
            weights[f"{prefix}/attention/self/{projection}/kernel"] = normal(HIDDEN, HIDDEN)
            weights[f"{prefix}/attention/self/{projection}/bias"] = normal(HIDDEN, scale=0.1)
        weights[f"{prefix}/intermediate/dense/kernel"] = normal(HIDDEN, INTERMEDIATE)
        weights[f"{prefix}/intermediate/dense/bias"] = normal(INTERMEDIATE, scale=0.1)
        # Both residual blocks: a dense projection back to HIDDEN, then a LayerNorm.
        for block, width in (("attention/output", HIDDEN), ("output", INTERMEDIATE)):
            weights[f"{prefix}/{block}/dense/kernel"] = normal(width, HIDDEN)
            weights[f"{prefix}/{block}/dense/bias"] = normal(HIDDEN, scale=0.1)
            weights[f"{prefix}/{block}/LayerNorm/gamma"] = gamma()
            weights[f"{prefix}/{block}/LayerNorm/beta"] = normal(HIDDEN, scale=0.1)
    return weights


def training_leftovers(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Variables a real pre-training checkpoint also holds and the loader must ignore."""
    word_embeddings = weights["bert/embeddings/word_embeddings"]
    return {
        "global_step": np.array(1000, dtype=np.int64),
        "bert/embeddings/word_embeddings/adam_m": np.full_like(word_embeddings, 7.0),
        "bert/embeddings/word_embeddings/adam_v": np.full_like(word_embeddings, 9.0),
        "bert/encoder/layer_0/output/dense/kernel/adam_m": np.zeros(
            (INTERMEDIATE, HIDDEN), np.float32
        ),
        "cls/predictions/output_bias": np.zeros(VOCAB_SIZE, np.float32),
        "cls/predictions/transform/dense/kernel": np.zeros((HIDDEN, HIDDEN), np.float32),
    }


def write_tf1_checkpoint(prefix: Path, variables: dict[str, np.ndarray]) -> None:
    """Write a name-based TF1 checkpoint (`prefix.index` + `prefix.data-*`) with exact names."""
    names = sorted(variables)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(variables[name]) for name in names],
    )


def write_checkpoint_folder(
    folder: Path,
    weights: dict[str, np.ndarray],
    *,
    config: dict[str, object] | None = None,
    vocab: list[str] | None = None,
    checkpoint_name: str = "model.ckpt-1000",
) -> Path:
    """A BioBERT-style folder: bert_config.json, vocab.txt and model.ckpt-1000.*."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bert_config.json").write_text(json.dumps(config or TINY_CONFIG), encoding="utf-8")
    tokens = vocab if vocab is not None else padded_vocab(CASED_WORDS)
    (folder / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    write_tf1_checkpoint(folder / checkpoint_name, {**weights, **training_leftovers(weights)})
    return folder


# --- Independent NumPy reference of Google's TF1 BERT forward pass -------------------------


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + LAYER_NORM_EPSILON) * gamma + beta


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    # Google's TF1 modeling.gelu (which BioBERT was trained with) and KerasHub's BertBackbone
    # both use the tanh approximation, not the erf form.
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def self_attention(
    x: np.ndarray, weights: dict[str, np.ndarray], prefix: str, padding_mask: np.ndarray
) -> np.ndarray:
    batch, length, _ = x.shape
    head_dim = HIDDEN // HEADS

    def heads(projection: str) -> np.ndarray:
        kernel = weights[f"{prefix}/attention/self/{projection}/kernel"]
        bias = weights[f"{prefix}/attention/self/{projection}/bias"]
        return (x @ kernel + bias).reshape(batch, length, HEADS, head_dim).transpose(0, 2, 1, 3)

    query, key, value = heads("query"), heads("key"), heads("value")
    scores = query @ key.transpose(0, 1, 3, 2) / math.sqrt(head_dim)
    scores = np.where(padding_mask[:, None, None, :] == 1, scores, -np.inf)
    context = (softmax(scores) @ value).transpose(0, 2, 1, 3).reshape(batch, length, HIDDEN)
    return (
        context @ weights[f"{prefix}/attention/output/dense/kernel"]
        + weights[f"{prefix}/attention/output/dense/bias"]
    )


def transformer_layer(
    x: np.ndarray, weights: dict[str, np.ndarray], layer: int, padding_mask: np.ndarray
) -> np.ndarray:
    prefix = f"bert/encoder/layer_{layer}"
    attended = layer_norm(
        x + self_attention(x, weights, prefix, padding_mask),
        weights[f"{prefix}/attention/output/LayerNorm/gamma"],
        weights[f"{prefix}/attention/output/LayerNorm/beta"],
    )
    intermediate = gelu_tanh(
        attended @ weights[f"{prefix}/intermediate/dense/kernel"]
        + weights[f"{prefix}/intermediate/dense/bias"]
    )
    feedforward = (
        intermediate @ weights[f"{prefix}/output/dense/kernel"]
        + weights[f"{prefix}/output/dense/bias"]
    )
    return layer_norm(
        attended + feedforward,
        weights[f"{prefix}/output/LayerNorm/gamma"],
        weights[f"{prefix}/output/LayerNorm/beta"],
    )


def numpy_bert(
    weights: dict[str, np.ndarray],
    token_ids: np.ndarray,
    segment_ids: np.ndarray,
    padding_mask: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(sequence_output, pooled_output) of BERT, computed in float64 from the TF weights."""
    weights = {name: value.astype(np.float64) for name, value in weights.items()}
    length = token_ids.shape[1]
    embedded = (
        weights["bert/embeddings/word_embeddings"][token_ids]
        + weights["bert/embeddings/position_embeddings"][:length][None]
        + weights["bert/embeddings/token_type_embeddings"][segment_ids]
    )
    x = layer_norm(
        embedded,
        weights["bert/embeddings/LayerNorm/gamma"],
        weights["bert/embeddings/LayerNorm/beta"],
    )
    for layer in range(LAYERS):
        x = transformer_layer(x, weights, layer, padding_mask)
    pooled = np.tanh(
        x[:, 0] @ weights["bert/pooler/dense/kernel"] + weights["bert/pooler/dense/bias"]
    )
    return x, pooled


# --- Tests ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source_weights() -> dict[str, np.ndarray]:
    return random_bert_weights(seed=0)


@pytest.fixture(scope="module")
def checkpoint_folder(
    tmp_path_factory: pytest.TempPathFactory, source_weights: dict[str, np.ndarray]
) -> Path:
    return write_checkpoint_folder(tmp_path_factory.mktemp("biobert"), source_weights)


@pytest.fixture(scope="module")
def loaded(checkpoint_folder: Path) -> Encoder:
    return load_tf_checkpoint(checkpoint_folder)


def test_is_tf_checkpoint_recognises_the_folder(checkpoint_folder: Path, tmp_path: Path) -> None:
    assert is_tf_checkpoint(checkpoint_folder)
    assert not is_tf_checkpoint(tmp_path)


def test_loaded_backbone_has_the_config_architecture(
    loaded: Encoder, checkpoint_folder: Path
) -> None:
    backbone = loaded.backbone
    assert (backbone.vocabulary_size, backbone.num_layers, backbone.num_heads) == (
        VOCAB_SIZE,
        LAYERS,
        HEADS,
    )
    assert (backbone.hidden_dim, backbone.intermediate_dim) == (HIDDEN, INTERMEDIATE)
    assert (backbone.max_sequence_length, backbone.num_segments) == (POSITIONS, SEGMENTS)
    assert backbone.dropout == pytest.approx(0.1)
    assert loaded.vocab_path == checkpoint_folder / "vocab.txt"
    assert loaded.source.endswith("model.ckpt-1000")


def test_optimizer_slots_are_not_loaded(
    loaded: Encoder, source_weights: dict[str, np.ndarray]
) -> None:
    embeddings = loaded.backbone.get_layer("token_embedding").embeddings.numpy()
    np.testing.assert_array_equal(embeddings, source_weights["bert/embeddings/word_embeddings"])


def test_outputs_match_numpy_bert_on_a_padded_batch(
    loaded: Encoder, source_weights: dict[str, np.ndarray]
) -> None:
    token_ids = np.array(
        [[4, 10, 11, 12, 13, 14, 5, 0, 0, 0], [4, 7, 20, 21, 22, 23, 24, 25, 26, 5]],
        dtype=np.int32,
    )
    segment_ids = np.array([[0] * 10, [0] * 5 + [1] * 5], dtype=np.int32)
    padding_mask = (np.arange(10)[None] < np.array([[7], [10]])).astype(np.int32)

    outputs = loaded.backbone(
        {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask},
        training=False,
    )
    expected_sequence, expected_pooled = numpy_bert(
        source_weights, token_ids, segment_ids, padding_mask
    )

    np.testing.assert_allclose(
        np.asarray(outputs["sequence_output"]), expected_sequence, atol=1e-4, rtol=0
    )
    np.testing.assert_allclose(
        np.asarray(outputs["pooled_output"]), expected_pooled, atol=1e-4, rtol=0
    )


def test_missing_variable_is_named(tmp_path: Path, source_weights: dict[str, np.ndarray]) -> None:
    missing = "bert/encoder/layer_1/output/dense/bias"
    weights = {name: value for name, value in source_weights.items() if name != missing}
    folder = write_checkpoint_folder(tmp_path / "ckpt", weights)
    with pytest.raises(EncoderError, match=r"lacks variable\(s\)") as error:
        load_tf_checkpoint(folder)
    assert missing in str(error.value)
    assert "model.ckpt-1000" in str(error.value)


def test_wrong_shape_names_variable_and_both_shapes(
    tmp_path: Path, source_weights: dict[str, np.ndarray]
) -> None:
    weights = dict(source_weights)
    weights["bert/pooler/dense/kernel"] = np.zeros((HIDDEN, 8), np.float32)
    folder = write_checkpoint_folder(tmp_path / "ckpt", weights)
    with pytest.raises(EncoderError) as error:
        load_tf_checkpoint(folder)
    message = str(error.value)
    assert "bert/pooler/dense/kernel" in message
    assert "model.ckpt-1000" in message
    assert f"({HIDDEN}, 8)" in message
    assert f"expected ({HIDDEN}, {HIDDEN})" in message


def test_missing_vocab_is_named(tmp_path: Path, checkpoint_folder: Path) -> None:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    for path in checkpoint_folder.iterdir():
        if path.name != "vocab.txt":
            (folder / path.name).write_bytes(path.read_bytes())
    with pytest.raises(EncoderError, match=r"vocab\.txt is missing"):
        load_tf_checkpoint(folder)


def test_vocab_size_mismatch_names_both_sizes(
    tmp_path: Path, source_weights: dict[str, np.ndarray]
) -> None:
    short_vocab = padded_vocab(CASED_WORDS)[:-3]
    folder = write_checkpoint_folder(tmp_path / "ckpt", source_weights, vocab=short_vocab)
    with pytest.raises(
        EncoderError, match=rf"has {VOCAB_SIZE - 3} tokens.*vocab_size={VOCAB_SIZE}"
    ):
        load_tf_checkpoint(folder)


def test_missing_config_and_index_are_named(tmp_path: Path, checkpoint_folder: Path) -> None:
    no_config = tmp_path / "no_config"
    no_config.mkdir()
    (no_config / "vocab.txt").write_bytes((checkpoint_folder / "vocab.txt").read_bytes())
    with pytest.raises(EncoderError, match=r"bert_config\.json is missing"):
        load_tf_checkpoint(no_config)

    (no_config / "bert_config.json").write_text(json.dumps(TINY_CONFIG), encoding="utf-8")
    with pytest.raises(EncoderError, match=r"no checkpoint index \(\*\.index\)"):
        load_tf_checkpoint(no_config)


def test_unsupported_activation_is_rejected(
    tmp_path: Path, source_weights: dict[str, np.ndarray]
) -> None:
    config = {**TINY_CONFIG, "hidden_act": "relu"}
    folder = write_checkpoint_folder(tmp_path / "ckpt", source_weights, config=config)
    with pytest.raises(EncoderError, match="hidden_act 'relu' is not supported"):
        load_tf_checkpoint(folder)


def test_checkpoint_prefix_prefers_state_file_then_highest_step(tmp_path: Path) -> None:
    for name in ("model.ckpt-900.index", "model.ckpt-10000.index", "model.ckpt-2000.index"):
        (tmp_path / name).touch()
    assert find_checkpoint_prefix(tmp_path) == tmp_path / "model.ckpt-10000"

    (tmp_path / "checkpoint").write_text(
        'model_checkpoint_path: "/old/machine/biobert/model.ckpt-2000"\n'
        'all_model_checkpoint_paths: "/old/machine/biobert/model.ckpt-10000"\n',
        encoding="utf-8",
    )
    assert find_checkpoint_prefix(tmp_path) == tmp_path / "model.ckpt-2000"


def test_bert_model_ckpt_prefix_is_found(tmp_path: Path) -> None:
    (tmp_path / "bert_model.ckpt.index").touch()
    assert find_checkpoint_prefix(tmp_path) == tmp_path / "bert_model.ckpt"


def test_casing_is_inferred_from_the_vocab(
    tmp_path: Path, source_weights: dict[str, np.ndarray], loaded: Encoder
) -> None:
    assert loaded.lowercase is False  # the default fixture vocab is cased, like BioBERT's

    uncased = write_checkpoint_folder(
        tmp_path / "uncased", source_weights, vocab=padded_vocab(UNCASED_WORDS)
    )
    assert load_tf_checkpoint(uncased).lowercase is True


def test_casing_honours_config_then_argument(
    tmp_path: Path, source_weights: dict[str, np.ndarray]
) -> None:
    config = {**TINY_CONFIG, "do_lower_case": True}
    folder = write_checkpoint_folder(tmp_path / "ckpt", source_weights, config=config)
    assert load_tf_checkpoint(folder).lowercase is True  # config wins over the cased vocab
    assert load_tf_checkpoint(folder, lowercase=False).lowercase is False
