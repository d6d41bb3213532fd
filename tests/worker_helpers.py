"""Helpers for the job, registry and worker tests: tiny BIO data and cheap model versions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tagger.bio import write_bio
from tests.tiny import tiny_corpus


def write_tiny_data(folder: Path) -> Path:
    """train/devel/test.tsv from the tiny corpus (48 / 6 / 6 sentences)."""
    corpus = tiny_corpus()
    folder.mkdir(parents=True, exist_ok=True)
    write_bio(corpus[:48], folder / "train.tsv")
    write_bio(corpus[48:54], folder / "devel.tsv")
    write_bio(corpus[54:], folder / "test.tsv")
    return folder


def clone_version(
    source: Path,
    versions_dir: Path,
    version: str,
    *,
    dev_f1: float = 50.0,
    test_f1: float = 50.0,
    parent: str | None = None,
) -> Path:
    """A copy of a real model folder under ``versions_dir/version`` with new metadata.

    The weights stay those of ``source``: enough to register, load and serve it, without
    training another model.
    """
    target = versions_dir / version
    versions_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target)
    metadata_path = target / "model.json"
    content = json.loads(metadata_path.read_text(encoding="utf-8"))
    content["version"] = version
    content["parent"] = parent
    content["metrics"] = {"dev": {"f1": dev_f1}, "test": {"f1": test_f1}}
    metadata_path.write_text(json.dumps(content, indent=2), encoding="utf-8")
    return target
