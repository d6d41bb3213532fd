"""A trained model as one self-contained folder.

```
model.json          labels, casing, window settings, backbone config, training settings,
                    data hashes, metrics, library versions, version id and parent
vocab.txt           the encoder's WordPiece vocabulary
model.weights.h5    the classifier's weights (backbone included)
```
Loading needs nothing else: the backbone is rebuilt from its config and the weights
filled in, so no encoder download or package is needed to serve a trained model.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import threading
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata as package_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tagger.errors import TaggerError
from tagger.references import METADATA_FILE
from tagger.tokenization import VocabularyError, WordPieceEncoder
from tagger.windows import WindowSettings

if TYPE_CHECKING:  # Keras loads on first use: serving through ONNX Runtime never needs it
    import keras

FORMAT = "disease-tagger-model/1"
VOCAB_FILE = "vocab.txt"
WEIGHTS_FILE = "model.weights.h5"
REQUIRED_FILES = (METADATA_FILE, VOCAB_FILE, WEIGHTS_FILE)
RECORDED_PACKAGES = ("keras", "keras-hub", "tensorflow", "jax", "torch", "tokenizers", "numpy")


class ModelFolderError(TaggerError, ValueError):
    """A model folder that is missing, incomplete or corrupt; the message names the fix."""


@dataclass
class ModelMetadata:
    """Everything in `model.json` besides the weights and vocabulary."""

    labels: list[str]
    lowercase: bool
    backbone_config: dict[str, Any]
    windows: WindowSettings
    dropout: float = 0.1
    decoder: str = "viterbi"
    encoder_source: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    parent: str | None = None
    created: str = ""
    libraries: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        content = asdict(self)
        content["windows"] = asdict(self.windows)
        return {"format": FORMAT, **content}

    @classmethod
    def from_json(cls, content: dict[str, Any]) -> ModelMetadata:
        content = dict(content)
        content.pop("format", None)
        content["windows"] = WindowSettings(**content["windows"])
        return cls(**content)


@dataclass
class LoadedModel:
    model: keras.Model | None  # None when served by a runtime that does not need Keras
    encoder: WordPieceEncoder
    metadata: ModelMetadata
    folder: Path


def new_version_id() -> str:
    """Sortable and unique: UTC time plus a random suffix."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def library_versions() -> dict[str, str]:
    import keras

    versions = {"python": platform.python_version(), "keras_backend": keras.backend.backend()}
    for package in RECORDED_PACKAGES:
        try:
            versions[package] = package_metadata.version(package)
        except package_metadata.PackageNotFoundError:
            continue
    return versions


