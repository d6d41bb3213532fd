"""The trained token classifier as an ONNX graph, for ONNX Runtime on the CPU.

KerasHub's BERT is a fixed recipe (post-LayerNorm encoder layers, tanh-approximated GELU,
learned positions and segments), so its ONNX graph is written here directly from the
weights rather than traced: no TensorFlow-to-ONNX converter, whose releases trail
TensorFlow's, and one graph whatever Keras backend trained the model. The query, key and
value projections are fused into one matrix product; ONNX Runtime fuses the rest
(LayerNorm, GELU, attention) when it loads the graph.

Example:
    >>> from tagger.model_folder import load_model_folder
    >>> loaded = load_model_folder(tiny_model_dir)
    >>> weights = classifier_weights(loaded.model)
    >>> graph = classifier_graph(weights, loaded.metadata.backbone_config)
    >>> [output.name for output in graph.graph.output]
    ['logits']
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from tagger.errors import TaggerError

OPSET = 20  # Gelu with approximate="tanh" arrived in opset 20
INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")
OUTPUT_NAME = "logits"
LAYER_NORM_EPSILON = 1e-12  # KerasHub's BertBackbone
CONTRIB_DOMAIN = "com.microsoft"


class OnnxExportError(TaggerError, ValueError):
    """A model that this exporter cannot write as ONNX; the message says why."""


def classifier_weights(model: Any) -> dict[str, np.ndarray]:
    """The classifier's weights by path (`token_embedding/embeddings`, ...) as float32."""
    weights: dict[str, np.ndarray] = {}
    for variable in model.weights:
        weights[
            variable.path.split("/", 1)[1]
            if variable.path.startswith("bert_backbone/")
            else variable.path
        ] = np.asarray(variable.numpy(), dtype=np.float32)
    return weights


def classifier_graph(
    weights: Mapping[str, np.ndarray], backbone_config: Mapping[str, Any], *, fused: bool = True
) -> Any:
    """An `onnx.ModelProto`: int32 `token_ids`, `segment_ids`, `padding_mask` of shape
    `(batch, tokens)` in, float32 `logits` of shape `(batch, tokens, labels)` out.

    `fused` writes attention, residual LayerNorms and GELU as ONNX Runtime's own fused
    operators (domain `com.microsoft`), which its CPU kernels run much faster than the
    standard-operator graph; `fused=False` gives a graph any ONNX runtime can read.
    """
    import onnx
    from onnx import TensorProto, helper

    builder = _GraphBuilder(weights, fused=fused)
    num_heads = int(backbone_config["num_heads"])
    hidden = int(backbone_config["hidden_dim"])
    if hidden % num_heads:
        raise OnnxExportError(f"hidden_dim {hidden} is not a multiple of num_heads {num_heads}")
    head_dim = hidden // num_heads

    hidden_states = builder.embeddings()
    attention_bias = "padding_mask" if fused else builder.attention_bias()
    for layer in range(int(backbone_config["num_layers"])):
        hidden_states = builder.encoder_layer(
            hidden_states, attention_bias, f"transformer_layer_{layer}", num_heads, head_dim
        )
    builder.dense(hidden_states, "token_logits", output=OUTPUT_NAME)

    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT32, ["batch", "tokens"])
        for name in INPUT_NAMES
    ]
    num_labels = int(weights["token_logits/kernel"].shape[1])
    outputs = [
        helper.make_tensor_value_info(
            OUTPUT_NAME, TensorProto.FLOAT, ["batch", "tokens", num_labels]
        )
    ]
    graph = helper.make_graph(
        builder.nodes, "bert_token_classifier", inputs, outputs, builder.initializers
    )
    opsets = [helper.make_opsetid("", OPSET)]
    if fused:
        opsets.append(helper.make_opsetid(CONTRIB_DOMAIN, 1))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="disease-tagger")
    model.ir_version = min(model.ir_version, 10)  # what current ONNX Runtime releases read
    onnx.checker.check_model(model)
    return model


