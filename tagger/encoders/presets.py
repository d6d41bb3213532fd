"""KerasHub preset names (`bert_base_en_uncased`) and `hf://` / `kaggle://` handles.

These download weights, so they work only online; nothing in the tests uses them. The
vocabulary is written next to KerasHub's download cache so that the model folder can
copy it like any other encoder's.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tagger.encoders.base import Encoder, EncoderError


def load_preset(handle: str) -> Encoder:
    import keras_hub

    try:
        backbone = keras_hub.models.BertBackbone.from_preset(handle)
        tokenizer = keras_hub.models.BertTokenizer.from_preset(handle)
    except Exception as error:  # download and format errors come in many types
        raise EncoderError(
            f"could not load encoder {handle!r} ({error}); offline, pass a local folder"
        ) from error
    vocab_file = Path(tempfile.mkdtemp(prefix="encoder-vocab-")) / "vocab.txt"
    vocab_file.write_text("\n".join(tokenizer.get_vocabulary()) + "\n", encoding="utf-8")
    return Encoder(backbone, vocab_file, bool(tokenizer.lowercase), source=handle)
