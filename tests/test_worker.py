"""The training worker on the tiny model: whole retrain cycles, cancel, faults, kill -9."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from curation.corrections import Correction
from curation.jobs import Job, JobSignal, JobStatus
from tagger.bio import Sentence
from tagger.model_folder import read_metadata
from tests.conftest import REPO_ROOT
from tests.tiny import TINY_RECIPE, tiny_corpus, tiny_encoder
from tests.worker_helpers import (
    on_step,
    save_correction,
    tiny_worker_settings,
    worker_cli_args,
)
from worker.job_data import merge_corrections
from worker.loop import Worker, WorkerSettings, main
from worker.progress import JobProgressCallback


@pytest.fixture
def settings(tmp_path: Path, tiny_model_dir: Path) -> WorkerSettings:
    """A worker over a tmp app folder, tiny BIO data, and the tiny model to adopt."""
    return tiny_worker_settings(tmp_path, adopt_dir=tiny_model_dir)


def make_worker(settings: WorkerSettings) -> Worker:
    worker = Worker(
        settings,
        load_encoder=lambda _spec: tiny_encoder(settings.app_data_dir / "encoder"),
        encoder_settings=TINY_RECIPE,
    )
    worker.start()
    return worker


def flip_first_entity(sentence: Sentence) -> Sentence:
    """The same words with the labels a curator might have changed (entity removed)."""
    return Sentence(sentence.words, ["O"] * len(sentence.words))


# ---------------------------------------------------------------------------
# Pure parts
# ---------------------------------------------------------------------------


def test_corrections_replace_base_sentences_with_the_same_words() -> None:
    base = tiny_corpus()[:4]
    stamp = dict(
        predicted=(),
        source="s",
        sentence_index=0,
        model_version="v",
        annotator="a",
        created_at=None,
        current=True,
    )
    fix_old = Correction(id=1, words=base[1].words, labels=("O",) * len(base[1].words), **stamp)
    fix_new = Correction(id=3, words=base[1].words, labels=base[1].labels, **stamp)
    extra = Correction(id=2, words=("fever", "."), labels=("B-Disease", "O"), **stamp)
    merged, counts = merge_corrections(base, [fix_new, extra, fix_old])
    assert [s.words for s in merged] == [*(s.words for s in base), ("fever", ".")]
    assert merged[1].labels == base[1].labels  # the later correction (id 3) wins
    assert merged[0] == base[0]
    assert counts == {
        "base_sentences_replaced": 1,
        "corrections_replacing_base": 1,
        "corrections_added": 1,
    }


def test_progress_callback_stops_within_one_step_when_cancelled() -> None:
    import keras
    import numpy as np

    signals = iter([JobSignal.CONTINUE, JobSignal.CONTINUE, JobSignal.CANCEL])
    reports: list[int] = []

    def report(progress: object, loss_point: tuple[int, int, float] | None) -> JobSignal:
        assert loss_point is not None
        reports.append(loss_point[0])
        return next(signals)

    from worker.progress import JobStopped

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    callback = JobProgressCallback(report)
    with pytest.raises(JobStopped) as stopped:
        model.fit(np.zeros((40, 2)), np.zeros((40, 1)), batch_size=2, epochs=3,
                  callbacks=[callback], verbose=0)  # fmt: skip
    assert reports == [1, 2, 3]
    assert stopped.value.signal == JobSignal.CANCEL and stopped.value.step == 3
    assert model.stop_training
    assert callback.progress.total_steps == 60 and callback.progress.eta_s is not None


# ---------------------------------------------------------------------------
# Whole cycles, in process
# ---------------------------------------------------------------------------


def test_retrain_cycle_trains_registers_and_serves_a_new_version(
    settings: WorkerSettings,
) -> None:
    worker = make_worker(settings)
    adopted = worker.registry.serving_version()
    assert adopted == read_metadata(settings.adopt_dir or Path()).version
    train = tiny_corpus()[:48]
    replacing = save_correction(worker.corrections, flip_first_entity(train[0]))
    added = save_correction(
        worker.corrections,
        Sentence(["fever", "after", "lithium", "."], ["B-Disease", "O", "O", "O"]),
    )

    queued = worker.curation.request_retrain(requested_by="ada")
    assert queued.created
    started = time.perf_counter()
    assert worker.run(once=True) == 0
    elapsed = time.perf_counter() - started

    job = worker.queue.get(queued.job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.correction_ids == (replacing.id, added.id)
    assert job.device and job.log_file and Path(job.log_file).read_text()
    new_version = worker.registry.serving_version()
    assert new_version == job.model_version and new_version != adopted
    version = worker.registry.get(new_version)
    assert version.parent == adopted
    assert version.correction_ids == (replacing.id, added.id)
    assert version.summary["base_sentences"] == 48
    assert version.summary["train_sentences"] == 49
    assert version.summary["corrections_replacing_base"] == 1
    assert version.dev_f1 is not None and version.test_f1 is None  # replay: dev only
    promotion = version.summary["promotion"]
    assert promotion["compared_with"] == adopted and promotion["promote"]
    assert promotion["dev_f1"] == version.dev_f1 and promotion["serving_dev_f1"] is not None
    assert "in service" in (job.message or "")
    # The graph the app serves the new version with is ready before the app switches.
    from tagger.runtimes import default_runtime, onnx_graph_path

    if default_runtime() == "onnx":
        assert onnx_graph_path(new_version, "int8").is_file()
    # Progress as the Training page reads it: steps, loss per step, dev F1 per epoch.
    assert job.progress.total_steps == 6 and job.progress.step == 6
    assert [e["epoch"] for e in job.progress.epoch_history] == [1, 2]
    assert [step for step, _, _ in worker.queue.loss_curve(job.id)] == [1, 2, 3, 4, 5, 6]
    # The folder is complete and self-describing.
    written = read_metadata(version.folder)
    assert written.data["training_data"]["correction_ids"] == [replacing.id, added.id]
    assert elapsed < 120


def test_worse_version_stays_a_candidate(settings: WorkerSettings) -> None:
    worker = make_worker(dataclasses.replace(settings, tolerance=-100.0))
    serving = worker.registry.serving_version()
    queued = worker.curation.request_retrain(override=True)
    worker.run(once=True)
    job = worker.queue.get(queued.job.id)
    assert job.status == JobStatus.SUCCEEDED
    assert worker.registry.serving_version() == serving
    candidate = worker.registry.get(job.model_version or "")
    assert candidate.decision == "candidate" and "kept as a candidate" in candidate.note
    assert "kept as a candidate" in (job.message or "")


def test_cancel_stops_within_one_step_and_leaves_the_serving_model(
    settings: WorkerSettings,
) -> None:
    worker = make_worker(dataclasses.replace(settings, max_steps=20))
    serving = worker.registry.serving_version()
    queued = worker.curation.request_retrain(override=True)
    on_step(
        worker.queue, lambda step: worker.queue.request_cancel(queued.job.id) if step == 2 else None
    )
    worker.run(once=True)
    job = worker.queue.get(queued.job.id)
    assert job.status == JobStatus.CANCELLED
    assert [step for step, _, _ in worker.queue.loss_curve(job.id)] == [1, 2, 3]
    assert worker.registry.serving_version() == serving
    assert [v.version for v in worker.registry.versions()] == [serving]
    assert "unchanged" in (job.message or "")


def test_corrections_saved_during_a_job_go_into_the_next_job(settings: WorkerSettings) -> None:
    worker = make_worker(settings)
    train = tiny_corpus()[:48]
    before = save_correction(worker.corrections, flip_first_entity(train[0]), 0)
    during: list[Correction] = []

    def save_during(step: int) -> None:
        if step == 1:
            during.append(save_correction(worker.corrections, flip_first_entity(train[1]), 1))

    on_step(worker.queue, save_during)
    first = worker.curation.request_retrain().job
    worker.run(once=True)
    assert worker.queue.get(first.id).correction_ids == (before.id,)
    assert worker.registry.serving() is not None
    assert worker.registry.serving().correction_ids == (before.id,)  # type: ignore[union-attr]

    second = worker.curation.request_retrain()
    assert second.created  # the correction saved during the first job counts as new
    worker.run(once=True)
    assert worker.queue.get(second.job.id).correction_ids == (before.id, during[0].id)
    assert worker.corrections.count() == 2


def test_first_start_without_a_model_queues_and_runs_the_first_training(
    settings: WorkerSettings,
) -> None:
    worker = make_worker(dataclasses.replace(settings, adopt_dir=None))
    job = worker.queue.active_job()
    assert job is not None and job.options["start_from"] == "encoder"
    assert worker.curation.ensure_first_job(adopt_dir=None) is None  # not twice
    worker.run(once=True)
    finished = worker.queue.get(job.id)
    assert finished.status == JobStatus.SUCCEEDED, finished.error
    version = worker.registry.serving()
    assert version is not None and version.parent is None
    assert version.summary["started_from"] == "encoder:tiny-random-bert"
    # A first training served a preliminary version from the end of epoch 1 (the default
    # step point lies beyond this 6-step job); the final version replaced it.
    assert not version.preliminary and version.preliminary_note() is None
    (preliminary,) = [v for v in worker.registry.versions() if v.preliminary]
    assert preliminary.job_id == job.id and not preliminary.serving
    assert (
        preliminary.preliminary_point["epoch_end"] and preliminary.preliminary_point["epoch"] == 1
    )
    assert version.summary["promotion"]["replaces_preliminary"] == preliminary.version


def test_failed_job_records_the_error_and_keeps_the_serving_model(
    settings: WorkerSettings, tmp_path: Path
) -> None:
    worker = make_worker(dataclasses.replace(settings, data_dir=tmp_path / "missing"))
    serving = worker.registry.serving_version()
    queued = worker.curation.request_retrain(override=True)
    assert worker.run(once=True) == 1
    job = worker.queue.get(queued.job.id)
    assert job.status == JobStatus.FAILED
    assert "DataError" in (job.error or "") and "missing" in (job.error or "")
    assert worker.registry.serving_version() == serving


def test_a_serving_model_that_cannot_be_scored_fails_the_job_and_promotes_nothing(
    settings: WorkerSettings,
) -> None:
    worker = make_worker(settings)
    serving = worker.registry.serving()
    assert serving is not None
    (serving.folder / "model.weights.h5").write_bytes(b"damaged")
    # From the encoder: the job needs the serving model only to compare with it.
    queued = worker.curation.request_retrain(override=True, start_from="encoder")
    assert worker.run(once=True) == 1
    job = worker.queue.get(queued.job.id)  # type: ignore[union-attr]
    assert job.status == JobStatus.FAILED
    assert "BaselineError" in (job.error or "")
    assert f"the version in service, {serving.version}, cannot be scored" in (job.error or "")
    assert "nothing was trained or promoted" in (job.error or "")
    assert worker.registry.serving_version() == serving.version
    assert [v.version for v in worker.registry.versions()] == [serving.version]


def test_cli_once_runs_the_queued_job(settings: WorkerSettings) -> None:
    worker = make_worker(settings)
    serving = worker.registry.serving_version()
    queued = worker.curation.request_retrain(override=True)
    assert main([*worker_cli_args(settings), "--once", "--max-steps", "2", "--epochs", "1"]) == 0
    job = worker.queue.get(queued.job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.progress.total_steps == 2
    assert worker.registry.serving_version() not in (None, serving)


def test_second_worker_on_the_same_folder_exits_at_once(
    settings: WorkerSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    from curation.workers import worker_lock

    with worker_lock(settings.app_data_dir):
        assert main([*worker_cli_args(settings), "--once"]) == 0
    assert "another worker holds" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# kill -9 mid-epoch, with real processes
# ---------------------------------------------------------------------------


def wait_for(condition: Callable[[], object], timeout_s: float, what: str) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def start_worker_process(settings: WorkerSettings, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    log = open(settings.app_data_dir / "worker-test.log", "ab")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "worker", *worker_cli_args(settings), *extra],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@pytest.mark.slow
def test_worker_killed_mid_epoch_recovers_on_restart(settings: WorkerSettings) -> None:
    settings = dataclasses.replace(settings, max_steps=40, epochs=2)
    settings.app_data_dir.mkdir(parents=True)
    curation = settings.open_curation()
    queue, registry, store = curation.queue, curation.registry, curation.corrections
    correction = save_correction(store, flip_first_entity(tiny_corpus()[0]))
    job = curation.request_retrain().job
    assert job is not None

    victim = start_worker_process(settings, "--step-delay-s", "0.5", "--heartbeat-s", "0.5")
    try:
        wait_for(lambda: queue.get(job.id).progress.step >= 2, 180, "two training steps")
        serving = registry.serving_version()
        assert serving is not None  # adopted by the worker on start
        os.kill(victim.pid, signal.SIGKILL)
    finally:
        victim.kill()
        victim.wait()
    killed: Job = queue.get(job.id)
    assert killed.status == JobStatus.RUNNING  # nobody has noticed yet
    assert 2 <= killed.progress.step < killed.progress.total_steps

    restarted = start_worker_process(settings, "--max-steps", "2", "--poll-s", "0.2")
    try:
        failed = wait_for(
            lambda: queue.get(job.id).status == JobStatus.FAILED, 180, "the stale job to fail"
        )
        assert failed
        assert "ended during the job" in (queue.get(job.id).error or "")
        # Serving model and corrections intact.
        assert registry.serving_version() == serving
        assert [v.version for v in registry.versions()] == [serving]
        assert [c.id for c in store.current()] == [correction.id]
        assert store.get(correction.id) == correction
        # A new retrain succeeds on the restarted worker.
        retry = curation.request_retrain(override=True)
        assert retry.created and retry.job is not None
        wait_for(lambda: not queue.get(retry.job.id).is_active, 180, "the retry to finish")
        finished = queue.get(retry.job.id)
        assert finished.status == JobStatus.SUCCEEDED, finished.error
        assert registry.serving_version() == finished.model_version != serving
        assert finished.correction_ids == (correction.id,)
    finally:
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=60) == 0
    assert curation.roster.live() == []  # it said goodbye


# ---------------------------------------------------------------------------
# Several devices: tf.distribute.MirroredStrategy
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("gpus", [0, 1])
def test_no_strategy_below_two_gpus(monkeypatch: pytest.MonkeyPatch, gpus: int) -> None:
    from worker import devices

    monkeypatch.setattr(devices, "visible_gpus", lambda: gpus)
    with devices.training_scope() as description:
        assert description == "single device"


MIRRORED_JOB_SCRIPT = """
import functools, sys
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from pathlib import Path
from curation.jobs import JobStatus
from worker import devices, training_job
from worker.loop import Worker, WorkerSettings

# Two logical CPUs stand in for two GPUs: the same strategy code path.
training_job.training_scope = functools.partial(devices.training_scope, ["/cpu:0", "/cpu:1"])
app, models, data, tiny = (Path(arg) for arg in sys.argv[1:5])
worker = Worker(WorkerSettings(app_data_dir=app, registry_dir=models, data_dir=data,
                               max_steps=2, epochs=1, tolerance=100.0, adopt_dir=tiny))
worker.start()
job = worker.curation.request_retrain(override=True).job
worker.run(once=True)
job = worker.queue.get(job.id)
assert job.status == JobStatus.SUCCEEDED, job.error
print("served", worker.registry.serving_version() == job.model_version)
print(Path(job.log_file).read_text())
"""


@pytest.mark.slow
def test_a_job_trains_under_mirrored_strategy_over_two_devices(
    settings: WorkerSettings, tiny_model_dir: Path
) -> None:
    args = [settings.app_data_dir, settings.registry_dir, settings.data_dir, tiny_model_dir]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_JOB_SCRIPT, *map(str, args)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "served True" in result.stdout
    assert "MirroredStrategy over 2 devices" in result.stdout
