"""AppTest: the Training page (Retrain, live progress, cancel, versions, promote, roll back).

The app runs on the fake tagger with a real job queue and registry in ``tmp_path``;
no worker process is ever started (``services.start_worker`` is a recorder). Model
versions are copies of the tiny model folder, so that promotion's completeness check
passes; the fake tagger reads their ``model.json`` version, which shows the hot swap.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Button

from app import page_training, services, training_view
from app.settings import AppSettings
from curation import Curation
from curation.jobs import JobStatus, Progress
from curation.promotion import PromotionDecision
from tests.app_fakes import APP_SCRIPT, WorkerStarts, make_app, shown
from tests.worker_helpers import clone_version

TRAINING_PAGE = "app/page_training.py"
PROMOTE = PromotionDecision(True, "test: promote")
KEEP = PromotionDecision(False, "test: keep as candidate")
RUNNING = Progress(
    phase="training",
    epoch=2,
    epochs=3,
    step=30,
    total_steps=60,
    loss=0.4321,
    dev_f1=61.5,
    eta_s=95.0,
    epoch_history=({"epoch": 1, "loss": 0.8, "dev_f1": 61.5, "seconds": 40.0},),
)


class Stores:
    """The curation state as a worker (or another app server) sees it."""

    def __init__(self, tmp_path: Path) -> None:
        self.curation = Curation.open(data_dir=tmp_path / "data", registry_dir=tmp_path / "models")
        self.database = self.curation.database
        self.queue = self.curation.queue
        self.registry = self.curation.registry
        self.corrections = self.curation.corrections

    def add_version(
        self,
        tiny_model_dir: Path,
        version: str,
        *,
        decision: PromotionDecision = PROMOTE,
        dev_f1: float = 50.0,
        test_f1: float = 48.0,
        correction_ids: tuple[int, ...] = (),
    ) -> None:
        folder = clone_version(
            tiny_model_dir, self.registry.versions_dir, version, dev_f1=dev_f1, test_f1=test_f1
        )
        self.registry.register_folder(
            folder,
            summary={"correction_ids": list(correction_ids)},
            decision=decision,
            expected_serving=self.registry.serving_version(),
        )

    def save_correction(self, index: int = 0) -> int:
        return self.corrections.save(
            words=("Fever", "."),
            labels=("B-Disease", "O"),
            predicted=("O", "O"),
            source="file:cases.tsv",
            sentence_index=index,
            model_version="v1",
            annotator="ada",
        ).correction.id


@pytest.fixture
def stores(tmp_path: Path) -> Stores:
    return Stores(tmp_path)


@pytest.fixture
def served(stores: Stores, tiny_model_dir: Path) -> Stores:
    """v1 in service, trained on no correction."""
    stores.add_version(tiny_model_dir, "v1")
    return stores


def open_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    app = make_app(tmp_path, monkeypatch).run()
    return app.switch_page(TRAINING_PAGE).run()


def button(app: AppTest, label: str) -> Button:
    return next(b for b in app.button if b.label == label)


def retrain(app: AppTest) -> Button:
    return button(app, "Retrain")


def texts(elements: object) -> str:
    return " ".join(shown(element.value) for element in elements)  # type: ignore[attr-defined]


def sidebar_model(app: AppTest) -> str:
    return texts(app.sidebar.caption)


# ---------------------------------------------------------------------------
# The Retrain button
# ---------------------------------------------------------------------------


def test_retrain_is_disabled_without_new_corrections_until_overridden(
    served: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_training(tmp_path, monkeypatch)
    assert not app.exception
    assert retrain(app).disabled
    assert "No new corrections since version v1 was trained" in texts(app.info)
    assert "tick the override" in texts(app.info)

    app.checkbox(key=page_training.OVERRIDE_KEY).check().run()
    assert not retrain(app).disabled
    assert "no correction changed since version v1" in texts(app.caption)
    retrain(app).click().run()
    assert not app.exception
    jobs = served.queue.jobs()
    assert len(jobs) == 1
    assert jobs[0].status == JobStatus.QUEUED
    assert jobs[0].options == {"start_from": "serving", "override": True, "retrain_data": "replay"}
    assert jobs[0].requested_by == "tester"
    assert "Queued job 1" in texts(app.success)
    assert retrain(app).disabled  # the job now blocks a second one


def test_a_new_correction_enables_retrain_and_a_click_queues_one_job(
    served: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served.save_correction()
    app = open_training(tmp_path, monkeypatch)
    assert not retrain(app).disabled
    assert "1 correction(s) changed since version v1" in texts(app.caption)
    app.radio(key=page_training.START_FROM_KEY).set_value("encoder").run()
    retrain(app).click().run()
    assert [(job.status, job.options["start_from"]) for job in served.queue.jobs()] == [
        (JobStatus.QUEUED, "encoder")
    ]


def number_inputs(app: AppTest) -> list[str | None]:
    return [element.key for element in app.number_input]


def test_quick_is_the_default_and_queues_a_replay_job_with_the_default_size(
    served: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served.save_correction(0)
    served.save_correction(1)
    app = open_training(tmp_path, monkeypatch)
    assert not app.exception
    choice = app.radio(key=page_training.RETRAIN_DATA_KEY)
    assert choice.value == "replay"
    assert choice.options == list(page_training.RETRAIN_DATA_LABELS.values())
    size = app.number_input(key=page_training.REPLAY_SENTENCES_KEY)
    assert size.value is None  # empty: the default rule
    # Two corrections of the same words train as one sentence (worker.job_data counts by
    # words): max(4 x 1, 800) = 800.
    assert "800 sentences for the 1 corrected sentence now" in size.help
    assert size.proto.placeholder == "default: 800"
    retrain(app).click().run()
    assert not app.exception
    [job] = served.queue.jobs()
    assert job.options == {"start_from": "serving", "override": False, "retrain_data": "replay"}
    assert "Queued job 1" in texts(app.success)
    assert "Training data: replay (default size)" in texts(app.caption)


def test_quick_with_a_number_of_replayed_sentences_passes_it_to_the_job(
    served: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served.save_correction()
    app = open_training(tmp_path, monkeypatch)
    app.number_input(key=page_training.REPLAY_SENTENCES_KEY).set_value(250).run()
    retrain(app).click().run()
    assert not app.exception
    [job] = served.queue.jobs()
    assert job.options["retrain_data"] == "replay"
    assert job.options["replay_sentences"] == 250
    assert type(job.options["replay_sentences"]) is int
    assert "Training data: replay (250 base sentences)" in texts(app.caption)


def test_full_queues_a_full_job_and_drops_quick_s_sample_size(
    served: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served.save_correction()
    app = open_training(tmp_path, monkeypatch)
    app.number_input(key=page_training.REPLAY_SENTENCES_KEY).set_value(250).run()
    app.radio(key=page_training.RETRAIN_DATA_KEY).set_value("full").run()
    assert page_training.REPLAY_SENTENCES_KEY not in number_inputs(app)  # Quick's only
    retrain(app).click().run()
    assert not app.exception
    [job] = served.queue.jobs()
    # A full job with replay_sentences would be refused: the hidden size is not sent.
    assert job.options == {"start_from": "serving", "override": False, "retrain_data": "full"}
    assert "Training data: full" in texts(app.caption)


def test_the_data_choice_is_hidden_with_no_model_in_service_or_from_the_encoder(
    stores: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_training(tmp_path, monkeypatch)
    assert not app.exception
    assert stores.registry.serving_version() is None
    assert page_training.RETRAIN_DATA_KEY not in [radio.key for radio in app.radio]
    assert page_training.REPLAY_SENTENCES_KEY not in number_inputs(app)
    assert not retrain(app).disabled  # "No model is in service yet: train the first one."
    retrain(app).click().run()
    [job] = stores.queue.jobs()
    assert job.options == {"start_from": "serving", "override": False}  # everything


def test_the_data_choice_is_hidden_for_a_training_from_the_encoder(
    served: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served.save_correction()
    app = open_training(tmp_path, monkeypatch)
    app.radio(key=page_training.RETRAIN_DATA_KEY).set_value("replay").run()
    app.radio(key=page_training.START_FROM_KEY).set_value("encoder").run()
    assert page_training.RETRAIN_DATA_KEY not in [radio.key for radio in app.radio]
    assert "from the encoder trains on the whole training set" in texts(app.caption)
    retrain(app).click().run()
    assert not app.exception
    [job] = served.queue.jobs()
    assert job.options == {"start_from": "encoder", "override": False}


def test_an_option_the_worker_cannot_run_is_refused_with_the_fix(
    served: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served.save_correction()
    make_app(tmp_path, monkeypatch)  # the app's environment, without running it
    settings = AppSettings.from_env()
    kind, message = page_training.click_retrain(
        settings,
        served.curation,
        requested_by="ada",
        start_from="serving",
        override=False,
        retrain_data="full",
        replay_sentences=300,
    )
    assert kind == "error"
    assert message.startswith("Nothing was queued: job options: replay_sentences set for a job")
    assert "Fix: leave replay_sentences out" in message
    assert served.queue.jobs() == []


def test_retrain_is_disabled_with_the_reason_while_a_job_runs(
    served: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served.save_correction()
    job = served.queue.enqueue(requested_by="bo").job
    app = open_training(tmp_path, monkeypatch)
    assert retrain(app).disabled
    assert f"A retrain is in progress: job {job.id} (queued" in texts(app.info)
    app.checkbox(key=page_training.OVERRIDE_KEY).check().run()
    assert retrain(app).disabled  # the override never allows a second job


# ---------------------------------------------------------------------------
# Live progress and cancel
# ---------------------------------------------------------------------------


def start_running_job(stores: Stores) -> int:
    job = stores.queue.enqueue(requested_by="bo").job
    stores.queue.claim("gpu-box:4242", device="GPU: NVIDIA H100 80GB HBM3")
    for step, loss in ((1, 0.9), (2, 0.7), (30, 0.4321)):
        stores.queue.heartbeat(job.id, "gpu-box:4242", progress=RUNNING, loss_point=(step, 1, loss))
    return job.id


def test_a_running_job_shows_progress_eta_loss_and_dev_f1(
    served: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_running_job(served)
    app = open_training(tmp_path, monkeypatch)
    assert not app.exception
    [bar] = app.get("progress")
    assert bar.proto.value == 50
    label = shown(bar.proto.text)
    assert "epoch 2/3" in label and "step 30/60" in label and "ETA 1 min 35 s" in label
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Loss"] == "0.4321" and metrics["Best dev F1"] == "61.50"
    assert metrics["ETA"] == "1 min 35 s"
    assert len(app.get("vega_lite_chart")) == 2  # the loss curve and dev F1 per epoch
    epochs = app.dataframe[0].value
    assert list(epochs["epoch"]) == [1] and list(epochs["dev F1"]) == [61.5]
    assert "trains on **GPU: NVIDIA H100 80GB HBM3**" in texts(app.caption)
    assert "Training: job 1 running · 50%" in sidebar_model(app)


def test_cancel_sets_the_flag_and_the_page_says_so(
    served: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = start_running_job(served)
    app = open_training(tmp_path, monkeypatch)
    app.button(key=f"cancel_{job_id}").click().run()
    assert not app.exception
    assert served.queue.get(job_id).cancel_requested
    assert served.queue.get(job_id).status == JobStatus.RUNNING  # it stops after its step
    assert "Cancel requested" in texts(app.warning)
    assert not [b for b in app.button if b.key == f"cancel_{job_id}"]


def test_cancelling_a_queued_job_ends_it(
    served: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = served.queue.enqueue(requested_by="bo").job
    app = open_training(tmp_path, monkeypatch)
    app.button(key=f"cancel_{job.id}").click().run()
    assert served.queue.get(job.id).status == JobStatus.CANCELLED
    assert served.queue.active_job() is None


# ---------------------------------------------------------------------------
# Versions, promote, roll back, hot swap
# ---------------------------------------------------------------------------


def test_versions_table_chart_and_the_one_in_service(
    served: Stores, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = served.save_correction(0)
    second = served.save_correction(1)
    served.add_version(
        tiny_model_dir, "v2", decision=KEEP, dev_f1=40.0, test_f1=39.0, correction_ids=(first,)
    )
    served.add_version(tiny_model_dir, "v3", dev_f1=55.0, correction_ids=(first, second))
    app = open_training(tmp_path, monkeypatch)
    assert not app.exception
    frame = app.dataframe[0].value
    assert list(frame["version"]) == ["v3", "v2", "v1"]
    assert list(frame["in service"]) == [True, False, False]
    assert list(frame["dev F1"]) == [55.0, 40.0, 50.0]
    assert list(frame["test F1"]) == [48.0, 39.0, 48.0]
    assert list(frame["corrections used"]) == [2, 1, 0]
    assert list(frame["decision"]) == ["promoted", "candidate", "promoted"]
    assert {"dev P", "dev R", "test P", "test R"} <= set(frame.columns)
    assert len(app.get("vega_lite_chart")) == 1  # F1 over versions
    assert app.button(key="promote_v3").disabled and app.button(key="promote_v3").label == (
        "In service"
    )
    assert "Model **v3**" in sidebar_model(app)


def test_promote_and_roll_back_change_the_served_version_at_once(
    served: Stores, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served.add_version(tiny_model_dir, "v2", decision=KEEP)
    app = open_training(tmp_path, monkeypatch)
    assert "Model **v1**" in sidebar_model(app)
    assert button(app, "Roll back").disabled  # v1 is the first version ever served

    app.button(key="promote_v2").click().run()
    assert not app.exception
    assert served.registry.serving_version() == "v2"
    assert "Version v2 is in service" in texts(app.success)
    assert "Model **v2**" in sidebar_model(app)  # served on this very request
    assert served.registry.serving_history()[0].actor == "tester"

    button(app, "Roll back to v1").click().run()
    assert served.registry.serving_version() == "v1"
    assert "Model **v1**" in sidebar_model(app)

    # Another page, same app: the Tag page tags with the version in service.
    app.switch_page("app/page_tag.py").run()
    app.text_area(key="tag_text").input("The patient had fever.")
    app.button[0].click().run()
    assert "Model **v1**" in texts(app.caption)


def test_a_version_promoted_elsewhere_is_served_on_the_next_request(
    served: Stores, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path, monkeypatch).run()
    assert "Model **v1**" in sidebar_model(app)
    served.add_version(tiny_model_dir, "v2")  # the worker registers and promotes v2
    app.run()
    assert "Model **v2**" in sidebar_model(app)


def test_the_correct_page_counts_corrections_the_serving_version_did_not_use(
    served: Stores, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    used = served.save_correction(0)
    served.add_version(tiny_model_dir, "v2", correction_ids=(used,))
    served.save_correction(1)
    served.save_correction(2)
    app = make_app(tmp_path, monkeypatch).run()
    app.switch_page("app/page_correct.py").run()
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Corrections saved"] == "3"
    assert metrics["Since the model in service was trained"] == "2"


# ---------------------------------------------------------------------------
# Job history
# ---------------------------------------------------------------------------


def test_jobs_show_status_duration_and_errors(
    served: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = served.queue.enqueue(requested_by="ada").job
    served.queue.claim("host:1", device="CPU")
    served.queue.record_inputs(job.id, correction_ids=[], log_file="data/logs/job-1.log")
    served.queue.finish(
        job.id,
        JobStatus.FAILED,
        worker="host:1",
        error="DataError: data/train.tsv line 3: unknown label 'X'\n\nTraceback ...",
        message="Training failed; the model in service is unchanged.",
    )
    app = open_training(tmp_path, monkeypatch)
    assert not app.exception
    jobs = app.dataframe[-1].value
    assert list(jobs["status"]) == ["failed"]
    assert list(jobs["requested by"]) == ["ada"]
    assert jobs["duration"][0].endswith(" s")
    assert list(jobs["error"]) == ["DataError: data/train.tsv line 3: unknown label 'X'"]
    assert "Last job 1 failed" in texts(app.error)
    assert any("Traceback" in code.value for code in app.code)


# ---------------------------------------------------------------------------
# First start, the worker, two sessions
# ---------------------------------------------------------------------------


def test_without_any_model_the_first_job_is_queued_and_the_app_stays_usable(
    stores: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path, monkeypatch, with_model=False).run()
    assert not app.exception
    [job] = stores.queue.jobs()
    assert job.options["start_from"] == "encoder" and job.status == JobStatus.QUEUED
    assert "the first model is being trained: job 1" in texts(app.warning)
    assert app.button[0].disabled  # Tag needs a model
    for page in ("app/page_inspect.py", "app/page_corrections.py", "app/page_correct.py"):
        app.switch_page(page).run()
        assert not app.exception, page
    app.switch_page(TRAINING_PAGE).run()
    assert retrain(app).disabled
    assert f"A retrain is in progress: job {job.id}" in texts(app.info)
    app.run()
    assert len(stores.queue.jobs()) == 1  # queued once, not on every run


def test_the_app_starts_a_worker_through_the_injected_starter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path, monkeypatch).run()
    starts = services.start_worker
    assert isinstance(starts, WorkerStarts)
    assert starts.calls == [tmp_path / "data"]
    app.run()
    assert len(starts.calls) == 1  # checked again only every SUPERVISE_EVERY_S


def test_tagger_start_worker_0_never_starts_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path, monkeypatch, env={"TAGGER_START_WORKER": "0"}).run()
    app.switch_page(TRAINING_PAGE).run()
    assert services.start_worker.calls == []  # type: ignore[attr-defined]
    assert "TAGGER_START_WORKER=0" in texts(app.warning)


def test_no_worker_is_started_while_a_job_has_a_live_worker(
    served: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_running_job(served)  # heartbeats just now, from a worker on another machine
    make_app(tmp_path, monkeypatch).run()
    assert services.start_worker.calls == []  # type: ignore[attr-defined]


def test_two_sessions_clicking_retrain_queue_one_job(
    served: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served.save_correction()
    first = open_training(tmp_path, monkeypatch)
    second = AppTest.from_file(str(APP_SCRIPT), default_timeout=180)
    second.session_state["annotator"] = "bo"
    second.run()
    second.switch_page(TRAINING_PAGE).run()
    assert not retrain(first).disabled and not retrain(second).disabled  # both saw it free
    retrain(first).click().run()
    retrain(second).click().run()
    assert len(served.queue.jobs()) == 1
    assert served.queue.jobs()[0].requested_by == "tester"
    assert "Nothing was queued: job 1 (queued at" in texts(second.warning)


def test_simultaneous_clicks_from_many_sessions_make_one_job(
    served: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The click handler itself, in threads released together (AppTest runs one at a time)."""
    served.save_correction()
    make_app(tmp_path, monkeypatch)  # the app's environment, without running it
    settings = AppSettings.from_env()
    barrier = threading.Barrier(6)
    outcomes: list[tuple[str, str]] = []
    lock = threading.Lock()

    def click(index: int) -> None:
        curation = Curation.open(data_dir=settings.data_dir, registry_dir=settings.registry_dir)
        barrier.wait()
        outcome = page_training.click_retrain(
            settings,
            curation,
            requested_by=f"session-{index}",
            start_from="serving",
            override=False,
        )
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=click, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(kind for kind, _ in outcomes) == ["success"] + ["warning"] * 5
    assert len(served.queue.jobs()) == 1


