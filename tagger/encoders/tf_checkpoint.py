"""Load a Google/BioBERT TensorFlow 1 BERT checkpoint folder into a KerasHub `BertBackbone`.

BioBERT, Google's original BERT and many domain BERTs are released as a folder holding
`bert_config.json`, `vocab.txt` and a TF1 name-based checkpoint (`model.ckpt-NNNN.index` +
`model.ckpt-NNNN.data-00000-of-00001`, or `bert_model.ckpt.*`). This module reads such a folder
with TensorFlow's checkpoint reader and copies every weight into a freshly built KerasHub
`BertBackbone`, replacing what the unmaintained `keras-bert` package did for the original project.

The folder's checkpoint is picked from its `checkpoint` file when that names one, otherwise the
`.index` file with the highest step. Optimizer slots (`*/adam_m`, `*/adam_v`), `global_step` and
the pre-training heads (`cls/*`) are ignored.

Casing: `lowercase=None` uses `do_lower_case` from `bert_config.json` when present, otherwise
infers it from `vocab.txt` (a vocabulary with upper-case word pieces is cased, like BioBERT's).

Example:
```python
from tagger.encoders.tf_checkpoint import is_tf_checkpoint, load_tf_checkpoint

folder = "models/biobert_v1.1_pubmed"
if is_tf_checkpoint(folder):
    encoder = load_tf_checkpoint(folder)
    print(encoder.backbone.num_layers, encoder.lowercase, encoder.vocab_path)
```
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import keras_hub
import numpy as np

from tagger.encoders.base import Encoder, EncoderError

CONFIG_FILE = "bert_config.json"
VOCAB_FILE = "vocab.txt"
CHECKPOINT_STATE_FILE = "checkpoint"

# Names Google's BERT code, BioBERT and HF configs use for the GELU activation. KerasHub's
# BertBackbone always computes the tanh approximation, which is exactly what Google's TF1
# `modeling.gelu` computes; the erf form differs by < 1e-3, far below fine-tuning noise.
SUPPORTED_ACTIVATIONS = frozenset(
    {"gelu", "gelu_new", "gelu_fast", "gelu_approximate", "gelu_pytorch_tanh"}
)

_REQUIRED_CONFIG_KEYS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
)
_STEP_SUFFIX = re.compile(r"-(\d+)$")
_CHECKPOINT_STATE_LINE = re.compile(r'^model_checkpoint_path:\s*"(?P<path>.*)"\s*$', re.MULTILINE)
# `[CLS]`, `[unused12]`, `<S>`: special tokens are upper-case in cased and uncased vocabs alike.
_SPECIAL_TOKEN = re.compile(r"^(\[[^\]]*\]|<[^>]*>)$")


@dataclass(frozen=True)
class BertConfig:
    """The fields of a Google `bert_config.json` the backbone needs."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    hidden_act: str
    hidden_dropout_prob: float
    do_lower_case: bool | None

    @property
    def dimensions(self) -> dict[str, int]:
        """Symbolic dimension names used by the weight table, resolved for this config."""
        return {
            "vocab": self.vocab_size,
            "positions": self.max_position_embeddings,
            "segments": self.type_vocab_size,
            "hidden": self.hidden_size,
            "intermediate": self.intermediate_size,
        }


@dataclass(frozen=True)
class WeightPort:
    """One TF checkpoint variable and the KerasHub weight it fills (after a plain reshape)."""

    tf_name: str
    keras_path: str
    tf_shape: tuple[int, ...]


class CheckpointReader(Protocol):
    """The part of `tf.train.load_checkpoint`'s reader this module uses."""

    def get_variable_to_shape_map(self) -> dict[str, list[int]]: ...

    def get_tensor(self, name: str) -> np.ndarray: ...


# TF1 names -> KerasHub BertBackbone weight paths, with the TF shape in symbolic dimensions.
# TF kernels are (in, out) like Keras Dense kernels, and the attention EinsumDense kernels split
# `hidden` as (heads, head_dim) in the same row-major order TF's reshape_for_scores uses, so a
# reshape to the Keras shape is the whole conversion for every weight.
EMBEDDING_PORTS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "bert/embeddings/word_embeddings": ("token_embedding/embeddings", ("vocab", "hidden")),
    "bert/embeddings/position_embeddings": (
        "position_embedding/embeddings",
        ("positions", "hidden"),
    ),
    "bert/embeddings/token_type_embeddings": (
        "segment_embedding/embeddings",
        ("segments", "hidden"),
    ),
    "bert/embeddings/LayerNorm/gamma": ("embeddings_layer_norm/gamma", ("hidden",)),
    "bert/embeddings/LayerNorm/beta": ("embeddings_layer_norm/beta", ("hidden",)),
    "bert/pooler/dense/kernel": ("pooled_dense/kernel", ("hidden", "hidden")),
    "bert/pooler/dense/bias": ("pooled_dense/bias", ("hidden",)),
}

