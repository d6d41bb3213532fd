"""What the Training page shows, as plain data: progress lines, durations and tables.

Pure functions of the job queue's and the registry's records (no Streamlit), so the
page module only draws and the wording is tested on its own.

Example:

>>> format_duration(3725)
'1 h 02 min'
>>> format_duration(None)
'–'
>>> training_data_label({"retrain_data": "replay", "replay_sentences": 1200})
'replay (1,200 base sentences)'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from curation.adaptation import JOB_KIND_ADAPT
from curation.jobs import (
    RETRAIN_DATA_FULL,
    RETRAIN_DATA_REPLAY,
    START_FROM_SERVING,
    Job,
    Progress,
)
from curation.registry import ModelVersion, ServingEvent

NONE_MARK = "–"
SPLITS = (("dev", "dev"), ("test", "test"))
SCORES = (("precision", "P"), ("recall", "R"), ("f1", "F1"))
MAX_ERROR_PREVIEW = 160


def format_duration(seconds: float | None) -> str:
    """``12 s``, ``3 min 05 s``, ``1 h 02 min``; ``–`` when unknown."""
    if seconds is None:
        return NONE_MARK
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def format_time(moment: datetime | None) -> str:
    return NONE_MARK if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def progress_text(progress: Progress) -> str:
    """The progress bar's label, e.g. ``training · epoch 2/3 · step 40/120 · ETA 3 min 05 s``."""
    parts = [progress.phase]
    if progress.epochs:
        parts.append(f"epoch {progress.epoch}/{progress.epochs}")
    if progress.total_steps:
        parts.append(f"step {progress.step:,}/{progress.total_steps:,}")
    if progress.loss is not None:
        parts.append(f"loss {progress.loss:.4f}")
    if progress.eta_s is not None:
        parts.append(f"ETA {format_duration(progress.eta_s)}")
    return " · ".join(parts)


def loss_frame(points: Sequence[tuple[int, int, float]]) -> pd.DataFrame:
    """``queue.loss_curve(job_id)`` as a frame with columns step, epoch, loss."""
    return pd.DataFrame(points, columns=["step", "epoch", "loss"])


def epoch_frame(progress: Progress) -> pd.DataFrame:
    """One row per finished epoch: epoch, loss, dev F1, seconds."""
    rows = [
        {
            "epoch": entry.get("epoch"),
            "loss": entry.get("loss"),
            "dev F1": entry.get("dev_f1"),
            "seconds": entry.get("seconds"),
        }
        for entry in progress.epoch_history
    ]
    return pd.DataFrame(rows, columns=["epoch", "loss", "dev F1", "seconds"])


def _score(version: ModelVersion, split: str, key: str) -> float | None:
    value = version.metrics.get(split, {}).get(key)
    return None if value is None else float(value)


