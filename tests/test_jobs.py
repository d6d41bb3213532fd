"""The job queue: one active job, atomic claims, heartbeats, cancellation, stale reaping.

Every test that takes ``database`` runs on SQLite and on PostgreSQL (tests/databases.py).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from curation.database import Database, DatabaseError, resolve_database_url
from curation.jobs import (
    DEFAULT_PRELIMINARY_AFTER_STEPS,
    EnqueueResult,
    JobNotFoundError,
    JobOptionsError,
    JobQueue,
    JobSignal,
    JobStatus,
    Progress,
    TrainJobOptions,
)
from curation.workers import WorkerRoster, worker_process_gone


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_default_url_is_a_sqlite_file_in_the_data_folder(tmp_path: Path) -> None:
    url = resolve_database_url(None, tmp_path)
    assert url == f"sqlite:///{tmp_path}/tagger.sqlite3"
    assert resolve_database_url("sqlite:///elsewhere.db", tmp_path) == "sqlite:///elsewhere.db"


def test_unsupported_database_url_names_the_fix() -> None:
    with pytest.raises(DatabaseError, match="postgresql"):
        Database.open("mysql://user@host/db")


def test_second_enqueue_is_refused_with_the_reason(database: Database) -> None:
    queue = JobQueue(database)
    first = queue.enqueue(options={"start_from": "serving"}, requested_by="ada")
    second = queue.enqueue(requested_by="bob")
    assert first.created and first.job.status == JobStatus.QUEUED
    assert not second.created
    assert second.job.id == first.job.id
    assert "already queued or running" in second.message
    assert [job.id for job in queue.jobs()] == [first.job.id]


def test_simultaneous_enqueues_make_exactly_one_job(database: Database) -> None:
    queues = [JobQueue(Database(database.engine, database.url)) for _ in range(6)]
    barrier = threading.Barrier(len(queues))
    results: list[EnqueueResult] = []
    lock = threading.Lock()

    def click(queue: JobQueue, index: int) -> None:
        barrier.wait()
        result = queue.enqueue(requested_by=f"session-{index}")
        with lock:
            results.append(result)

    threads = [threading.Thread(target=click, args=(q, i)) for i, q in enumerate(queues)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(result.created for result in results) == 1
    assert len({result.job.id for result in results}) == 1
    assert len(queues[0].jobs()) == 1


def test_a_new_job_can_be_queued_once_the_last_one_finished(database: Database) -> None:
    queue = JobQueue(database)
    first = queue.enqueue().job
    queue.claim("host:1", device="CPU")
    assert queue.finish(first.id, JobStatus.SUCCEEDED, model_version="v1")
    second = queue.enqueue()
    assert second.created and second.job.id != first.id
    assert queue.get(first.id).model_version == "v1"
    assert queue.get(first.id).finished_at is not None


def test_claim_takes_the_queued_job_once(database: Database) -> None:
    queue = JobQueue(database)
    job = queue.enqueue().job
    claimed = queue.claim("host:1", device="GPU: test")
    assert claimed is not None and claimed.id == job.id
    assert claimed.status == JobStatus.RUNNING
    assert claimed.worker == "host:1" and claimed.device == "GPU: test"
    assert claimed.started_at is not None and claimed.heartbeat_at is not None
    assert queue.claim("host:2", device="CPU") is None


def test_racing_workers_claim_one_job_exactly_once(database: Database) -> None:
    queue = JobQueue(database)
    job = queue.enqueue().job
    queues = [JobQueue(Database(database.engine, database.url)) for _ in range(6)]
    barrier = threading.Barrier(len(queues))
    winners: list[str] = []
    lock = threading.Lock()

    def race(racer: JobQueue, index: int) -> None:
        barrier.wait()
        claimed = racer.claim(f"host:{index}", device="CPU")
        if claimed is not None:
            with lock:
                winners.append(claimed.worker or "")

    threads = [threading.Thread(target=race, args=(q, i)) for i, q in enumerate(queues)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert queue.get(job.id).worker == winners[0]


def test_heartbeat_records_progress_and_the_loss_curve(database: Database) -> None:
    queue = JobQueue(database)
    job = queue.enqueue().job
    queue.claim("host:1", device="CPU")
    progress = Progress(
        phase="training", epoch=1, epochs=2, step=3, total_steps=10, loss=0.5, eta_s=7.0
    )
    for step, loss in [(1, 0.9), (2, 0.7), (3, 0.5)]:
        signal = queue.heartbeat(job.id, "host:1", progress=progress, loss_point=(step, 1, loss))
        assert signal == JobSignal.CONTINUE
    stored = queue.get(job.id).progress
    assert stored == progress
    assert stored.fraction == pytest.approx(0.3)
    assert queue.loss_curve(job.id) == [(1, 1, 0.9), (2, 1, 0.7), (3, 1, 0.5)]


def test_cancelling_a_running_job_is_heard_by_its_next_heartbeat(database: Database) -> None:
    queue = JobQueue(database)
    job = queue.enqueue().job
    queue.claim("host:1", device="CPU")
    assert queue.request_cancel(job.id).cancel_requested
    assert queue.heartbeat(job.id, "host:1") == JobSignal.CANCEL
    assert queue.finish(job.id, JobStatus.CANCELLED, worker="host:1", message="stopped")
    finished = queue.get(job.id)
    assert finished.status == JobStatus.CANCELLED and not finished.is_active
    assert queue.active_job() is None


def test_cancelling_a_queued_job_ends_it_at_once(database: Database) -> None:
    queue = JobQueue(database)
    job = queue.enqueue().job
    assert queue.request_cancel(job.id).status == JobStatus.CANCELLED
    assert queue.claim("host:1", device="CPU") is None
    assert queue.enqueue().created


def test_stale_running_job_is_failed_by_heartbeat_age(database: Database) -> None:
    clock = FakeClock()
    queue = JobQueue(database, clock=clock)
    job = queue.enqueue().job
    queue.claim("otherhost:1", device="CPU")
    clock.advance(30)
    assert queue.reap_stale(stale_after_s=60, is_gone=lambda _: False) == []
    clock.advance(31)
    reaped = queue.reap_stale(stale_after_s=60, is_gone=lambda _: False)
    assert [stale.id for stale in reaped] == [job.id]
    failed = queue.get(job.id)
    assert failed.status == JobStatus.FAILED
    assert "stopped responding" in (failed.error or "")
    assert "unchanged" in (failed.error or "")
    # The old worker, if it was only slow, learns it lost the job and may not finish it.
    assert queue.heartbeat(job.id, "otherhost:1") == JobSignal.LOST
    assert not queue.finish(job.id, JobStatus.SUCCEEDED, worker="otherhost:1")
    assert queue.get(job.id).status == JobStatus.FAILED


def test_job_of_a_dead_worker_process_is_failed_at_once(database: Database) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    worker = f"{socket.gethostname()}:{child.pid}"
    assert worker_process_gone(worker)
    assert not worker_process_gone(f"{socket.gethostname()}:{os.getpid()}")
    assert not worker_process_gone("some-other-host:1")
    queue = JobQueue(database)
    job = queue.enqueue().job
    queue.claim(worker, device="CPU")
    reaped = queue.reap_stale(stale_after_s=3600)
    assert [stale.id for stale in reaped] == [job.id]
    assert "ended during the job" in (queue.get(job.id).error or "")


def test_finish_refuses_a_non_final_status(database: Database) -> None:
    queue = JobQueue(database)
    job = queue.enqueue().job
    with pytest.raises(ValueError, match="final status"):
        queue.finish(job.id, JobStatus.RUNNING)


def test_unknown_job_id_says_so(database: Database) -> None:
    with pytest.raises(JobNotFoundError, match="no job has id 99"):
        JobQueue(database).get(99)


def test_live_workers_are_those_seen_recently(database: Database) -> None:
    clock = FakeClock()
    queue = WorkerRoster(database, clock=clock)
    queue.seen("host:1", device="CPU")
    clock.advance(10)
    queue.seen("host:2", device="GPU: test")
    assert [w.id for w in queue.live(within_s=30)] == ["host:2", "host:1"]
    clock.advance(25)
    assert [w.id for w in queue.live(within_s=30)] == ["host:2"]
    assert queue.live(within_s=30)[0].device == "GPU: test"
    queue.left("host:2")
    assert queue.live(within_s=30) == []


def test_job_options_round_trip_and_refuse_what_no_worker_can_run() -> None:
    options = TrainJobOptions(start_from="encoder", epochs=2)
    assert TrainJobOptions.from_json(options.to_json()) == options
    with pytest.raises(JobOptionsError, match=r"job 7: unknown option\(s\) colour"):
        TrainJobOptions.from_json({"colour": "blue"}, job_id=7)
    with pytest.raises(JobOptionsError, match="use serving or encoder"):
        TrainJobOptions.from_json({"start_from": "yesterday"})


def test_preliminary_options_default_to_a_first_training_only() -> None:
    assert TrainJobOptions().to_json() == {"start_from": "serving", "override": False}
    # The quick first model is the first preliminary; the step point is for jobs without it.
    assert TrainJobOptions().trains_first_model(serving=None)
    assert not TrainJobOptions().trains_first_model(serving="v1")
    assert not TrainJobOptions(preliminary=False).trains_first_model(serving=None)
    assert TrainJobOptions().preliminary_steps(first_model=True) is None
    without = TrainJobOptions.from_json({"first_model": False})
    assert not without.trains_first_model(serving=None)
    assert without.preliminary_steps(first_model=False) == DEFAULT_PRELIMINARY_AFTER_STEPS
    chosen = TrainJobOptions(preliminary_after_steps=5)
    assert TrainJobOptions.from_json(chosen.to_json()).preliminary_steps(first_model=True) == 5
    assert TrainJobOptions().wants_preliminary(serving=None)
    assert not TrainJobOptions().wants_preliminary(serving="v1")
    assert not TrainJobOptions(preliminary=True).wants_preliminary(serving="v1")
    assert not TrainJobOptions(preliminary=False).wants_preliminary(serving=None)
    for bad in (0, -3, 2.5, True, "10"):
        with pytest.raises(JobOptionsError, match="job 4: preliminary_after_steps="):
            TrainJobOptions.from_json({"preliminary_after_steps": bad}, job_id=4)
    for name in ("first_model", "preliminary", "override"):
        with pytest.raises(JobOptionsError, match=f"job 4: {name}='yes' is not true or false"):
            TrainJobOptions.from_json({name: "yes"}, job_id=4)


def test_retrain_data_defaults_to_replay_from_the_model_in_service() -> None:
    assert TrainJobOptions().uses_replay(serving=True)
    assert not TrainJobOptions().uses_replay(serving=False)  # a first training: full data
    assert not TrainJobOptions(start_from="encoder").uses_replay(serving=True)
    assert not TrainJobOptions(retrain_data="full").uses_replay(serving=True)
    chosen = TrainJobOptions(retrain_data="replay", replay_sentences=300, replay_seed=2)
    assert TrainJobOptions.from_json(chosen.to_json()) == chosen
    assert TrainJobOptions.from_json({"retrain_data": "full"}).retrain_data == "full"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retrain_data": "half"}, r"retrain_data='half' is unknown\. Fix: use replay or full"),
        (
            {"retrain_data": "replay", "start_from": "encoder"},
            r"retrain_data=.replay. continues the model in service.*Fix: use start_from=serving",
        ),
        ({"replay_sentences": 0}, r"replay_sentences=0 is below 1\. Fix: give a number"),
        ({"replay_sentences": 2.5}, "replay_sentences=2.5 is not a whole number"),
        ({"replay_sentences": True}, "replay_sentences=True is not a whole number"),
        ({"replay_seed": "x"}, "replay_seed='x' is not a whole number"),
        (
            {"retrain_data": "full", "replay_sentences": 100},
            r"replay_sentences set for a job that replays nothing.*Fix: leave replay_sentences",
        ),
        (
            {"start_from": "encoder", "replay_seed": 3},
            r"replay_seed set for a job that replays nothing: a training from the encoder",
        ),
    ],
)
def test_bad_retrain_data_options_name_the_fix(options: dict[str, object], message: str) -> None:
    with pytest.raises(JobOptionsError, match=f"job 9: {message}"):
        TrainJobOptions.from_json(options, job_id=9)


def test_a_bad_database_url_is_one_clear_line_from_the_worker_cli(tmp_path: Path) -> None:
    command = ["-m", "worker", "--db", "mysql://u@h/db", "--once", "--app-data-dir", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, *command],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("python -m worker: error: database URL 'mysql://u@h/db' uses 'mysql'")
