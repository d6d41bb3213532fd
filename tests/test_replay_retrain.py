"""Replay and full retrains, the reused baseline and the phase timings, on the tiny model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from curation.corrections import Correction
from curation.jobs import Job, JobStatus, TrainJobOptions
from tagger.bio import Sentence
from tests.tiny import TINY_RECIPE, tiny_corpus, tiny_encoder
from tests.worker_helpers import save_correction, write_tiny_data
from worker import training_job
from worker.job_data import (
    DEV_SHA_KEY,
    REPLAY_MIN_SENTENCES,
    ReplayPlan,
    merge_corrections,
    replay_sample,
    sentences_sha256,
    training_data,
)
from worker.loop import Worker, WorkerSettings

ADDED = Sentence(["fever", "after", "lithium", "."], ["B-Disease", "O", "O", "O"])


def stamp(id_: int, sentence: Sentence) -> Correction:
    return Correction(
        id=id_,
        words=sentence.words,
        labels=sentence.labels,
        predicted=(),
        source="s",
        sentence_index=id_,
        model_version="v",
        annotator="a",
        created_at=None,
        current=True,
    )


def unlabelled(sentence: Sentence) -> Sentence:
    """The same words with the disease mention removed: what a curator might save."""
    return Sentence(sentence.words, ["O"] * len(sentence.words))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return write_tiny_data(tmp_path / "bio")


@pytest.fixture
def corrections() -> list[Correction]:
    base = tiny_corpus()[:48]
    return [stamp(1, unlabelled(base[3])), stamp(2, ADDED), stamp(3, unlabelled(base[20]))]


# ---------------------------------------------------------------------------
# The data
# ---------------------------------------------------------------------------


def test_replay_trains_on_every_correction_and_exactly_the_sample(
    data_dir: Path, corrections: list[Correction]
) -> None:
    base = tiny_corpus()[:48]
    data = training_data(data_dir, corrections, "serving:v", replay=ReplayPlan(5, 10))
    train = data.train
    assert len(train) == 3 + 10
    # Every correction, with its labels; the base sentences it corrects are not there too.
    for correction in corrections:
        assert [s.labels for s in train if s.words == correction.words] == [correction.labels]
    replayed = [s for s in train if s.words not in {c.words for c in corrections}]
    gold = {(sentence.words, sentence.labels) for sentence in base}
    assert len(replayed) == 10 and all((s.words, s.labels) in gold for s in replayed)
    # Base order, the added correction last (as in the full data).
    words = [sentence.words for sentence in base]
    positions = [words.index(sentence.words) for sentence in train[:-1]]
    assert positions == sorted(positions) and train[-1].words == ADDED.words
    summary = data.summary
    assert summary["retrain_data"] == "replay" and summary["train_sentences"] == 13
    assert summary["replay"] == {
        "seed": 5,
        "base_sentences_replayed": 10,
        "requested": 10,
        "rule": summary["replay"]["rule"],
        "run_sentences": 8,
        "base_sentences_available": 46,
        "correction_sentences": 3,
    }
    assert summary["base_sentences_replaced"] == 2 and summary["corrections_added"] == 1


def test_the_sample_is_a_function_of_its_seed(
    data_dir: Path, corrections: list[Correction]
) -> None:
    def sample(seed: int) -> list[Sentence]:
        return training_data(data_dir, corrections, "s", replay=ReplayPlan(seed, 12)).train

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)
    # Drawn in runs of consecutive base sentences: 8 from a fresh base is one whole run.
    indexes = replay_sample([True] * 48, 8, seed=3)
    assert indexes == list(range(indexes[0], indexes[0] + 8)) and indexes[0] % 8 == 0


def full_base(data_dir: Path) -> list[Sentence]:
    from training.data import load_split

    return load_split("train", data_dir)


def test_default_size_and_full_data(data_dir: Path, corrections: list[Correction]) -> None:
    # The default rule wants REPLAY_MIN_SENTENCES here, more than the 46 left: all of them.
    assert REPLAY_MIN_SENTENCES > 46
    replay = training_data(data_dir, corrections, "s", replay=ReplayPlan(13))
    assert replay.summary["replay"]["base_sentences_replayed"] == 46
    assert replay.summary["replay"]["requested"] is None
    full = training_data(data_dir, corrections, "s")
    assert full.train == merge_corrections(full_base(data_dir), corrections)[0] == replay.train
    assert full.summary["retrain_data"] == "full" and "replay" not in full.summary
    # Both are scored on the same held-out dev sentences, whose hash they record.
    assert full.dev == replay.dev and full.summary[DEV_SHA_KEY] == sentences_sha256(full.dev)


# ---------------------------------------------------------------------------
# Through the worker
# ---------------------------------------------------------------------------


@pytest.fixture
def worker(tmp_path: Path, data_dir: Path, tiny_model_dir: Path) -> Worker:
    settings = WorkerSettings(
        app_data_dir=tmp_path / "app",
        registry_dir=tmp_path / "models",
        data_dir=data_dir,
        max_steps=3,
        epochs=1,
        tolerance=100.0,  # the tiny model's F1 is noise: always promote
        adopt_dir=tiny_model_dir,
        heartbeat_s=0.2,
    )
    started = Worker(
        settings,
        load_encoder=lambda _spec: tiny_encoder(settings.app_data_dir / "encoder"),
        encoder_settings=TINY_RECIPE,
    )
    started.start()
    return started


@pytest.fixture
def trained_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[Sentence]]]:
    """The train sentences each job handed to ``fine_tune``."""
    seen: list[list[Sentence]] = []
    real = training_job.fine_tune

    def recording(encoder: Any, train: list[Sentence], *args: Any, **kwargs: Any) -> Any:
        seen.append(list(train))
        return real(encoder, train, *args, **kwargs)

    monkeypatch.setattr(training_job, "fine_tune", recording)
    yield seen


def run_job(worker: Worker, **options: Any) -> Job:
    queued = worker.queue.enqueue(options=TrainJobOptions(**options).to_json())
    assert queued.created and queued.job is not None
    worker.run(once=True)
    return worker.queue.get(queued.job.id)


def test_a_replay_retrain_trains_on_corrections_and_the_sample_and_says_so(
    worker: Worker, data_dir: Path, trained_on: list[list[Sentence]]
) -> None:
    base = tiny_corpus()[:48]
    saved = [
        save_correction(worker.corrections, unlabelled(base[3]), 3),
        save_correction(worker.corrections, ADDED, 0),
    ]
    job = run_job(worker, replay_sentences=10, replay_seed=4)
    assert job.status == JobStatus.SUCCEEDED, job.error
    (train,) = trained_on
    expected = training_data(data_dir, saved, "s", replay=ReplayPlan(4, 10)).train
    assert train == expected and len(train) == 12
    version = worker.registry.get(job.model_version or "")
    summary = version.summary
    assert summary["retrain_data"] == "replay" and summary["train_sentences"] == 12
    assert summary["replay"]["seed"] == 4 and summary["replay"]["base_sentences_replayed"] == 10
    assert summary["replay"]["correction_sentences"] == 2
    # A replay retrain does not score test: its minutes count, and promotion reads dev.
    assert version.test_f1 is None and "test" not in version.metrics
    assert version.dev_f1 is not None
    # Phase timings: each phase that ran, and they fit inside the job's own time.
    phases = summary["phase_seconds"]
    expected_phases = {"prepare", "baseline", "train", "dev_eval", "save"}
    assert expected_phases <= set(phases) <= expected_phases | {"onnx"}
    assert all(seconds >= 0 for seconds in phases.values()) and phases["train"] > 0
    assert sum(phases.values()) <= summary["job_seconds"] + 0.1 * len(phases)
    log = Path(job.log_file or "").read_text(encoding="utf-8")
    assert "replay: 2 correction sentences + 10 of 47 base sentences (seed 4)" in log
    assert "s in all before registering: prepare" in log
    assert "test not scored (a replay retrain; job option score_test=true scores it)" in log


def test_a_replay_retrain_scores_test_when_asked(worker: Worker) -> None:
    save_correction(worker.corrections, ADDED, 0)
    job = run_job(worker, replay_sentences=10, score_test=True)
    assert job.status == JobStatus.SUCCEEDED, job.error
    version = worker.registry.get(job.model_version or "")
    assert version.test_f1 is not None and "test_eval" in version.summary["phase_seconds"]


def test_a_full_retrain_trains_on_everything(
    worker: Worker, data_dir: Path, trained_on: list[list[Sentence]]
) -> None:
    base = tiny_corpus()[:48]
    saved = [
        save_correction(worker.corrections, unlabelled(base[3]), 3),
        save_correction(worker.corrections, ADDED, 0),
    ]
    job = run_job(worker, retrain_data="full")
    assert job.status == JobStatus.SUCCEEDED, job.error
    (train,) = trained_on
    assert train == merge_corrections(full_base(data_dir), saved)[0] and len(train) == 49
    version = worker.registry.get(job.model_version or "")
    assert version.summary["retrain_data"] == "full" and "replay" not in version.summary
    assert version.test_f1 is not None  # a full retrain scores test


def test_the_serving_dev_f1_is_reused_only_for_the_same_dev_sentences(
    worker: Worker,
) -> None:
    from tagger.model_folder import load_model_folder
    from tagger.tagger import Tagger
    from training.evaluate import evaluate_tagger

    # The adopted model records no dev sentences: its baseline is measured.
    first = run_job(worker, override=True)
    assert first.status == JobStatus.SUCCEEDED, first.error
    version = worker.registry.get(first.model_version or "")
    assert version.summary["promotion"]["serving_dev_f1_from"] == "measured"
    assert version.serving
    # The next retrain is scored on the same dev sentences: the registry's figure, which
    # is what measuring the version again gives.
    second = run_job(worker, override=True)
    promotion = worker.registry.get(second.model_version or "").summary["promotion"]
    assert promotion["serving_dev_f1_from"] == "registry"
    assert promotion["compared_with"] == version.version
    dev = training_data(worker.settings.data_dir, [], "s").dev
    measured = evaluate_tagger(Tagger(load_model_folder(version.folder)), dev)["f1"]
    assert promotion["serving_dev_f1"] == version.dev_f1 == measured
    # A correction of a dev sentence holds it out: other dev sentences, measured again.
    save_correction(worker.corrections, unlabelled(dev[0]), 0)
    third = run_job(worker)
    promotion = worker.registry.get(third.model_version or "").summary["promotion"]
    assert promotion["serving_dev_f1_from"] == "measured"


def test_a_bad_retrain_option_fails_the_job_with_the_fix(worker: Worker) -> None:
    serving = worker.registry.serving_version()
    queued = worker.queue.enqueue(options={"retrain_data": "half", "override": True})
    assert queued.job is not None
    assert worker.run(once=True) == 1
    job = worker.queue.get(queued.job.id)
    assert job.status == JobStatus.FAILED
    assert "retrain_data='half' is unknown" in (job.error or "")
    assert "use replay or full" in (job.error or "")
    assert worker.registry.serving_version() == serving


def test_a_training_from_the_encoder_uses_the_full_data(
    worker: Worker, data_dir: Path, trained_on: list[list[Sentence]]
) -> None:
    base = tiny_corpus()[:48]
    saved = [save_correction(worker.corrections, unlabelled(base[3]), 3)]
    job = run_job(worker, start_from="encoder")
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert trained_on == [merge_corrections(full_base(data_dir), saved)[0]]
    summary = worker.registry.get(job.model_version or "").summary
    assert summary["retrain_data"] == "full" and summary["started_from"].startswith("encoder:")
