"""The token classifier: a KerasHub `BertBackbone`, dropout and one dense layer per token.

Built from `keras.ops` and KerasHub only, so the same code runs on the TensorFlow, JAX and
PyTorch backends.

Example:
    >>> import keras_hub
    >>> backbone = keras_hub.models.BertBackbone(
    ...     vocabulary_size=30, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> model = build_token_classifier(backbone, num_labels=3)
    >>> model.output_shape
    (None, None, 3)
"""

from __future__ import annotations

import keras
import keras_hub
from keras import ops

IGNORE_INDEX = -1  # label of pieces that are not scored: later pieces, [CLS], [SEP], padding


def build_token_classifier(
    backbone: keras_hub.models.BertBackbone,
    num_labels: int,
    *,
    dropout: float = 0.1,
    dtype: str | None = None,
) -> keras.Model:
    """Per-token label logits `(batch, tokens, num_labels)` on top of `backbone`.

    `dtype` is a Keras dtype policy for the head (the backbone has its own); the logits
    are always float32 so that the softmax and the loss stay exact under mixed precision.
    """
    inputs = {
        "token_ids": keras.Input(shape=(None,), dtype="int32", name="token_ids"),
        "segment_ids": keras.Input(shape=(None,), dtype="int32", name="segment_ids"),
        "padding_mask": keras.Input(shape=(None,), dtype="bool", name="padding_mask"),
    }
    # The pooler serves sentence tasks only; frozen, it takes no optimizer state or warnings.
    backbone.get_layer("pooled_dense").trainable = False
    sequence = backbone(inputs)["sequence_output"]
    sequence = keras.layers.Dropout(dropout, name="classifier_dropout")(sequence)
    logits = keras.layers.Dense(
        num_labels,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        dtype=dtype,
        name="token_logits",
    )(sequence)
    logits = keras.layers.Activation("linear", dtype="float32", name="float32_logits")(logits)
    return keras.Model(inputs, logits, name="bert_token_classifier")


@keras.saving.register_keras_serializable(package="tagger")
class MaskedTokenCrossEntropy(keras.losses.Loss):
    """Cross-entropy averaged over the scored tokens of a batch, and only those.

    `y_true` is `(batch, tokens)` of label ids with `IGNORE_INDEX` where a token is not
    scored; `y_pred` is `(batch, tokens, labels)` logits. Any other shape is an error:
    the original project computed one loss per sentence from mismatched shapes, and a
    silent broadcast would hide exactly that.
    """

    def __init__(self, name: str = "masked_token_cross_entropy", **kwargs: object) -> None:
        super().__init__(name=name, **kwargs)

    def call(self, y_true: object, y_pred: object) -> object:
        check_token_shapes(y_true, y_pred)
        labels = ops.cast(y_true, "int32")
        scored = ops.not_equal(labels, IGNORE_INDEX)
        safe_labels = ops.where(scored, labels, 0)
        per_token = keras.losses.sparse_categorical_crossentropy(
            safe_labels, y_pred, from_logits=True
        )
        weights = ops.cast(scored, per_token.dtype)
        total = ops.sum(per_token * weights)
        return total / ops.maximum(ops.sum(weights), 1.0)


def check_token_shapes(y_true: object, y_pred: object) -> None:
    """Raise unless labels are `(batch, tokens)` and logits `(batch, tokens, labels)`."""
    true_shape = tuple(ops.shape(y_true))
    pred_shape = tuple(ops.shape(y_pred))
    if len(true_shape) != 2 or len(pred_shape) != 3:
        raise ValueError(
            f"token classification needs labels (batch, tokens) and logits (batch, tokens, "
            f"labels); got labels {true_shape} and logits {pred_shape}. A per-sentence output "
            "cannot be trained against per-token labels."
        )
    for axis, (true_size, pred_size) in enumerate(zip(true_shape, pred_shape[:2], strict=True)):
        if isinstance(true_size, int) and isinstance(pred_size, int) and true_size != pred_size:
            raise ValueError(
                f"labels {true_shape} and logits {pred_shape} differ on axis {axis}: "
                "every token needs exactly one label (IGNORE_INDEX where it is not scored)"
            )
