"""What every encoder loader returns: a KerasHub BERT backbone and its WordPiece vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras_hub

from tagger.errors import TaggerError


class EncoderError(TaggerError, ValueError):
    """An encoder folder or name that cannot be loaded; the message names the fix."""


@dataclass
class Encoder:
    """A pretrained BERT encoder ready to be fine-tuned.

    Attributes:
        backbone: the KerasHub `BertBackbone` with pretrained weights.
        vocab_path: the WordPiece `vocab.txt` the backbone was trained with.
        lowercase: whether text must be lower-cased (and accents stripped) before WordPiece.
        source: where the encoder came from, recorded in the model folder.
    """

    backbone: keras_hub.models.BertBackbone
    vocab_path: Path
    lowercase: bool
    source: str
