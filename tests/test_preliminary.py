"""Preliminary versions: a first training serves a model while it trains (tiny model, real worker).

Each job here runs a few steps of the tiny random BERT through :class:`worker.loop.Worker`,
with a preliminary point after 2 steps; a hook on the job's heartbeat looks at the
registry (and tags with ``current``) while the job is still running.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from curation.jobs import Job, JobQueue, JobSignal, JobStatus, TrainJobOptions
from curation.registry import FIRST_MODEL_STAGE, ModelVersion
from curation.service import FIRST_JOB_REQUESTER
from tagger.model_folder import load_model_folder
from tagger.references import REGISTRY_DIR_ENV
from tagger.tagger import Tagger
from tests.tiny import TINY_RECIPE, tiny_encoder
from tests.worker_helpers import on_step, tiny_worker_settings
from training.recipes import FIRST_MODEL_WINDOWS
from worker.loop import Worker, WorkerSettings
from worker.progress import FIRST_MODEL_PHASE

SENTENCE = "patients developed hypotension after cocaine ."


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WorkerSettings:
    """A worker over an empty registry (nothing to adopt) and the tiny BIO data."""
    monkeypatch.setenv(REGISTRY_DIR_ENV, str(tmp_path / "models"))  # for Tagger.load("current")
    return tiny_worker_settings(tmp_path, max_steps=4)


def tiny_worker(settings: WorkerSettings) -> Worker:
    """Not started yet: ``run`` starts it, after the test queued its own first job."""
    return Worker(
        settings,
        load_encoder=lambda _spec: tiny_encoder(settings.app_data_dir / "encoder"),
        encoder_settings=TINY_RECIPE,
    )


def queue_job(worker: Worker, **options: Any) -> Job:
    """Queue a job as ``ensure_first_job`` does (from the encoder), with ``options``.

    Without the quick first model unless ``first_model`` is given: most tests here are
    about the preliminary points of the job's own recipe.
    """
    chosen = TrainJobOptions(**{"start_from": "encoder", "first_model": False, **options})
    result = worker.queue.enqueue(options=chosen.to_json(), requested_by=FIRST_JOB_REQUESTER)
    assert result.created and result.job is not None
    return result.job


@dataclass
class Seen:
    """What the registry served (and ``current`` tagged with) at one step of a running job."""

    status: JobStatus
    serving: ModelVersion | None
    tagged_by: str | None = None
    spans: list[Any] = field(default_factory=list)
    graph_ready: bool = False


def watch(worker: Worker, job: Job, steps: set[int]) -> dict[int, Seen]:
    """At each of ``steps``, what serves, and ``Tagger.load("current")`` tagging with it."""
    from tagger.runtimes import default_runtime, onnx_graph_path

    seen: dict[int, Seen] = {}

    def look(step: int) -> None:
        if step not in steps:
            return
        serving = worker.registry.serving()
        record = Seen(worker.queue.get(job.id).status, serving)
        if serving is not None:
            tagger = Tagger.load("current")
            record.tagged_by = tagger.version
            record.spans = tagger.tag(SENTENCE)
            record.graph_ready = default_runtime() != "onnx" or (
                onnx_graph_path(serving.version, "int8").is_file()
            )
        seen[step] = record

    on_step(worker.queue, look)
    return seen


def test_a_first_training_serves_a_preliminary_version_while_it_trains(
    settings: WorkerSettings,
) -> None:
    worker = tiny_worker(settings)
    job = queue_job(worker, preliminary_after_steps=2)
    seen = watch(worker, job, {1, 3, 6})
    assert worker.run(once=True) == 0

    # Before the preliminary point nothing served; after it, while the job still ran,
    # a preliminary version did, and `current` tagged with it.
    assert seen[1].status == JobStatus.RUNNING and seen[1].serving is None
    during = seen[3]
    assert during.status == JobStatus.RUNNING and during.serving is not None
    assert during.serving.preliminary and during.serving.job_id == job.id
    assert during.tagged_by == during.serving.version and isinstance(during.spans, list)
    assert during.graph_ready  # derived before it went into service
    point = during.serving.preliminary_point
    assert (point["epoch"], point["step"], point["epoch_end"]) == (1, 2, False)
    assert point["dev_f1"] == during.serving.dev_f1
    assert during.serving.preliminary_note() == (
        f"preliminary (epoch 1, step 2, devel F1 {during.serving.dev_f1:.1f}) — training continues"
    )
    # Epoch 2 (steps 5-8) serves the step-2 version or a better one from epoch 1's end.
    in_epoch_2 = seen[6].serving
    assert in_epoch_2 is not None and in_epoch_2.preliminary
    assert (in_epoch_2.dev_f1 or 0.0) >= (during.serving.dev_f1 or 0.0)

    finished = worker.queue.get(job.id)
    assert finished.status == JobStatus.SUCCEEDED, finished.error
    final = worker.registry.serving()
    assert final is not None and final.version == finished.model_version
    assert not final.preliminary and final.preliminary_note() is None
    assert final.decision == "promoted" and final.test_f1 is not None
    assert f"replaces the job's preliminary version {in_epoch_2.version}" in final.note
    assert final.summary["promotion"]["replaces_preliminary"] == in_epoch_2.version
    preliminaries = [v for v in worker.registry.versions() if v.preliminary]
    assert during.serving.version in {v.version for v in preliminaries}
    assert all(v.job_id == job.id and not v.serving for v in preliminaries)
    assert len(preliminaries) <= 2  # step 2 and, if better, the end of epoch 1; never epoch 2
    log = Path(finished.log_file or "").read_text()
    assert f"preliminary version {during.serving.version} in service from step 2" in log


def phases_seen(queue: JobQueue) -> list[str]:
    """The progress phases the job reports, in order, each once per run of reports."""
    phases: list[str] = []
    original = queue.heartbeat

    def heartbeat(job_id: int, worker: str, **kwargs: Any) -> JobSignal:
        progress = kwargs.get("progress")
        if progress is not None and (not phases or phases[-1] != progress.phase):
            phases.append(progress.phase)
        return original(job_id, worker, **kwargs)

    queue.heartbeat = heartbeat  # type: ignore[method-assign]
    return phases


def test_a_first_training_serves_its_quick_first_model_then_its_own_recipe(
    settings: WorkerSettings,
) -> None:
    worker = tiny_worker(settings)
    job = queue_job(worker, first_model=None)  # the default: a quick first model
    phases = phases_seen(worker.queue)
    seen = watch(worker, job, {1, 6})  # steps of the job's own recipe
    assert worker.run(once=True) == 0

    # From the recipe's first step on, the quick first model served and tagged.
    first = seen[1].serving
    assert seen[1].status == JobStatus.RUNNING and first is not None
    assert first.preliminary and first.job_id == job.id
    assert first.preliminary_point["stage"] == FIRST_MODEL_STAGE
    assert first.preliminary_note() == (
        f"preliminary (quick first model, devel F1 {first.dev_f1:.1f}) — training continues"
    )
    assert seen[1].tagged_by == first.version and seen[1].graph_ready
    windows = load_model_folder(first.folder).metadata.windows
    assert windows.context_tokens == 0 and windows.max_tokens <= FIRST_MODEL_WINDOWS.max_tokens
    assert first.summary["preliminary_point"]["step"] == 4  # the worker's max_steps
    # Its own recipe's epochs did not beat it (tiny random models), so it served on.
    assert seen[6].serving is not None and seen[6].serving.version == first.version
    assert phases.index(FIRST_MODEL_PHASE) < phases.index("training")

    finished = worker.queue.get(job.id)
    assert finished.status == JobStatus.SUCCEEDED, finished.error
    final = worker.registry.serving()
    assert final is not None and final.version == finished.model_version
    assert not final.preliminary
    # The final version trained the job's recipe (with context), not the first model's.
    assert load_model_folder(final.folder).metadata.windows == TINY_RECIPE.windows
    assert final.summary["promotion"]["replaces_preliminary"] == first.version
    assert "first_model" in final.summary["phase_seconds"]
    log = Path(finished.log_file or "").read_text()
    assert "quick first model" in log
    assert f"preliminary version {first.version} in service from the quick first model" in log


def test_a_retrain_serves_no_preliminary_version(
    settings: WorkerSettings, tiny_model_dir: Path
) -> None:
    worker = tiny_worker(dataclasses.replace(settings, adopt_dir=tiny_model_dir, max_steps=2))
    worker.start()  # adopts the tiny model: a version is in service
    adopted = worker.registry.serving_version()
    assert adopted is not None
    # Even asked for explicitly: a preliminary version never displaces a serving model.
    job = queue_job(worker, start_from="serving", override=True, preliminary=True,
                    preliminary_after_steps=1)  # fmt: skip
    seen = watch(worker, job, {1, 2, 3})
    assert worker.run(once=True) == 0
    assert [look.serving.version if look.serving else None for look in seen.values()] == [
        adopted
    ] * 3
    finished = worker.queue.get(job.id)
    assert finished.status == JobStatus.SUCCEEDED, finished.error
    assert worker.registry.serving_version() == finished.model_version != adopted
    assert not any(v.preliminary for v in worker.registry.versions())
    promotion = worker.registry.get(finished.model_version or "").summary["promotion"]
    assert promotion["compared_with"] == adopted and promotion["replaces_preliminary"] is None


def cancel_at(worker: Worker, job: Job, step: int) -> None:
    on_step(worker.queue, lambda now: worker.queue.request_cancel(job.id) if now == step else None)


def test_a_cancelled_first_training_leaves_its_preliminary_version_in_service(
    settings: WorkerSettings,
) -> None:
    worker = tiny_worker(dataclasses.replace(settings, max_steps=20))
    job = queue_job(worker, preliminary_after_steps=2)
    cancel_at(worker, job, 4)
    worker.run(once=True)
    finished = worker.queue.get(job.id)
    assert finished.status == JobStatus.CANCELLED
    serving = worker.registry.serving()
    assert serving is not None and serving.preliminary and serving.job_id == job.id
    assert [v.version for v in worker.registry.versions()] == [serving.version]
    assert Tagger.load("current").version == serving.version
    log = Path(finished.log_file or "").read_text()
    assert f"its preliminary version {serving.version} stays in service" in log
    assert serving.preliminary_note(training_continues=False) == (
        f"preliminary (epoch 1, step 2, devel F1 {serving.dev_f1:.1f}) — training stopped "
        "early: retrain to finish it"
    )


def test_a_failed_first_training_leaves_its_preliminary_version_in_service(
    settings: WorkerSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker import training_job

    def broken(*_args: object) -> dict[str, Any]:
        raise OSError("test.tsv vanished")

    monkeypatch.setattr(training_job, "evaluate_tagger", broken)  # the test split, after training
    worker = tiny_worker(settings)
    job = queue_job(worker, preliminary_after_steps=2)
    assert worker.run(once=True) == 1
    finished = worker.queue.get(job.id)
    assert finished.status == JobStatus.FAILED and "vanished" in (finished.error or "")
    serving = worker.registry.serving()
    assert serving is not None and serving.preliminary and serving.job_id == job.id
    assert "stays in service" in Path(finished.log_file or "").read_text()


def test_a_cancelled_first_training_says_its_preliminary_stays_in_service(
    settings: WorkerSettings,
) -> None:
    worker = tiny_worker(dataclasses.replace(settings, max_steps=20))
    job = queue_job(worker, preliminary_after_steps=2)
    cancel_at(worker, job, 4)
    worker.run(once=True)
    finished = worker.queue.get(job.id)
    serving = worker.registry.serving_version()
    assert f"its preliminary version {serving} stays in service" in (finished.message or "")