class _GraphBuilder:
    """Appends ONNX nodes and initializers; every helper returns its output's name."""

    def __init__(self, weights: Mapping[str, np.ndarray], *, fused: bool) -> None:
        from onnx import helper, numpy_helper

        self._helper = helper
        self._numpy_helper = numpy_helper
        self.weights = weights
        self.fused = fused
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def weight(self, path: str) -> np.ndarray:
        try:
            return self.weights[path]
        except KeyError:
            raise OnnxExportError(
                f"the model has no weight {path!r}: only KerasHub BertBackbone classifiers "
                "built by tagger.model can be exported"
            ) from None

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(self._numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], **attributes: Any) -> str:
        self._count += 1
        output = attributes.pop("output", None) or f"{op.lower()}_{self._count}"
        self.nodes.append(
            self._helper.make_node(op, inputs, [output], name=f"{op}_{self._count}", **attributes)
        )
        return output

    def embeddings(self) -> str:
        tokens = self.node(
            "Gather",
            [
                self.constant("token_embedding", self.weight("token_embedding/embeddings")),
                "token_ids",
            ],
        )
        segments = self.node(
            "Gather",
            [
                self.constant("segment_embedding", self.weight("segment_embedding/embeddings")),
                "segment_ids",
            ],
        )
        length = self.node("Shape", ["token_ids"], start=1, end=2)
        position_vectors = self.node(
            "Slice",
            [
                self.constant("position_embedding", self.weight("position_embedding/embeddings")),
                self.constant("zero", np.array([0], np.int64)),
                length,
                self.constant("axis_0", np.array([0], np.int64)),
            ],
        )
        summed = self.node("Add", [self.node("Add", [tokens, segments]), position_vectors])
        return self.layer_norm(summed, "embeddings_layer_norm")

    def attention_bias(self) -> str:
        """`(batch, 1, 1, tokens)`: 0 where a key is a real token, a large negative on padding."""
        mask = self.node("Cast", ["padding_mask"], to=1)  # 1 = FLOAT
        blocked = self.node("Sub", [self.constant("ones", np.array(1.0, np.float32)), mask])
        bias = self.node(
            "Mul", [blocked, self.constant("blocked_bias", np.array(-1e9, np.float32))]
        )
        return self.node("Unsqueeze", [bias, self.constant("axes_1_2", np.array([1, 2], np.int64))])

    def layer_norm(self, inputs: str, path: str) -> str:
        return self.node(
            "LayerNormalization",
            [
                inputs,
                self.constant(f"{path}/gamma", self.weight(f"{path}/gamma")),
                self.constant(f"{path}/beta", self.weight(f"{path}/beta")),
            ],
            axis=-1,
            epsilon=LAYER_NORM_EPSILON,
        )

    def dense(self, inputs: str, path: str, output: str | None = None) -> str:
        product = self.node(
            "MatMul", [inputs, self.constant(f"{path}/kernel", self.weight(f"{path}/kernel"))]
        )
        return self.node(
            "Add",
            [product, self.constant(f"{path}/bias", self.weight(f"{path}/bias"))],
            output=output,
        )

    def encoder_layer(
        self, inputs: str, attention_bias: str, path: str, num_heads: int, head_dim: int
    ) -> str:
        if self.fused:
            return self.fused_encoder_layer(inputs, attention_bias, path, num_heads, head_dim)
        hidden = num_heads * head_dim
        attention = f"{path}/self_attention_layer"
        kernel, bias = self.qkv(attention, hidden)
        projected = self.node(
            "Add",
            [
                self.node("MatMul", [inputs, self.constant(f"{attention}/qkv/kernel", kernel)]),
                self.constant(f"{attention}/qkv/bias", bias),
            ],
        )
        heads_shape = self.constant(
            f"{path}/heads_shape", np.array([0, 0, num_heads, head_dim], np.int64)
        )
        query, key, value = (
            self.node("Transpose", [self.node("Reshape", [part, heads_shape])], perm=perm)
            for part, perm in zip(
                self._split3(projected, hidden),
                ([0, 2, 1, 3], [0, 2, 3, 1], [0, 2, 1, 3]),
                strict=True,
            )
        )
        scaled_query = self.node(
            "Mul",
            [query, self.constant(f"{path}/scale", np.array(1 / math.sqrt(head_dim), np.float32))],
        )
        scores = self.node("Add", [self.node("MatMul", [scaled_query, key]), attention_bias])
        context = self.node("MatMul", [self.node("Softmax", [scores], axis=-1), value])
        merged = self.node(
            "Reshape",
            [
                self.node("Transpose", [context], perm=[0, 2, 1, 3]),
                self.constant(f"{path}/merged_shape", np.array([0, 0, hidden], np.int64)),
            ],
        )
        output_kernel = self.weight(f"{attention}/attention_output/kernel").reshape(hidden, hidden)
        attended = self.node(
            "Add",
            [
                self.node(
                    "MatMul",
                    [merged, self.constant(f"{attention}/attention_output/kernel", output_kernel)],
                ),
                self.constant(
                    f"{attention}/attention_output/bias",
                    self.weight(f"{attention}/attention_output/bias"),
                ),
            ],
        )
        inputs = self.layer_norm(
            self.node("Add", [inputs, attended]), f"{path}/self_attention_layer_norm"
        )
        intermediate = self.node(
            "Gelu",
            [self.dense(inputs, f"{path}/feedforward_intermediate_dense")],
            approximate="tanh",
        )
        output = self.dense(intermediate, f"{path}/feedforward_output_dense")
        return self.layer_norm(self.node("Add", [inputs, output]), f"{path}/feedforward_layer_norm")

    def _split3(self, inputs: str, size: int) -> list[str]:
        self._count += 1
        outputs = [f"split_{self._count}_{index}" for index in range(3)]
        sizes = self.constant(f"split_sizes_{self._count}", np.array([size] * 3, np.int64))
        self.nodes.append(
            self._helper.make_node(
                "Split", [inputs, sizes], outputs, name=f"Split_{self._count}", axis=-1
            )
        )
        return outputs

    def qkv(self, attention: str, hidden: int) -> tuple[np.ndarray, np.ndarray]:
        """Query, key and value projections side by side: `(hidden, 3 hidden)`, `(3 hidden,)`."""
        parts = ("query", "key", "value")
        kernel = np.concatenate(
            [self.weight(f"{attention}/{part}/kernel").reshape(hidden, hidden) for part in parts],
            axis=1,
        )
        bias = np.concatenate(
            [self.weight(f"{attention}/{part}/bias").reshape(hidden) for part in parts]
        )
        return kernel, bias

    def contrib(self, op: str, inputs: list[str], **attributes: Any) -> str:
        return self.node(op, inputs, domain=CONTRIB_DOMAIN, **attributes)

    def skip_layer_norm(self, inputs: str, skip: str, bias_path: str, norm_path: str) -> str:
        """LayerNorm(inputs + bias + skip) in one operator."""
        return self.contrib(
            "SkipLayerNormalization",
            [
                inputs,
                skip,
                self.constant(f"{norm_path}/gamma", self.weight(f"{norm_path}/gamma")),
                self.constant(f"{norm_path}/beta", self.weight(f"{norm_path}/beta")),
                self.constant(f"{bias_path}/bias", self.weight(f"{bias_path}/bias")),
            ],
            epsilon=LAYER_NORM_EPSILON,
        )

    def fused_encoder_layer(
        self, inputs: str, padding_mask: str, path: str, num_heads: int, head_dim: int
    ) -> str:
        hidden = num_heads * head_dim
        attention = f"{path}/self_attention_layer"
        kernel, bias = self.qkv(attention, hidden)
        # Attention takes the 0/1 padding mask of shape (batch, tokens) as its mask_index.
        context = self.contrib(
            "Attention",
            [
                inputs,
                self.constant(f"{attention}/qkv/kernel", kernel),
                self.constant(f"{attention}/qkv/bias", bias),
                padding_mask,
            ],
            num_heads=num_heads,
        )
        output_kernel = self.weight(f"{attention}/attention_output/kernel").reshape(hidden, hidden)
        attended = self.node(
            "MatMul",
            [context, self.constant(f"{attention}/attention_output/kernel", output_kernel)],
        )
        inputs = self.skip_layer_norm(
            attended, inputs, f"{attention}/attention_output", f"{path}/self_attention_layer_norm"
        )
        intermediate_path = f"{path}/feedforward_intermediate_dense"
        intermediate = self.contrib(
            "FastGelu",
            [
                self.node(
                    "MatMul",
                    [
                        inputs,
                        self.constant(
                            f"{intermediate_path}/kernel",
                            self.weight(f"{intermediate_path}/kernel"),
                        ),
                    ],
                ),
                self.constant(
                    f"{intermediate_path}/bias", self.weight(f"{intermediate_path}/bias")
                ),
            ],
        )
        output_path = f"{path}/feedforward_output_dense"
        output = self.node(
            "MatMul",
            [
                intermediate,
                self.constant(f"{output_path}/kernel", self.weight(f"{output_path}/kernel")),
            ],
        )
        return self.skip_layer_norm(output, inputs, output_path, f"{path}/feedforward_layer_norm")
