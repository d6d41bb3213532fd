"""Disease-mention tagging with a fine-tuned BERT token classifier.

Example (``tiny_model_dir`` stands for a model folder such as ``models/default``):
    >>> from tagger import Tagger
    >>> text = "Cocaine-induced seizures."
    >>> spans = Tagger.load(tiny_model_dir).tag(text)
    >>> all(span.text == text[span.start : span.end] for span in spans)
    True

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