LAYER_PORTS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "attention/self/query/kernel": ("self_attention_layer/query/kernel", ("hidden", "hidden")),
    "attention/self/query/bias": ("self_attention_layer/query/bias", ("hidden",)),
    "attention/self/key/kernel": ("self_attention_layer/key/kernel", ("hidden", "hidden")),
    "attention/self/key/bias": ("self_attention_layer/key/bias", ("hidden",)),
    "attention/self/value/kernel": ("self_attention_layer/value/kernel", ("hidden", "hidden")),
    "attention/self/value/bias": ("self_attention_layer/value/bias", ("hidden",)),
    "attention/output/dense/kernel": (
        "self_attention_layer/attention_output/kernel",
        ("hidden", "hidden"),
    ),
    "attention/output/dense/bias": ("self_attention_layer/attention_output/bias", ("hidden",)),
    "attention/output/LayerNorm/gamma": ("self_attention_layer_norm/gamma", ("hidden",)),
    "attention/output/LayerNorm/beta": ("self_attention_layer_norm/beta", ("hidden",)),
    "intermediate/dense/kernel": (
        "feedforward_intermediate_dense/kernel",
        ("hidden", "intermediate"),
    ),
    "intermediate/dense/bias": ("feedforward_intermediate_dense/bias", ("intermediate",)),
    "output/dense/kernel": ("feedforward_output_dense/kernel", ("intermediate", "hidden")),
    "output/dense/bias": ("feedforward_output_dense/bias", ("hidden",)),
    "output/LayerNorm/gamma": ("feedforward_layer_norm/gamma", ("hidden",)),
    "output/LayerNorm/beta": ("feedforward_layer_norm/beta", ("hidden",)),
}


def is_tf_checkpoint(folder: str | Path) -> bool:
    """Whether `folder` looks like a Google TF1 BERT checkpoint folder (config + `.index`)."""
    path = Path(folder)
    return (path / CONFIG_FILE).is_file() and any(path.glob("*.index"))


def load_tf_checkpoint(folder: str | Path, *, lowercase: bool | None = None) -> Encoder:
    """Build a KerasHub `BertBackbone` from a TF1 BERT checkpoint folder.

    Args:
        folder: a folder with `bert_config.json`, `vocab.txt` and a `*.index` checkpoint.
        lowercase: force the casing; `None` reads `do_lower_case` from the config, else
            infers it from the vocabulary.

    Returns:
        An `Encoder` whose backbone holds the checkpoint's weights.

    Raises:
        EncoderError: a missing file, an inconsistent config or vocabulary, a missing or
            mis-shaped variable, or TensorFlow not installed; the message names the fix.

    Example:
    ```python
    encoder = load_tf_checkpoint("models/biobert_v1.1_pubmed")
    outputs = encoder.backbone({
        "token_ids": [[2, 7, 3]], "segment_ids": [[0, 0, 0]], "padding_mask": [[1, 1, 1]],
    })
    ```
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise EncoderError(
            f"TF checkpoint folder {folder} does not exist or is not a folder: pass the folder "
            f"that holds {CONFIG_FILE}, {VOCAB_FILE} and model.ckpt-*.index."
        )
    config = read_bert_config(folder / CONFIG_FILE)
    vocab_path = folder / VOCAB_FILE
    check_vocab_size(vocab_path, config.vocab_size)
    prefix = find_checkpoint_prefix(folder)
    reader = open_checkpoint_reader(prefix)
    backbone = build_backbone(config)
    assign_weights(backbone, reader, plan_weight_ports(config), prefix)
    return Encoder(
        backbone=backbone,
        vocab_path=vocab_path,
        lowercase=resolve_lowercase(lowercase, config, vocab_path),
        source=f"tf-checkpoint:{prefix}",
    )


def read_bert_config(config_path: Path) -> BertConfig:
    """Parse and validate `bert_config.json`."""
    if not config_path.is_file():
        raise EncoderError(
            f"{config_path} is missing: a TF BERT checkpoint folder needs the {CONFIG_FILE} "
            "released with it (copy it next to the model.ckpt files)."
        )
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise EncoderError(
            f"{config_path}:{error.lineno}: invalid JSON ({error.msg}); fix or re-download "
            f"the {CONFIG_FILE} released with the checkpoint."
        ) from error
    missing = [key for key in _REQUIRED_CONFIG_KEYS if key not in raw]
    if missing:
        raise EncoderError(
            f"{config_path} lacks {', '.join(missing)}: use the {CONFIG_FILE} released with "
            "the checkpoint, which lists every BERT hyper-parameter."
        )
    config = BertConfig(
        vocab_size=int(raw["vocab_size"]),
        hidden_size=int(raw["hidden_size"]),
        num_hidden_layers=int(raw["num_hidden_layers"]),
        num_attention_heads=int(raw["num_attention_heads"]),
        intermediate_size=int(raw["intermediate_size"]),
        max_position_embeddings=int(raw["max_position_embeddings"]),
        type_vocab_size=int(raw["type_vocab_size"]),
        hidden_act=str(raw.get("hidden_act", "gelu")),
        hidden_dropout_prob=float(raw.get("hidden_dropout_prob", 0.1)),
        do_lower_case=_optional_bool(raw.get("do_lower_case")),
    )
    _check_config(config, config_path)
    return config


def _optional_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _check_config(config: BertConfig, config_path: Path) -> None:
    if config.hidden_act not in SUPPORTED_ACTIVATIONS:
        raise EncoderError(
            f"{config_path}: hidden_act {config.hidden_act!r} is not supported; KerasHub's "
            f"BertBackbone only computes GELU ({', '.join(sorted(SUPPORTED_ACTIVATIONS))}). "
            "Use a BERT checkpoint trained with GELU."
        )
    if config.hidden_size % config.num_attention_heads:
        raise EncoderError(
            f"{config_path}: hidden_size {config.hidden_size} is not divisible by "
            f"num_attention_heads {config.num_attention_heads}; fix the config."
        )


def read_vocab_tokens(vocab_path: Path) -> list[str]:
    """The WordPiece tokens of `vocab.txt`, one per line, in id order."""
    if not vocab_path.is_file():
        raise EncoderError(
            f"{vocab_path} is missing: a TF BERT checkpoint folder needs the {VOCAB_FILE} it "
            "was trained with (copy it next to the model.ckpt files)."
        )
    text = vocab_path.read_text(encoding="utf-8")
    # split("\n"), not splitlines(): some vocabularies hold tokens with U+2028 and friends.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def check_vocab_size(vocab_path: Path, vocab_size: int) -> None:
    """Fail when `vocab.txt` and the config's `vocab_size` disagree."""
    token_count = len(read_vocab_tokens(vocab_path))
    if token_count != vocab_size:
        raise EncoderError(
            f"{vocab_path} has {token_count} tokens but {CONFIG_FILE} says vocab_size="
            f"{vocab_size}: the vocabulary does not belong to this checkpoint; use the "
            f"{VOCAB_FILE} released with it."
        )