def save_model_folder(
    model: keras.Model, vocab_path: str | Path, metadata: ModelMetadata, folder: str | Path
) -> Path:
    """Write the folder next to its destination, then rename it into place.

    A crash part-way leaves only a hidden temporary folder, never a half-written model.
    An existing folder at `folder` is replaced.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    metadata.version = metadata.version or new_version_id()
    metadata.created = metadata.created or datetime.now(UTC).isoformat(timespec="seconds")
    metadata.libraries = metadata.libraries or library_versions()
    staging = make_shared_tempdir(folder.parent, prefix=f".{folder.name}.partial-")
    retired: Path | None = None
    try:
        save_weights_without_optimizer(model, staging / WEIGHTS_FILE)
        shutil.copyfile(vocab_path, staging / VOCAB_FILE)
        (staging / METADATA_FILE).write_text(
            json.dumps(metadata.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        if folder.exists():
            retired = folder.with_name(f".{folder.name}.old-{uuid.uuid4().hex[:6]}")
            os.replace(folder, retired)
            os.replace(staging, folder)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if retired is not None and retired.exists() and not folder.exists():
            os.replace(retired, folder)  # interrupted between the two renames: undo the first
        raise
    return folder


# ---------------------------------------------------------------------------
# Permissions: what a plain mkdir/open would give under the process umask
# ---------------------------------------------------------------------------

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the system says it (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # elsewhere: set and restore it (other threads never create files here)
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def shared_dir_mode() -> int:
    """``0o777 & ~umask``: a folder others may read when the umask lets them (0o022: 0o755)."""
    return 0o777 & ~current_umask()


def shared_file_mode() -> int:
    """``0o666 & ~umask``: a file as ``open()`` makes it (umask 0o022: 0o644; 0o002: 0o664)."""
    return 0o666 & ~current_umask()


def make_shared_tempdir(parent: Path, *, prefix: str) -> Path:
    """``tempfile.mkdtemp`` with the mode a plain ``mkdir`` gets (mkdtemp makes it 0o700).

    A registry is shared: an app server running as another user must read its folders.
    """
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(staging, shared_dir_mode())
    return staging


def share_tree(folder: Path) -> None:
    """Give ``folder`` and everything in it the umask's modes (copies keep their source's)."""
    dir_mode, file_mode = shared_dir_mode(), shared_file_mode()
    os.chmod(folder, dir_mode)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(Path(root) / name, dir_mode)
        for name in files:
            os.chmod(Path(root) / name, file_mode)


def save_weights_without_optimizer(model: keras.Model, path: Path) -> None:
    """`model.save_weights` also stores a compiled model's AdamW state, twice the model's size."""
    from keras.src.saving import saving_lib

    skip = [model.optimizer] if getattr(model, "optimizer", None) is not None else None
    saving_lib.save_weights_only(model, str(path), objects_to_skip=skip)


def read_metadata(folder: str | Path) -> ModelMetadata:
    folder = Path(folder)
    check_model_folder(folder)
    try:
        content = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
        if content.get("format") != FORMAT:
            raise ModelFolderError(
                f"{folder / METADATA_FILE}: format {content.get('format')!r} is not {FORMAT!r}; "
                "retrain the model with this version of the tagger"
            )
        return ModelMetadata.from_json(content)
    except ModelFolderError:
        raise
    # ValueError covers bad JSON, bad UTF-8 and impossible window settings; AttributeError
    # a JSON document that is not an object.
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        reason = error.what if isinstance(error, TaggerError) else error
        raise ModelFolderError(
            f"{folder / METADATA_FILE} is corrupt ({reason})", fix="retrain or restore the folder"
        ) from None


def check_model_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise ModelFolderError(
            "no model folder here",
            where=str(folder),
            fix=f"train one with `python -m training.train --out {folder}`, or pass --model "
            "with a model folder, a version id or `current`",
        )
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelFolderError(
            f"incomplete model folder, missing {', '.join(missing)}; it was not fully written",
            where=str(folder),
            fix="retrain or restore it",
        )


PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def load_model_folder(folder: str | Path, *, precision: str = "float32") -> LoadedModel:
    """Rebuild the classifier from `model.json` and fill in its weights.

    `precision="bfloat16"` computes in bfloat16 with float32 weights (mixed precision):
    faster on CPUs with AVX-512 BF16 and on GPUs; BENCHMARKS.md reports its F1.
    """
    import keras_hub

    from tagger.model import build_token_classifier

    if precision not in PRECISIONS:
        from tagger.runtimes import RuntimeSetupError

        raise RuntimeSetupError(
            f"Keras has no {precision} precision",
            fix=f"use --runtime keras with --precision {', '.join(PRECISIONS)}",
        )
    folder = Path(folder)
    metadata = read_metadata(folder)
    try:
        config = {**metadata.backbone_config, "dtype": PRECISIONS[precision]}
        backbone = keras_hub.models.BertBackbone.from_config(config)
        model = build_token_classifier(
            backbone, len(metadata.labels), dropout=metadata.dropout, dtype=PRECISIONS[precision]
        )
    except (TypeError, ValueError, KeyError) as error:
        raise ModelFolderError(
            f"{folder / METADATA_FILE}: backbone_config does not build a BERT ({error}); "
            "retrain or restore the folder"
        ) from None
    try:
        model.load_weights(folder / WEIGHTS_FILE)
        check_weight_count(model, folder / WEIGHTS_FILE)
    except Exception as error:  # h5py and Keras raise many types for a damaged file
        raise ModelFolderError(
            f"{folder / WEIGHTS_FILE} cannot be loaded ({type(error).__name__}: {error}); "
            "the file is damaged or from another model: retrain or restore it"
        ) from None
    return LoadedModel(model, load_vocabulary(folder, metadata), metadata, folder)


def load_without_weights(folder: str | Path) -> LoadedModel:
    """Metadata and vocabulary only (`model` is None), for runtimes that read the weights
    from elsewhere; checks the folder as `load_model_folder` does."""
    folder = Path(folder)
    metadata = read_metadata(folder)
    return LoadedModel(None, load_vocabulary(folder, metadata), metadata, folder)


def load_vocabulary(folder: Path, metadata: ModelMetadata) -> WordPieceEncoder:
    try:
        encoder = WordPieceEncoder.from_vocab_file(
            folder / VOCAB_FILE, lowercase=metadata.lowercase
        )
    except VocabularyError as error:
        raise ModelFolderError(
            f"{folder / VOCAB_FILE}: {error}; the folder is damaged: retrain or restore it"
        ) from None
    if len(encoder.vocab) != metadata.backbone_config.get("vocabulary_size"):
        raise ModelFolderError(
            f"{folder / VOCAB_FILE} has {len(encoder.vocab)} tokens but the backbone expects "
            f"{metadata.backbone_config.get('vocabulary_size')}: the folder mixes two models"
        )
    return encoder


def check_weight_count(model: keras.Model, path: Path) -> None:
    """Raise if the file holds more or fewer model weights than `model` has.

    Keras fills the variables it finds and silently ignores extra ones, so the weights of
    a deeper model would load into the shallower one a mismatched model.json describes.
    """
    import h5py

    stored: list[str] = []
    with h5py.File(path, "r") as weights:
        weights.visititems(
            lambda name, item: stored.append(name) if isinstance(item, h5py.Dataset) else None
        )
    # The optimizer's state may be saved alongside; only model variables count.
    model_weights = [name for name in stored if not name.startswith("optimizer/")]
    if len(model_weights) != len(model.weights):
        raise ValueError(
            f"the file holds {len(model_weights)} weights but model.json describes a model "
            f"with {len(model.weights)}"
        )


# ---------------------------------------------------------------------------
# Verifying a folder without Keras (before it goes into service)
# ---------------------------------------------------------------------------

# KerasHub's BertBackbone: token, position and segment embeddings, their layer norm (2)
# and the pooler (2), then 16 variables per transformer layer; the classifier head adds 2.
_BACKBONE_FIXED_WEIGHTS = 7
_WEIGHTS_PER_LAYER = 16
_HEAD_WEIGHTS = 2
_HASH_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file, read in 1 MiB chunks (a MiniLM model's weights: ~0.2 s)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_weights_file(folder: str | Path, metadata: ModelMetadata | None = None) -> None:
    """Raise :class:`ModelFolderError` unless ``model.weights.h5`` fits ``model.json``.

    Keras-free (h5py and numpy only), so the app and the registry can check a version
    before serving it: the file must open, hold as many weights as the backbone config
    describes, with the embedding and head shapes it implies, every value finite.
    """
    import h5py
    import numpy as np

    folder = Path(folder)
    metadata = metadata or read_metadata(folder)
    path = folder / WEIGHTS_FILE
    config = metadata.backbone_config
    try:
        layers = int(config["num_layers"])
        hidden = int(config["hidden_dim"])
        expected_shapes = {
            "reversible_embedding/vars/0": (int(config["vocabulary_size"]), hidden),
            "position_embedding/vars/0": (int(config["max_sequence_length"]), hidden),
        }
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFolderError(
            f"{folder / METADATA_FILE}: backbone_config lacks {error}",
            fix="retrain or restore the folder",
        ) from None
    expected_count = _BACKBONE_FIXED_WEIGHTS + _WEIGHTS_PER_LAYER * layers + _HEAD_WEIGHTS
    head = (hidden, len(metadata.labels))
    problems: list[str] = []
    try:
        with h5py.File(path, "r") as weights:
            datasets: dict[str, Any] = {}
            weights.visititems(
                lambda name, item: datasets.__setitem__(name, item)
                if isinstance(item, h5py.Dataset)
                else None
            )
            model_weights = {n: d for n, d in datasets.items() if not n.startswith("optimizer/")}
            if len(model_weights) != expected_count:
                problems.append(
                    f"it holds {len(model_weights)} weights where model.json describes "
                    f"{expected_count}"
                )
            for suffix, shape in expected_shapes.items():
                found = [d.shape for n, d in model_weights.items() if n.endswith(suffix)]
                if found and tuple(found[0]) != shape:
                    problems.append(f"{suffix} is {tuple(found[0])}, not {shape}")
            top = model_weights.get("layers/dense/vars/0")
            if top is not None and tuple(top.shape) != head:
                problems.append(f"the classifier head is {tuple(top.shape)}, not {head}")
            for name, dataset in model_weights.items():
                values = dataset[()]
                if values.dtype.kind == "f" and not np.isfinite(values).all():
                    problems.append(f"{name} holds values that are not finite")
                    break
    except ModelFolderError:
        raise
    except Exception as error:  # h5py raises OSError, KeyError, RuntimeError... on damage
        problems.append(f"it cannot be read ({type(error).__name__}: {error})")
    if problems:
        raise ModelFolderError(
            f"{WEIGHTS_FILE} is damaged or from another model: {'; '.join(problems)}",
            where=str(folder),
            fix="retrain, or restore the folder",
        )


def verify_model_folder(folder: str | Path) -> ModelMetadata:
    """What the registry checks before serving a folder, Keras-free: ``model.json``
    reads, the vocabulary fits it, the weights file fits it (:func:`check_weights_file`)."""
    folder = Path(folder)
    metadata = read_metadata(folder)
    load_vocabulary(folder, metadata)
    check_weights_file(folder, metadata)
    return metadata
