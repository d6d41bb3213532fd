"""AppTest: adapting the encoder to a collection from the Training page, then training
from the adapted encoder (the fake tagger; no worker process is started)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app import page_training
from curation.adaptation import JOB_KIND_ADAPT, adapted_encoder_folder
from curation.jobs import JobStatus, Progress
from tests.app_fakes import shown
from tests.test_app_training import Stores, button, open_training, texts


@pytest.fixture
def stores(tmp_path: Path, tiny_model_dir: Path) -> Stores:
    stores = Stores(tmp_path)
    stores.add_version(tiny_model_dir, "v1")
    stores.curation.collections.import_files(
        "pool", [("a.txt", b"Cocaine induced seizures.\nLithium toxicity.\n")], imported_by="ada"
    )
    return stores


def finish_adaptation(stores: Stores, steps: int = 12) -> Path:
    """What a worker leaves after an adaptation job: the job succeeded, the folder done."""
    queued = stores.curation.request_adaptation("pool")
    assert queued.job is not None
    job = stores.queue.claim("host:1", device="CPU")
    assert job is not None and job.id == queued.job.id
    folder = adapted_encoder_folder(stores.registry.root, job.id)
    folder.mkdir(parents=True)
    (folder / "adapt.json").write_text(json.dumps({"steps": steps, "final_mlm_loss": 2.5}))
    stores.queue.finish(job.id, JobStatus.SUCCEEDED, worker="host:1", message="Encoder adapted")
    return folder


def test_the_adapt_button_queues_an_adaptation_of_the_chosen_collection(
    stores: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_training(tmp_path, monkeypatch)
    assert not app.exception
    assert app.selectbox(key=page_training.ADAPT_COLLECTION_KEY).value == "pool"
    app.number_input(key=page_training.ADAPT_EPOCHS_KEY).set_value(3).run()
    button(app, "Adapt the encoder").click().run()
    assert not app.exception
    [job] = stores.queue.jobs()
    assert (job.kind, job.status, job.options) == (
        JOB_KIND_ADAPT,
        JobStatus.QUEUED,
        {"collection": "pool", "epochs": 3},
    )
    assert job.requested_by == "tester"
    assert "Queued job 1. When it ends, pick the adapted encoder" in texts(app.success)
    assert button(app, "Adapt the encoder").disabled  # one job at a time
    assert button(app, "Retrain").disabled
    assert "An adaptation of the encoder is in progress" in texts(app.info)


def test_a_running_adaptation_shows_its_loss_and_no_dev_f1(
    stores: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued = stores.curation.request_adaptation("pool")
    assert queued.job is not None
    stores.queue.claim("host:1", device="CPU")
    progress = Progress(phase="adapting", step=4, total_steps=10, loss=3.2, eta_s=30)
    stores.queue.heartbeat(queued.job.id, "host:1", progress=progress, loss_point=(4, 1, 3.2))
    app = open_training(tmp_path, monkeypatch)
    assert not app.exception
    [bar] = app.get("progress")
    assert "adapting · step 4/10 · loss 3.2000 · ETA 30 s" in shown(bar.proto.text)
    captions = texts(app.caption)
    assert "Training data: the text of collection pool (adaptation)" in captions
    assert "no dev F1 is scored" in captions and "Dev F1 per epoch" not in captions


def test_a_finished_adaptation_is_offered_as_the_encoder_to_train_from(
    stores: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = finish_adaptation(stores)
    app = open_training(tmp_path, monkeypatch)
    assert page_training.ENCODER_KEY not in [box.key for box in app.selectbox]  # from serving
    app.radio(key=page_training.START_FROM_KEY).set_value("encoder").run()
    app.checkbox(key=page_training.OVERRIDE_KEY).check().run()
    chooser = app.selectbox(key=page_training.ENCODER_KEY)
    assert chooser.options == ["MiniLM, as pretrained", "adapted on pool (job 1, 12 steps)"]
    chooser.set_value(str(folder)).run()
    button(app, "Retrain").click().run()
    assert not app.exception
    job = stores.queue.jobs()[0]
    assert job.options == {"start_from": "encoder", "encoder": str(folder), "override": True}


def test_without_collections_the_page_says_to_import_one(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Stores(tmp_path).add_version(tiny_model_dir, "v1")
    app = open_training(tmp_path, monkeypatch)
    assert "Import a collection first (Collections page)." in texts(app.caption)
    assert "Adapt the encoder" not in [b.label for b in app.button]