def versions_frame(versions: Sequence[ModelVersion]) -> pd.DataFrame:
    """Every version (as ``registry.versions()`` lists them, newest first) with its scores."""
    rows = []
    for version in versions:
        row: dict[str, object] = {
            "version": version.version,
            "in service": version.serving,
            "created": version.created_at,
        }
        for split, split_label in SPLITS:
            for key, key_label in SCORES:
                row[f"{split_label} {key_label}"] = _score(version, split, key)
        row.update(
            {
                "corrections used": version.corrections_used,
                "parent": version.parent or NONE_MARK,
                "decision": version.decision,
                "note": version.note,
                "job": version.job_id,
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def f1_history_frame(versions: Sequence[ModelVersion]) -> pd.DataFrame:
    """Dev and test F1 per version, oldest first, for a chart of F1 over versions."""
    ordered = sorted(versions, key=lambda v: (v.created_at, v.version))
    return pd.DataFrame(
        {
            "created": [v.created_at for v in ordered],
            "version": [v.version for v in ordered],
            "dev F1": [v.dev_f1 for v in ordered],
            "test F1": [v.test_f1 for v in ordered],
        }
    )


def first_line(text: str | None, limit: int = MAX_ERROR_PREVIEW) -> str:
    if not text:
        return ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _replay_label(sentences: object) -> str:
    if isinstance(sentences, int) and not isinstance(sentences, bool):
        return f"replay ({sentences:,} base sentences)"
    return "replay (default size)"


def job_data_label(job: Job, summary: Mapping[str, Any] | None = None) -> str:
    """What a job trains on: :func:`training_data_label` for a training, the collection's
    text for an adaptation of the encoder."""
    if job.kind == JOB_KIND_ADAPT:
        return f"the text of collection {job.options.get('collection', '?')} (adaptation)"
    return training_data_label(job.options, summary)


def training_data_label(
    options: Mapping[str, Any], summary: Mapping[str, Any] | None = None
) -> str:
    """What a job trains on, for the job list: ``full`` or ``replay (N base sentences)``.

    Read from the job's options (what was asked); ``summary``, the summary of the version
    the job registered, says what it did, with the number of base sentences it replayed.
    A job that asked for neither (``retrain_data`` left out) replays when it continues a
    model in service and trains on everything otherwise, which only its run decides.

    Args:
        options: the job's options (``Job.options``, :class:`TrainJobOptions` as JSON).
        summary: the summary of the version the job registered, if any.

    >>> training_data_label({"start_from": "encoder"})
    'full'
    >>> training_data_label({"retrain_data": "replay"})
    'replay (default size)'
    >>> ran = {"retrain_data": "replay", "replay": {"base_sentences_replayed": 812}}
    >>> training_data_label({}, ran)
    'replay (812 base sentences)'
    """
    done = summary.get("retrain_data") if summary is not None else None
    if done == RETRAIN_DATA_REPLAY and summary is not None:
        return _replay_label((summary.get("replay") or {}).get("base_sentences_replayed"))
    if done == RETRAIN_DATA_FULL:
        return "full"
    asked = options.get("retrain_data")
    if asked == RETRAIN_DATA_FULL or options.get("start_from", START_FROM_SERVING) != (
        START_FROM_SERVING
    ):
        return "full"
    if asked == RETRAIN_DATA_REPLAY:
        return _replay_label(options.get("replay_sentences"))
    if summary is not None:
        return "full"  # registered before versions recorded it: every retrain was full
    return "replay if a model is in service, else full"


def jobs_frame(
    jobs: Sequence[Job],
    now: datetime | None = None,
    versions: Sequence[ModelVersion] = (),
) -> pd.DataFrame:
    """The job history, newest first: status, times, training data, outcome and error.

    ``versions`` (the registry's) give each finished job's training data as it ran.
    """
    summaries = {version.version: version.summary for version in versions}
    rows = [
        {
            "job": job.id,
            "status": str(job.status),
            "requested by": job.requested_by,
            "start from": (
                "the encoder"
                if job.kind == JOB_KIND_ADAPT
                else job.options.get("start_from", "serving")
            ),
            "training data": job_data_label(job, summaries.get(job.model_version or "")),
            "created": job.created_at,
            "duration": format_duration(job.duration_s(now)),
            "device": job.device or NONE_MARK,
            "corrections": NONE_MARK if job.correction_ids is None else len(job.correction_ids),
            "model version": job.model_version or NONE_MARK,
            "message": job.message or "",
            "error": first_line(job.error),
        }
        for job in jobs
    ]
    return pd.DataFrame(rows)


def serving_history_frame(events: Sequence[ServingEvent]) -> pd.DataFrame:
    rows = [
        {
            "at": event.at,
            "version": event.version,
            "previous": event.previous or NONE_MARK,
            "by": event.actor,
            "reason": event.reason,
        }
        for event in events
    ]
    return pd.DataFrame(rows, columns=["at", "version", "previous", "by", "reason"])
