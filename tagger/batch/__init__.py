"""Batch tagging: many documents from files to Parquet, in-process or on Ray.

``python -m tagger.batch INPUT... --out OUT_DIR [--model REF] [--engine local|ray]
[--address RAY_ADDRESS]`` (see ``tagger/batch/__main__.py``); :func:`run_batch` from
Python. One concept per module: ``sources`` (inputs and their rows), ``tagging`` (the
tagger both engines run), ``output`` (Parquet, manifests, errors file), ``engines``
(local and Ray), ``run`` (one run).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "run_batch": "tagger.batch.run",
    "BatchReport": "tagger.batch.run",
    "DocumentTagger": "tagger.batch.tagging",
    "ENGINES": "tagger.batch.engines",
    "InputSource": "tagger.batch.sources",
    "discover_inputs": "tagger.batch.sources",
    "OutputFolder": "tagger.batch.output",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tagger.batch' has no attribute {name!r}")