def vocab_is_cased(tokens: list[str]) -> bool:
    """Whether any ordinary (non-special) word piece holds an upper-case letter."""
    return any(
        any(char.isupper() for char in token) for token in tokens if not _SPECIAL_TOKEN.match(token)
    )


def resolve_lowercase(lowercase: bool | None, config: BertConfig, vocab_path: Path) -> bool:
    """The caller's choice, else the config's `do_lower_case`, else inferred from the vocab."""
    if lowercase is not None:
        return lowercase
    if config.do_lower_case is not None:
        return config.do_lower_case
    return not vocab_is_cased(read_vocab_tokens(vocab_path))


def find_checkpoint_prefix(folder: Path) -> Path:
    """The checkpoint prefix: the one the `checkpoint` file names, else the highest step."""
    prefixes = {index.with_suffix("") for index in folder.glob("*.index")}
    if not prefixes:
        raise EncoderError(
            f"{folder} holds no checkpoint index (*.index): copy both model.ckpt-NNNN.index "
            "and model.ckpt-NNNN.data-00000-of-00001 into the folder."
        )
    named = _prefix_from_state_file(folder / CHECKPOINT_STATE_FILE)
    if named is not None and (folder / named) in prefixes:
        return folder / named
    return max(prefixes, key=_step_then_name)


def _prefix_from_state_file(state_path: Path) -> str | None:
    # The state file often holds an absolute path from the training machine; only the
    # basename is meaningful once the folder has been copied elsewhere.
    if not state_path.is_file():
        return None
    match = _CHECKPOINT_STATE_LINE.search(state_path.read_text(encoding="utf-8"))
    return Path(match.group("path")).name if match else None


def _step_then_name(prefix: Path) -> tuple[int, str]:
    match = _STEP_SUFFIX.search(prefix.name)
    return (int(match.group(1)) if match else -1, prefix.name)


def _import_tensorflow() -> ModuleType:
    try:
        import tensorflow as tf
    except ImportError as error:
        raise EncoderError(
            "Reading a TF1 BERT checkpoint needs TensorFlow: `pip install tensorflow` "
            "(the version pinned in requirements.txt)."
        ) from error
    return tf


