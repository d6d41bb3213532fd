"""Disease-mention tagging with a fine-tuned BERT token classifier.

Example:
    >>> from tagger import Tagger
    >>> spans = Tagger.load("models/default").tag("Cocaine-induced seizures.")  # doctest: +SKIP

The heavy modules (Keras, TensorFlow) load on first use, so `tagger.bio` stays importable
in environments without them.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Tagger": "tagger.tagger",
    "Span": "tagger.spans",
    "TaggedSentence": "tagger.spans",
    "Sentence": "tagger.bio",
    "read_bio": "tagger.bio",
    "write_bio": "tagger.bio",
    "parse_bio": "tagger.bio",
    "BioFormatError": "tagger.bio",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tagger' has no attribute {name!r}")
