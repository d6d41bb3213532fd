"""Adapting the encoder to a collection's text: the job's options and the encoders it made.

Curators hold far more unlabeled abstracts than labels. An ``adapt`` job continues the
encoder's masked-language-model pretraining (``training.adapt``, whole-word masking) on
the text of one imported collection and writes an encoder folder under the registry's
``encoders/``; the Training page then offers it as the starting point of a training
from the encoder. Nothing here imports Keras: the worker runs the job
(``worker.adapt_job``).

Example:

>>> options = AdaptJobOptions.from_json({"collection": "pool", "epochs": 2})
>>> options.epochs, options.max_steps, options.to_json()
(2, None, {'collection': 'pool', 'epochs': 2})
>>> adapted_encoder_folder(Path("models"), 7).as_posix()
'models/encoders/adapt-job-7'
>>> try:
...     AdaptJobOptions.from_json({"collection": "pool", "epochs": 0})
... except JobOptionsError as error:
...     print(error)  # doctest: +ELLIPSIS
job options: epochs=0 is not a number of passes over the text. Fix: give a whole number...
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from curation.jobs import Job, JobOptionsError, JobStatus, check_known_options, options_where

JOB_KIND_ADAPT = "adapt"
ENCODERS_DIR = "encoders"
# The file training.adapt writes last into a finished encoder folder.
ADAPT_RECORD_FILE = "adapt.json"
# One pass over a collection's text by default: a thousand abstracts are about a hundred
# steps of 32 sequences; more passes are the curator's choice.
DEFAULT_ADAPT_EPOCHS = 1


@dataclass(frozen=True)
class AdaptJobOptions:
    """What an adaptation job does; stored as the job's options.

    Args:
        collection: the collection whose documents' text the encoder is adapted on.
        epochs: passes over the text.
        max_steps: stop after this many optimizer steps (None: the passes decide).
    """

    collection: str
    epochs: int = DEFAULT_ADAPT_EPOCHS
    max_steps: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}

    @classmethod
    def from_json(cls, content: dict[str, Any], *, job_id: int | None = None) -> AdaptJobOptions:
        where = options_where(job_id)
        check_known_options(cls, content, where)
        collection = content.get("collection")
        if not isinstance(collection, str) or not collection.strip():
            raise JobOptionsError(
                f"collection={collection!r} names no collection",
                where=where,
                fix="name the collection whose text the encoder is adapted on",
            )
        options = cls(**content)
        _check_positive("epochs", options.epochs, "passes over the text", where)
        if options.max_steps is not None:
            _check_positive("max_steps", options.max_steps, "optimizer steps", where)
        return options


def _check_positive(name: str, value: object, unit: str, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise JobOptionsError(
            f"{name}={value!r} is not a number of {unit}",
            where=where,
            fix="give a whole number, 1 or more, or leave it out",
        )


def adapted_encoder_folder(registry_root: Path, job_id: int) -> Path:
    """Where adaptation job ``job_id`` writes its encoder (beside the model versions)."""
    return registry_root / ENCODERS_DIR / f"adapt-job-{job_id}"


@dataclass(frozen=True)
class AdaptedEncoder:
    """An encoder an adaptation job finished, ready to train from.

    Args:
        job_id: the job that made it.
        collection: the collection it was adapted on.
        folder: the encoder folder (``--encoder`` accepts it).
        finished_at: when the job ended.
        steps: optimizer steps it ran.
        final_mlm_loss: its masked-LM loss over the last steps.
    """

    job_id: int
    collection: str
    folder: Path
    finished_at: datetime | None
    steps: int | None
    final_mlm_loss: float | None

    def label(self) -> str:
        """One line for a choice list, e.g. ``adapted on pool (job 7, 120 steps)``."""
        steps = f", {self.steps} steps" if self.steps is not None else ""
        return f"adapted on {self.collection} (job {self.job_id}{steps})"


def adapted_encoders(jobs: Sequence[Job], registry_root: Path) -> list[AdaptedEncoder]:
    """The encoders of the succeeded adaptation jobs among ``jobs`` whose folders are
    complete, newest first (a folder deleted by hand is left out, not an error)."""
    found = []
    for job in jobs:
        if job.kind != JOB_KIND_ADAPT or job.status != JobStatus.SUCCEEDED:
            continue
        folder = adapted_encoder_folder(registry_root, job.id)
        try:
            record = json.loads((folder / ADAPT_RECORD_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        found.append(
            AdaptedEncoder(
                job_id=job.id,
                collection=str(job.options.get("collection", "?")),
                folder=folder,
                finished_at=job.finished_at,
                steps=record.get("steps"),
                final_mlm_loss=record.get("final_mlm_loss"),
            )
        )
    return sorted(found, key=lambda encoder: -encoder.job_id)
