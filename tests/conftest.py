"""Shared test settings: the TensorFlow backend, quiet logs, and the real-data switch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ONNX graphs derived during tests go to a temporary cache, not the user's."""
    folder = tmp_path_factory.mktemp("tagger-cache")
    os.environ["TAGGER_CACHE_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def bc5cdr_dir() -> Path:
    """The real BC5CDR-disease folder, or skip: CI sets BC5CDR_DIR, a fresh laptop may not."""
    value = os.environ.get("BC5CDR_DIR")
    if not value:
        pytest.skip("BC5CDR_DIR is not set: point it at a folder with train/devel/test.tsv")
    folder = Path(value)
    if not (folder / "test.tsv").is_file():
        pytest.skip(f"BC5CDR_DIR={value} has no test.tsv")
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT fine-tuned for a few steps, saved as a complete model folder."""
    from tests.tiny import train_tiny_model

    return train_tiny_model(tmp_path_factory.mktemp("models") / "tiny")
