"""Adapting the encoder to a collection's text as a worker job, then training from it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from curation.adaptation import JOB_KIND_ADAPT, adapted_encoder_folder
from curation.collections import CollectionNotFoundError
from curation.jobs import JobOptionsError, JobStatus
from curation.service import Curation
from tagger.bio import format_bio
from tagger.model_folder import read_metadata
from tests.tiny import TINY_RECIPE, tiny_corpus, tiny_encoder
from tests.worker_helpers import on_step, tiny_worker_settings
from worker.loop import Worker, WorkerSettings

ABSTRACTS = [" ".join(sentence.words) for sentence in tiny_corpus()[:40]]


@pytest.fixture
def settings(tmp_path: Path, tiny_model_dir: Path) -> WorkerSettings:
    return tiny_worker_settings(tmp_path, adopt_dir=tiny_model_dir, epochs=1)


def tiny_worker(settings: WorkerSettings, *, real_loader: bool = False) -> Worker:
    """A worker on the tiny encoder; ``real_loader``: encoder folders load from disk, as
    a training from an adapted encoder needs."""
    encoder_dir = settings.app_data_dir / "encoder"
    worker = Worker(
        settings,
        load_encoder=None if real_loader else (lambda _spec: tiny_encoder(encoder_dir)),
        encoder_settings=TINY_RECIPE,
    )
    worker.start()
    return worker


def import_pool(curation: Curation) -> None:
    """30 JSONL abstracts (the first with a title) and a BIO document of 10 sentences."""
    records = [{"id": i, "text": text} for i, text in enumerate(ABSTRACTS[:30])]
    first, second, rest = ABSTRACTS[0].split(" ", 2)
    records[0] = {"id": 0, "title": f"{first} {second}", "text": rest}  # its line joins them
    jsonl = "\n".join(json.dumps(record) for record in records).encode("utf-8")
    bio = format_bio(tiny_corpus()[30:40]).encode("utf-8")
    report = curation.collections.import_files(
        "pool", [("abstracts.jsonl", jsonl), ("more.tsv", bio)], imported_by="ada"
    )
    assert report.added == 31 and not report.problems


def test_collection_text_is_one_line_a_document_or_a_bio_sentence(tmp_path: Path) -> None:
    curation = Curation.open(data_dir=tmp_path / "app", registry_dir=tmp_path / "models")
    import_pool(curation)
    lines = list(curation.collections.text_lines("pool", batch=7))
    assert lines == ABSTRACTS[:40]
    with pytest.raises(CollectionNotFoundError, match="there is no collection 'nope'"):
        list(curation.collections.text_lines("nope"))


def test_adaptation_requests_are_checked_and_share_the_one_job_slot(tmp_path: Path) -> None:
    curation = Curation.open(data_dir=tmp_path / "app", registry_dir=tmp_path / "models")
    with pytest.raises(CollectionNotFoundError):
        curation.request_adaptation("pool")
    import_pool(curation)
    with pytest.raises(JobOptionsError, match="epochs=0 is not a number of passes"):
        curation.request_adaptation("pool", epochs=0)
    queued = curation.request_adaptation("pool", epochs=2, requested_by="ada")
    assert queued.created and queued.job is not None
    assert queued.job.kind == JOB_KIND_ADAPT
    assert queued.job.options == {"collection": "pool", "epochs": 2}
    again = curation.request_adaptation("pool")
    assert not again.created and again.job is not None and again.job.id == queued.job.id
    availability = curation.retrain_availability(override=True)
    assert not availability.allowed
    assert availability.reason.startswith("An adaptation of the encoder is in progress: job 1")
    with pytest.raises(JobOptionsError, match="use start_from=encoder with it"):
        curation.request_retrain(encoder="models/encoders/adapt-job-1")
    assert curation.adapted_encoders() == []  # queued, not finished


def test_the_worker_adapts_the_encoder_and_a_training_starts_from_it(
    settings: WorkerSettings,
) -> None:
    worker = tiny_worker(settings)
    import_pool(worker.curation)
    queued = worker.curation.request_adaptation("pool", epochs=2)
    assert queued.job is not None
    assert worker.run(once=True) == 0
    job = worker.queue.get(queued.job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    folder = adapted_encoder_folder(settings.registry_dir, job.id)
    record = json.loads((folder / "adapt.json").read_text(encoding="utf-8"))
    assert record["sentences"] == 40 and record["epochs"] == 2.0
    assert (folder.parent / f"{folder.name}.txt").read_text(encoding="utf-8").splitlines() == (
        ABSTRACTS[:40]
    )
    assert job.progress.phase == "adapting" and job.progress.step == record["steps"]
    assert job.progress.total_steps == record["steps"]
    assert len(worker.queue.loss_curve(job.id)) == record["steps"]
    assert f"{record['steps']} steps" in (job.message or "") and job.model_version is None
    [adapted] = worker.curation.adapted_encoders()
    assert (adapted.job_id, adapted.collection, adapted.folder) == (job.id, "pool", folder)
    assert adapted.label() == f"adapted on pool (job {job.id}, {record['steps']} steps)"

    trainer = tiny_worker(settings, real_loader=True)
    retrain = trainer.curation.request_retrain(
        start_from="encoder", encoder=str(folder), override=True
    )
    assert retrain.created and retrain.job is not None
    assert trainer.run(once=True) == 0
    trained = trainer.queue.get(retrain.job.id)
    assert trained.status == JobStatus.SUCCEEDED, trained.error
    version = trainer.registry.get(trained.model_version or "")
    assert read_metadata(version.folder).encoder_source == str(folder)


def test_a_cancelled_adaptation_writes_no_encoder(settings: WorkerSettings) -> None:
    worker = tiny_worker(dataclasses.replace(settings, step_delay_s=0.05))
    import_pool(worker.curation)
    queued = worker.curation.request_adaptation("pool", epochs=5)
    assert queued.job is not None
    job_id = queued.job.id
    on_step(worker.queue, lambda step: worker.queue.request_cancel(job_id) if step == 2 else None)
    worker.run(once=True)
    job = worker.queue.get(job_id)
    assert job.status == JobStatus.CANCELLED
    assert job.message == "Cancelled after step 3; no encoder was written."
    assert not (adapted_encoder_folder(settings.registry_dir, job_id) / "adapt.json").exists()
    assert worker.curation.adapted_encoders() == []


def test_an_adaptation_of_an_empty_collection_fails_with_the_fix(
    settings: WorkerSettings,
) -> None:
    worker = tiny_worker(settings)
    report = worker.curation.collections.import_files(
        "empty", [("bad.jsonl", b"\n")], imported_by="ada"
    )
    assert report.added == 0
    queued = worker.curation.request_adaptation("empty")
    assert queued.job is not None
    worker.run(once=True)
    job = worker.queue.get(queued.job.id)
    assert job.status == JobStatus.FAILED
    assert "collection 'empty' has no text to adapt the encoder on" in (job.error or "")
    assert job.message == "Adaptation failed; no encoder was written."