def open_checkpoint_reader(prefix: Path) -> CheckpointReader:
    """TensorFlow's name-based checkpoint reader for `prefix` (TF imported only here)."""
    tf = _import_tensorflow()
    try:
        return tf.train.load_checkpoint(str(prefix))
    except (tf.errors.OpError, ValueError) as error:
        raise EncoderError(
            f"TensorFlow cannot read checkpoint {prefix} ({error}); check that "
            f"{prefix.name}.data-00000-of-00001 sits next to {prefix.name}.index and is "
            "complete (re-download it if needed)."
        ) from error


def build_backbone(config: BertConfig) -> keras_hub.models.BertBackbone:
    """A randomly initialised `BertBackbone` with the checkpoint's architecture."""
    return keras_hub.models.BertBackbone(
        vocabulary_size=config.vocab_size,
        num_layers=config.num_hidden_layers,
        num_heads=config.num_attention_heads,
        hidden_dim=config.hidden_size,
        intermediate_dim=config.intermediate_size,
        dropout=config.hidden_dropout_prob,
        max_sequence_length=config.max_position_embeddings,
        num_segments=config.type_vocab_size,
    )


def plan_weight_ports(config: BertConfig) -> list[WeightPort]:
    """Every TF variable to copy, with its expected TF shape and its KerasHub destination."""
    return list(_embedding_and_pooler_ports(config)) + [
        port for layer in range(config.num_hidden_layers) for port in _layer_ports(config, layer)
    ]


def _resolve_shape(symbolic: tuple[str, ...], config: BertConfig) -> tuple[int, ...]:
    dims = config.dimensions
    return tuple(dims[name] for name in symbolic)


def _embedding_and_pooler_ports(config: BertConfig) -> Iterator[WeightPort]:
    for tf_name, (keras_path, shape) in EMBEDDING_PORTS.items():
        yield WeightPort(tf_name, keras_path, _resolve_shape(shape, config))


def _layer_ports(config: BertConfig, layer: int) -> Iterator[WeightPort]:
    for tf_suffix, (keras_suffix, shape) in LAYER_PORTS.items():
        yield WeightPort(
            f"bert/encoder/layer_{layer}/{tf_suffix}",
            f"transformer_layer_{layer}/{keras_suffix}",
            _resolve_shape(shape, config),
        )


def assign_weights(
    backbone: keras_hub.models.BertBackbone,
    reader: CheckpointReader,
    ports: list[WeightPort],
    prefix: Path,
) -> None:
    """Copy every port's TF tensor into the backbone, after checking names and shapes."""
    available = reader.get_variable_to_shape_map()
    _check_variables_present(ports, available, prefix)
    _check_ports_cover_backbone(backbone, ports)
    targets = {variable.path: variable for variable in backbone.weights}
    for port in ports:
        actual_shape = tuple(available[port.tf_name])
        if actual_shape != port.tf_shape:
            raise EncoderError(
                f"Checkpoint {prefix}: variable {port.tf_name} has shape {actual_shape}, "
                f"expected {port.tf_shape} from {CONFIG_FILE}; the config does not match the "
                "checkpoint, use the config released with it."
            )
        target = targets[port.keras_path]
        value = np.asarray(reader.get_tensor(port.tf_name))
        target.assign(value.reshape(tuple(target.shape)).astype(target.dtype))


def _check_variables_present(
    ports: list[WeightPort], available: Mapping[str, list[int]], prefix: Path
) -> None:
    missing = [port.tf_name for port in ports if port.tf_name not in available]
    if not missing:
        return
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    hint = (
        " It holds no bert/* variables: it is not a Google TF1 BERT checkpoint (TF2 object-"
        "based and PyTorch checkpoints need another loader)."
        if not any(name.startswith("bert/") for name in available)
        else f" Use the {CONFIG_FILE} released with it (num_hidden_layers must match)."
    )
    raise EncoderError(f"Checkpoint {prefix} lacks variable(s) {shown}.{hint}")


def _check_ports_cover_backbone(
    backbone: keras_hub.models.BertBackbone, ports: list[WeightPort]
) -> None:
    # Guards against a KerasHub upgrade renaming or adding weights: a weight left at its
    # random initialisation would silently ruin fine-tuning.
    ported = {port.keras_path for port in ports}
    present = {variable.path for variable in backbone.weights}
    unfilled, unknown = present - ported, ported - present
    if unfilled or unknown:
        raise EncoderError(
            "KerasHub's BertBackbone weights no longer match the TF checkpoint mapping "
            f"(never filled: {sorted(unfilled)}; not in the backbone: {sorted(unknown)}); "
            "update EMBEDDING_PORTS/LAYER_PORTS in tagger/encoders/tf_checkpoint.py for the "
            "installed keras_hub version."
        )
