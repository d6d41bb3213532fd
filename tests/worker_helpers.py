"""Helpers for the job, registry and worker tests: tiny BIO data and cheap model versions."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curation.corrections import Correction, CorrectionsStore
from curation.jobs import JobQueue, JobSignal
from tagger.bio import Sentence, write_bio
from tests.tiny import tiny_corpus

if TYPE_CHECKING:
    from worker.loop import WorkerSettings


def worker_cli_args(settings: WorkerSettings) -> list[str]:
    """``python -m worker``'s flags for ``settings`` (folders, data, caps, tolerance)."""
    args = ["--app-data-dir", str(settings.app_data_dir), "--registry", str(settings.registry_dir)]
    optional: list[tuple[str, object]] = [
        ("--db", settings.db_url),
        ("--data-dir", settings.data_dir),
        ("--encoder", settings.encoder),
        ("--max-steps", settings.max_steps),
        ("--epochs", settings.epochs),
        ("--tolerance", settings.tolerance),
    ]
    args += [item for flag, value in optional if value is not None for item in (flag, str(value))]
    return args + (["--adopt", str(settings.adopt_dir)] if settings.adopt_dir else ["--no-adopt"])


def tiny_worker_settings(tmp_path: Path, **changes: Any) -> WorkerSettings:
    """A worker over a tmp app folder and registry and the tiny BIO data, capped at 3
    steps of 2 epochs; tolerance 100 (the tiny model's F1 is noise: always promote unless
    told not to). ``changes`` set any other field (e.g. ``adopt_dir``)."""
    from worker.loop import WorkerSettings

    settings = WorkerSettings(
        app_data_dir=tmp_path / "app",
        registry_dir=tmp_path / "models",
        data_dir=write_tiny_data(tmp_path / "bio"),
        max_steps=3,
        epochs=2,
        tolerance=100.0,
        adopt_dir=None,
        heartbeat_s=0.2,
    )
    return dataclasses.replace(settings, **changes)


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


def on_step(queue: JobQueue, hook: Callable[[int], None]) -> None:
    """Call ``hook(step)`` after each reported training step of any job."""
    original = queue.heartbeat

    def heartbeat(job_id: int, worker: str, **kwargs: object) -> JobSignal:
        signal_ = original(job_id, worker, **kwargs)  # type: ignore[arg-type]
        loss_point = kwargs.get("loss_point")
        if loss_point is not None:
            hook(loss_point[0])  # type: ignore[index]
        return signal_

    queue.heartbeat = heartbeat  # type: ignore[method-assign]


def save_correction(store: CorrectionsStore, sentence: Sentence, index: int = 0) -> Correction:
    return store.save(
        words=sentence.words,
        labels=sentence.labels,
        predicted=["O"] * len(sentence.words),
        source="file:train.tsv",
        sentence_index=index,
        model_version="v0",
        annotator="ada",
    ).correction