# ---------------------------------------------------------------------------
# Pure helpers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "–"), (0.4, "0 s"), (59.6, "1 min 00 s"), (125, "2 min 05 s"), (3725, "1 h 02 min")],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert training_view.format_duration(seconds) == text


def test_progress_text_names_what_is_known() -> None:
    assert training_view.progress_text(Progress()) == "preparing"
    assert training_view.progress_text(RUNNING) == (
        "training · epoch 2/3 · step 30/60 · loss 0.4321 · ETA 1 min 35 s"
    )


def test_the_job_list_says_which_data_each_job_trained_on(
    served: Stores, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served.save_correction()
    curation = served.curation
    for asked in ({"retrain_data": "full"}, {"retrain_data": "replay", "replay_sentences": 300}):
        job = curation.request_retrain(requested_by="ada", **asked).job
        assert job is not None
        served.queue.request_cancel(job.id)
    ran = curation.request_retrain(requested_by="ada").job  # the job's default
    assert ran is not None
    served.queue.claim("host:1", device="CPU")
    folder = clone_version(tiny_model_dir, served.registry.versions_dir, "v2")
    served.registry.register_folder(
        folder,
        summary={"retrain_data": "replay", "replay": {"base_sentences_replayed": 812}},
        decision=PROMOTE,
        expected_serving="v1",
        job_id=ran.id,
    )
    served.queue.finish(ran.id, JobStatus.SUCCEEDED, worker="host:1", model_version="v2")
    encoder = curation.request_retrain(requested_by="ada", start_from="encoder", override=True)
    assert encoder.job is not None
    app = open_training(tmp_path, monkeypatch)
    assert not app.exception
    jobs = app.dataframe[-1].value
    assert list(jobs["job"]) == [4, 3, 2, 1]
    assert list(jobs["training data"]) == [
        "full",  # from the encoder
        "replay (812 base sentences)",  # what the registered version says it replayed
        "replay (300 base sentences)",
        "full",
    ]
    assert "Training data: full." in texts(app.caption)  # the queued job 4


def test_training_data_label_reads_the_options_then_what_the_version_did() -> None:
    label = training_view.training_data_label
    assert label({"start_from": "serving", "retrain_data": "full"}) == "full"
    assert label({"start_from": "encoder"}) == "full"
    assert label({"retrain_data": "replay", "replay_sentences": 2000}) == (
        "replay (2,000 base sentences)"
    )
    assert label({"start_from": "serving"}) == "replay if a model is in service, else full"
    # The version's summary says what the run did; one without retrain_data predates
    # replay, when every retrain was full.
    assert label({}, {"retrain_data": "full"}) == "full"
    assert label({}, {"correction_ids": []}) == "full"
    assert label({"retrain_data": "replay"}, {"retrain_data": "replay"}) == (
        "replay (default size)"
    )


def test_jobs_frame_durations_run_to_now_while_running(served: Stores) -> None:
    job = served.queue.enqueue().job
    running = served.queue.claim("host:1", device="CPU")
    assert running is not None and running.started_at is not None
    later = running.started_at + timedelta(seconds=75)
    frame = training_view.jobs_frame([served.queue.get(job.id)], now=later)
    assert list(frame["duration"]) == ["1 min 15 s"]


# ---------------------------------------------------------------------------
# A damaged version is never served
# ---------------------------------------------------------------------------


def flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for index in range(len(data) - 64, len(data) - 32):
        data[index] ^= 0xFF
    path.write_bytes(bytes(data))


def test_promoting_a_damaged_version_is_refused_and_the_model_stays(
    served: Stores, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served.add_version(tiny_model_dir, "v2", decision=KEEP)
    flip_bytes(served.registry.folder_of("v2") / "model.weights.h5")
    app = open_training(tmp_path, monkeypatch)
    app.button(key="promote_v2").click().run()
    assert not app.exception
    error = texts(app.error)
    assert "Version v2 was not promoted" in error and "version v2 is damaged" in error
    assert "retrain, or promote another version" in error
    assert served.registry.serving_version() == "v1"
    assert "Model **v1**" in sidebar_model(app)


def test_a_version_damaged_in_service_leaves_the_previous_one_serving(
    served: Stores, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_training(tmp_path, monkeypatch)
    assert "Model **v1**" in sidebar_model(app)
    served.add_version(tiny_model_dir, "v2")  # the worker promotes v2...
    flip_bytes(served.registry.folder_of("v2") / "model.weights.h5")  # ...its copy is bad
    app.run()
    assert not app.exception
    assert served.registry.serving_version() == "v2"
    assert "Model **v1**" in sidebar_model(app)  # still a model in service: the one loaded
    warning = texts(app.caption)
    assert "Version v2 is in service but damaged" in warning
    assert "still serves version v1, loaded before" in warning
    assert "Version v2 is in service but damaged" in texts(app.sidebar.warning)  # every page

    served.registry.promote("v1")  # the curator's fix: the warning goes
    app.run()
    assert "damaged" not in texts(app.caption)
    assert "damaged" not in texts(app.sidebar.warning)
    assert "Model **v1**" in sidebar_model(app)
