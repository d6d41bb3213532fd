"""A whole retrain cycle through the app: click -> job -> new version -> served.

The real tagger (the tiny model) serves the app; the worker runs in this process with
``once=True`` and ``--max-steps``-sized training, as tests/test_worker.py runs it, so
the cycle takes seconds. The app notices the new version on its next run, without a
restart.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from curation.jobs import JobStatus
from tests.app_fakes import APP_SCRIPT, isolate_app, shown
from tests.tiny import TINY_RECIPE, tiny_corpus, tiny_encoder
from tests.worker_helpers import write_tiny_data
from worker.loop import Worker, WorkerSettings

TEXT = "Patients developed seizures after cocaine."


def captions(elements: object) -> str:
    return " ".join(shown(element.value) for element in elements)  # type: ignore[attr-defined]


@pytest.fixture
def worker(tmp_path: Path, tiny_model_dir: Path) -> Worker:
    """A worker on the app's folders that has adopted the tiny model as the first version."""
    settings = WorkerSettings(
        app_data_dir=tmp_path / "data",
        registry_dir=tmp_path / "models",
        data_dir=write_tiny_data(tmp_path / "bio"),
        max_steps=3,
        epochs=2,
        tolerance=100.0,  # the tiny model's F1 is noise: promote whatever it scores
        adopt_dir=tiny_model_dir,
        heartbeat_s=0.2,
    )
    worker = Worker(
        settings,
        load_encoder=lambda _spec: tiny_encoder(tmp_path / "encoder"),
        encoder_settings=TINY_RECIPE,
    )
    worker.start()
    return worker


def test_click_retrain_then_the_new_version_is_served_on_the_next_run(
    worker: Worker, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_app(tmp_path, monkeypatch)
    monkeypatch.setenv("TAGGER_MODEL_DIR", str(tiny_model_dir))
    st.cache_resource.clear()
    app = AppTest.from_file(str(APP_SCRIPT), default_timeout=180)
    app.session_state["annotator"] = "tester"
    app.run()
    adopted = worker.registry.serving_version()
    assert adopted is not None
    assert f"Model **{adopted}**" in captions(app.sidebar.caption)

    # A curator's correction, saved where the app saves it, then Retrain.
    sentence = tiny_corpus()[0]
    correction = worker.corrections.save(
        words=sentence.words,
        labels=["O"] * len(sentence.words),
        predicted=sentence.labels,
        source="file:train.tsv",
        sentence_index=0,
        model_version=adopted,
        annotator="tester",
    ).correction
    app.switch_page("app/page_training.py").run()
    retrain = next(b for b in app.button if b.label == "Retrain")
    assert not retrain.disabled
    retrain.click().run()
    assert not app.exception
    job = worker.queue.active_job()
    assert job is not None and job.status == JobStatus.QUEUED

    started = time.perf_counter()
    assert worker.run(once=True) == 0
    assert time.perf_counter() - started < 120
    finished = worker.queue.get(job.id)
    assert finished.status == JobStatus.SUCCEEDED, finished.error
    assert finished.correction_ids == (correction.id,)
    new_version = worker.registry.serving_version()
    assert new_version == finished.model_version and new_version != adopted

    app.run()  # the next request: no restart, no cache clearing
    assert not app.exception
    assert f"Model **{new_version}**" in captions(app.sidebar.caption)
    assert f"Last job {job.id} succeeded" in captions(app.success)
    versions = app.dataframe[0].value
    assert list(versions["version"]) == [new_version, adopted]
    assert list(versions["in service"]) == [True, False]
    assert versions["corrections used"].iloc[0] == 1

    app.switch_page("app/page_tag.py").run()
    app.text_area(key="tag_text").input(TEXT)
    app.button[0].click().run()
    assert f"Model **{new_version}** on **CPU" in captions(app.caption)
