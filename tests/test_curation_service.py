"""The curation API the app uses: retrain rules, what changed, the first job, the worker."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from curation.database import Database
from curation.jobs import JobOptionsError, JobStatus, TrainJobOptions
from curation.promotion import PromotionDecision
from curation.registry import Registry
from curation.service import FIRST_JOB_REQUESTER, Curation, ReplayDefault
from curation.workers import LOCK_FILE
from tests.worker_helpers import clone_version

WORDS = ["renal", "failure", "."]


@pytest.fixture
def curation(database: Database, tmp_path: Path) -> Curation:
    return Curation(database, Registry(database, tmp_path / "models"), tmp_path / "data")


def save(curation: Curation, index: int = 0, labels: tuple[str, ...] = ("B-Disease",) * 1) -> int:
    return curation.corrections.save(
        words=WORDS,
        labels=[*labels, *["O"] * (len(WORDS) - len(labels))],
        predicted=["O"] * len(WORDS),
        source="text:1",
        sentence_index=index,
        model_version="v1",
        annotator="ada",
    ).correction.id


def serve(curation: Curation, tiny_model_dir: Path, version: str, ids: list[int]) -> None:
    folder = clone_version(tiny_model_dir, curation.registry.versions_dir, version)
    curation.registry.register_folder(
        folder,
        summary={"correction_ids": ids},
        decision=PromotionDecision(True, "test"),
        expected_serving=curation.registry.serving_version(),
    )


def test_retrain_availability_follows_the_corrections(
    curation: Curation, tiny_model_dir: Path
) -> None:
    first = curation.retrain_availability()
    assert first.allowed and "No model is in service" in first.reason

    saved = save(curation)
    serve(curation, tiny_model_dir, "v1", [saved])
    unchanged = curation.retrain_availability()
    assert not unchanged.allowed and "No new corrections" in unchanged.reason
    assert "tick the override" in unchanged.reason  # names the app control, not a parameter
    assert curation.retrain_availability(override=True).allowed

    resaved = save(curation, labels=("B-Disease", "I-Disease"))
    changes = curation.changes_since_serving()
    assert (changes.added, changes.removed, changes.new) == ((resaved,), (saved,), 1)
    assert changes.changed_ids == (saved, resaved)

    curation.corrections.delete(resaved)
    curation.corrections.delete(saved)
    deleted = curation.retrain_availability()
    assert deleted.allowed and deleted.changes is not None
    assert deleted.changes.changed_ids == (saved,) and deleted.new_corrections == 0


def test_request_retrain_refuses_while_a_job_is_active_or_nothing_changed(
    curation: Curation, tiny_model_dir: Path
) -> None:
    serve(curation, tiny_model_dir, "v1", [])
    nothing = curation.request_retrain(requested_by="ada")
    assert not nothing.created and nothing.job is None
    assert "No new corrections" in nothing.message

    queued = curation.request_retrain(requested_by="ada", override=True)
    assert queued.created and queued.job is not None
    assert queued.job.options == {"start_from": "serving", "override": True}
    busy = curation.request_retrain(requested_by="bob", override=True)
    assert not busy.created and busy.job is not None and busy.job.id == queued.job.id
    assert f"job {queued.job.id} (queued at" in busy.message


def test_the_first_job_is_queued_once_and_only_without_any_model(
    curation: Curation, tiny_model_dir: Path
) -> None:
    assert curation.ensure_first_job(adopt_dir=tiny_model_dir) is None  # the worker adopts it
    first = curation.ensure_first_job(adopt_dir=None)
    assert first is not None and first.created and first.job is not None
    assert first.job.requested_by == FIRST_JOB_REQUESTER
    assert first.job.options["start_from"] == "encoder"
    assert curation.ensure_first_job(adopt_dir=None) is None  # one is queued already
    curation.queue.request_cancel(first.job.id)
    serve(curation, tiny_model_dir, "v1", [])
    assert curation.ensure_first_job(adopt_dir=None) is None


def test_a_worker_counts_as_alive_by_lock_roster_or_heartbeat(curation: Curation) -> None:
    assert not curation.worker_alive()
    curation.data_dir.mkdir(parents=True, exist_ok=True)
    lock = curation.data_dir / LOCK_FILE
    lock.write_text(f"{socket.gethostname()}:{os.getpid()}\n")
    assert curation.worker_alive()  # a worker that is still starting
    lock.write_text(f"{socket.gethostname()}:999999999\n")
    assert not curation.worker_alive()  # the lock of a process that has gone

    curation.roster.seen("elsewhere:1", device="GPU")
    assert curation.worker_alive()
    curation.roster.left("elsewhere:1")

    job = curation.queue.enqueue().job
    assert job is not None
    curation.queue.claim("elsewhere:2", device="GPU")
    assert curation.worker_alive()  # busy with a job: only its heartbeat says so
    curation.queue.finish(job.id, JobStatus.CANCELLED, worker="elsewhere:2")
    assert not curation.worker_alive()


def test_start_worker_runs_the_worker_package_with_this_installation_s_folders(
    curation: Curation, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[list[str]] = []

    class FakeProcess:
        pid = 4242

    def fake_popen(command: list[str], **_: object) -> FakeProcess:
        started.append(command)
        return FakeProcess()

    monkeypatch.setattr("curation.service.subprocess.Popen", fake_popen)
    pid = curation.start_worker(adopt_dir=tmp_path / "models" / "default")
    assert pid == 4242
    assert started == [
        [
            sys.executable,
            "-m",
            "worker",
            "--app-data-dir",
            str(curation.data_dir.resolve()),
            "--registry",
            str(curation.registry.root.resolve()),
            "--adopt",
            str((tmp_path / "models" / "default").resolve()),
        ]
    ]
    assert (curation.log_dir / "worker.log").is_file()
    assert "--db" not in started[0]  # the URL (and its password) stays out of `ps`
    curation.roster.seen("elsewhere:1", device="CPU")
    assert curation.start_worker(adopt_dir=None) is None


def test_request_retrain_passes_the_training_data_options_to_the_job(
    curation: Curation, tiny_model_dir: Path
) -> None:
    serve(curation, tiny_model_dir, "v1", [])
    quick = curation.request_retrain(
        requested_by="ada", override=True, retrain_data="replay", replay_sentences=300
    )
    assert quick.created and quick.job is not None
    assert quick.job.options == {
        "start_from": "serving",
        "override": True,
        "retrain_data": "replay",
        "replay_sentences": 300,
    }
    options = TrainJobOptions.from_json(quick.job.options)  # what the worker reads
    assert options.uses_replay(serving=True) and options.replay_sentences == 300
    curation.queue.request_cancel(quick.job.id)

    full = curation.request_retrain(requested_by="ada", override=True, retrain_data="full")
    assert full.created and full.job is not None
    assert full.job.options == {"start_from": "serving", "override": True, "retrain_data": "full"}
    assert not TrainJobOptions.from_json(full.job.options).uses_replay(serving=True)


@pytest.mark.parametrize(
    ("options", "problem", "fix"),
    [
        ({"retrain_data": "quick"}, "retrain_data='quick' is unknown", "use replay or full"),
        ({"replay_sentences": 0}, "replay_sentences=0 is below 1", "give a number of base"),
        (
            {"retrain_data": "full", "replay_sentences": 300},
            "replay_sentences set for a job that replays nothing",
            "leave replay_sentences out",
        ),
        (
            {"start_from": "encoder", "retrain_data": "replay"},
            "retrain_data='replay' continues the model in service",
            "use start_from=serving",
        ),
    ],
)
def test_request_retrain_refuses_options_the_worker_cannot_run_and_queues_nothing(
    curation: Curation,
    tiny_model_dir: Path,
    options: dict[str, Any],
    problem: str,
    fix: str,
) -> None:
    serve(curation, tiny_model_dir, "v1", [])
    with pytest.raises(JobOptionsError) as raised:
        curation.request_retrain(requested_by="ada", override=True, **options)
    message = str(raised.value)
    assert message.startswith(f"job options: {problem}")
    assert f"Fix: {fix}" in message
    assert curation.queue.jobs() == []


def test_replay_default_counts_corrected_sentences_as_the_worker_does(
    curation: Curation,
) -> None:
    assert curation.replay_default() == ReplayDefault(corrections=0, sentences=800)
    save(curation, 0)
    save(curation, 1)  # the same words from another sentence: one sentence to train on
    assert curation.replay_default().corrections == 1
    for index in range(250):
        curation.corrections.save(
            words=["case", str(index), "."],
            labels=["O", "O", "O"],
            predicted=["O", "O", "O"],
            source="text:2",
            sentence_index=index,
            model_version="v1",
            annotator="ada",
        )
    assert curation.replay_default() == ReplayDefault(corrections=251, sentences=1004)
