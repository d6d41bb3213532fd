"""Training: retrain on the curators' corrections, watch it run, choose the model in service.

- **Retrain** queues one job for the training worker (``python -m worker``).
  It is disabled, with the reason, while a job is queued or running, and when no
  correction changed since the version in service was trained (unless overridden).
  Continuing the model in service, it trains either *Quick* (the corrections plus a
  replayed sample of the training set, ``retrain_data="replay"``, the default, with an
  optional sample size) or *Full* (the whole training set again); with no model in
  service, or from the encoder, it always trains on everything and offers no choice.
- **Live progress** (an ``st.fragment`` that reruns itself every few seconds): a
  progress bar with the ETA, the loss curve, the dev F1 per epoch and a Cancel button
  that stops the job after its current training step, leaving the model in service
  as it was. When a job starts or ends, the whole page reruns to show it.
- **History**: the jobs (status, training data, duration, errors) and the model versions (dev and
  test precision, recall and F1, corrections used, F1 over versions, the one in
  service), with one-click Promote and Roll back. The new version is served on the
  next request of every page (see :func:`app.services.serving_model`). A damaged
  version is refused with the reason; one damaged while in service is named in a
  warning caption, and the app keeps serving the version it had loaded.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import render, services, shell, state, training_view
from app.settings import AppSettings
from curation import Curation, Job, JobNotFoundError, JobStatus, ModelVersion, RegistryError
from curation.adaptation import JOB_KIND_ADAPT
from curation.jobs import (
    REPLAY_MIN_SENTENCES,
    REPLAY_PER_CORRECTION,
    RETRAIN_DATA_FULL,
    RETRAIN_DATA_REPLAY,
    START_FROM_ENCODER,
    START_FROM_SERVING,
    JobOptionsError,
)
from tagger.errors import TaggerError
from tagger.model_folder import ModelFolderError

OVERRIDE_KEY = "training_override"
ENCODER_KEY = "training_encoder"
ADAPT_COLLECTION_KEY = "adapt_collection"
ADAPT_EPOCHS_KEY = "adapt_epochs"
MAX_ADAPT_EPOCHS = 20
START_FROM_KEY = "training_start_from"
RETRAIN_DATA_KEY = "training_retrain_data"
REPLAY_SENTENCES_KEY = "training_replay_sentences"
ACTIVE_REFRESH_S = 2.0  # while a job runs: the progress bar moves
IDLE_REFRESH_S = 10.0  # otherwise: notice a job queued by another session or the worker
MAX_PROMOTE_ROWS = 12
START_FROM_LABELS = {
    START_FROM_SERVING: "the model in service",
    START_FROM_ENCODER: "the pretrained encoder (from scratch)",
}
RETRAIN_DATA_LABELS = {
    RETRAIN_DATA_REPLAY: "Quick: corrections + a replayed sample of the training set "
    "(a fraction of Full's time)",
    RETRAIN_DATA_FULL: "Full: the whole training set again (about 20 min on 2 cores)",
}
RETRAIN_DATA_HELP = (
    "Quick trains one pass over every correction and a seeded sample of the training "
    "sentences; Full trains two passes over all of them, with the corrections in. Full "
    "took 1118 s in one measured run on 2 CPU cores (BENCHMARKS.md) and takes longer on "
    "a busy machine."
)
STATUS_ICONS = {
    JobStatus.QUEUED: ":material/schedule:",
    JobStatus.RUNNING: ":material/model_training:",
    JobStatus.SUCCEEDED: ":material/check_circle:",
    JobStatus.FAILED: ":material/error:",
    JobStatus.CANCELLED: ":material/cancel:",
}


def _actor() -> str:
    return state.annotator() or "curator"


# ---------------------------------------------------------------------------
# Callbacks: they run before the page draws, so they report through flashes.
# ---------------------------------------------------------------------------


def click_retrain(
    settings: AppSettings,
    curation: Curation,
    *,
    requested_by: str,
    start_from: str,
    override: bool,
    retrain_data: str | None = None,
    replay_sentences: int | None = None,
    encoder: str | None = None,
) -> tuple[str, str]:
    """Queue a retrain if it may run now; ``(flash kind, message)`` says what happened.

    Checked again at click time: another session may have queued a job since this
    page was drawn, and the queue itself refuses a second active job. Options the
    worker could not run are refused with the message that names the fix.

    Args:
        settings: the app's settings (to start a worker for the job).
        curation: the curation state.
        requested_by: who clicked.
        start_from: ``serving`` or ``encoder``.
        override: retrain although no correction changed.
        retrain_data: ``replay`` (Quick), ``full``, or None (the job's default).
        replay_sentences: base sentences to replay; None: the default rule.
        encoder: an adapted encoder folder to train from (with ``start_from="encoder"``);
            None: the pretrained encoder.
    """
    try:
        result = curation.request_retrain(
            requested_by=requested_by,
            start_from=start_from,
            override=override,
            retrain_data=retrain_data,
            replay_sentences=replay_sentences,
            encoder=encoder,
        )
    except JobOptionsError as error:
        return "error", f"Nothing was queued: {error}"
    if not result.created:
        return "warning", result.message
    services.supervise_training(settings, force=True)  # a worker must pick it up
    return "success", f"{result.message} Progress shows below; the app stays usable meanwhile."


def _retrain(settings: AppSettings, data_choice: bool) -> None:
    """The Retrain button; ``data_choice``: the page showed Quick/Full (see
    :func:`_data_choice`), so the job gets what it says."""
    retrain_data = st.session_state.get(RETRAIN_DATA_KEY, RETRAIN_DATA_REPLAY)
    replay = data_choice and retrain_data == RETRAIN_DATA_REPLAY
    start_from = st.session_state.get(START_FROM_KEY, START_FROM_SERVING)
    encoder = st.session_state.get(ENCODER_KEY) if start_from == START_FROM_ENCODER else None
    kind, message = click_retrain(
        settings,
        services.curation(settings),
        requested_by=_actor(),
        start_from=start_from,
        override=bool(st.session_state.get(OVERRIDE_KEY, False)),
        retrain_data=retrain_data if data_choice else None,
        replay_sentences=st.session_state.get(REPLAY_SENTENCES_KEY) if replay else None,
        encoder=encoder,
    )
    state.flash(kind, render.md(message))


def click_adapt(
    settings: AppSettings,
    curation: Curation,
    *,
    requested_by: str,
    collection: str | None,
    epochs: int,
) -> tuple[str, str]:
    """Queue an adaptation of the encoder to ``collection``'s text; ``(flash kind,
    message)`` says what happened (refused while another job is queued or running)."""
    if not collection:
        return "error", "Nothing was queued: pick the collection whose text to adapt on."
    try:
        result = curation.request_adaptation(collection, epochs=epochs, requested_by=requested_by)
    except TaggerError as error:  # no such collection, or a bad number of passes
        return "error", f"Nothing was queued: {error}"
    if not result.created:
        return "warning", result.message
    services.supervise_training(settings, force=True)
    return "success", (
        f"{result.message} When it ends, pick the adapted encoder under Start from: the "
        "pretrained encoder."
    )


def _adapt(settings: AppSettings) -> None:
    kind, message = click_adapt(
        settings,
        services.curation(settings),
        requested_by=_actor(),
        collection=st.session_state.get(ADAPT_COLLECTION_KEY),
        epochs=int(st.session_state.get(ADAPT_EPOCHS_KEY) or 1),
    )
    state.flash(kind, render.md(message))


def _cancel(stores: Curation, job_id: int) -> None:
    try:
        stores.queue.request_cancel(job_id)
    except JobNotFoundError as error:
        st.toast(str(error))


def _promote(stores: Curation, version: str) -> None:
    try:
        stores.registry.promote(version, actor=_actor())
    except (RegistryError, ModelFolderError) as error:
        state.flash(
            "error", f"Version {render.md(version)} was not promoted: {render.md(str(error))}"
        )
        return
    state.flash("success", f"Version {render.md(version)} is in service from the next request on.")


def _rollback(stores: Curation) -> None:
    try:
        restored = stores.registry.rollback(actor=_actor())
    except (RegistryError, ModelFolderError) as error:
        state.flash("error", f"Nothing was rolled back: {render.md(str(error))}")
        return
    state.flash("success", f"Rolled back: version {render.md(restored.version)} is in service.")


def _start_worker(settings: AppSettings) -> None:
    pid = services.start_worker(settings)
    if pid is None:
        state.flash("info", "A worker is already running.")
    else:
        state.flash("success", f"Started a training worker (process {pid}).")


# ---------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------


def _worker_line(settings: AppSettings, stores: Curation) -> None:
    workers = stores.roster.live()
    active = stores.queue.active_job()
    if workers:
        worker = workers[0]
        st.caption(
            f":material/memory: The worker on **{render.md(worker.host)}** trains on "
            f"**{render.md(worker.device)}**."
        )
        return
    if active is not None and active.status == JobStatus.RUNNING and active.device:
        st.caption(
            f":material/memory: Job {active.id} trains on **{render.md(active.device)}** "
            f"(worker {render.md(active.worker or '?')})."
        )
        return
    if settings.start_worker:
        st.warning(
            "No training worker is running yet; the app starts one (it needs a few seconds "
            "to load TensorFlow). Logs: "
            f"{render.code(str(services.worker_log(settings)))}.",
            icon=":material/hourglass_top:",
        )
        st.button(
            "Start a worker now",
            on_click=_start_worker,
            args=(settings,),
            icon=":material/play_arrow:",
        )
    else:
        st.warning(
            "No training worker is running, and this app does not start one "
            "(TAGGER_START_WORKER=0). Start `python -m worker` on the training "
            "machine, with the same TAGGER_DB_URL and models folder.",
            icon=":material/warning:",
        )


def _retrain_controls(settings: AppSettings, stores: Curation) -> None:
    st.subheader("Retrain")
    override = st.checkbox(
        "Retrain even if no correction changed",
        key=OVERRIDE_KEY,
        help="For example to start again from the encoder, or after changing the base data.",
    )
    availability = stores.retrain_availability(override=override)
    start_from = st.radio(
        "Start from",
        list(START_FROM_LABELS),
        format_func=START_FROM_LABELS.__getitem__,
        key=START_FROM_KEY,
        horizontal=True,
    )
    if start_from == START_FROM_ENCODER:
        _encoder_choice(stores)
    data_choice = stores.registry.serving_version() is not None
    if data_choice and start_from != START_FROM_SERVING:
        data_choice = False
        st.caption("A training from the encoder trains on the whole training set.")
    if data_choice:
        _data_choice(stores)
    left, right = st.columns([1, 4], vertical_alignment="center")
    left.button(
        "Retrain",
        type="primary",
        icon=":material/model_training:",
        disabled=not availability.allowed,
        on_click=_retrain,
        args=(settings, data_choice),
        help=availability.reason,
    )
    note = right.caption if availability.allowed else right.info
    note(render.md(availability.reason))


def _encoder_choice(stores: Curation) -> None:
    """The pretrained encoder, or one an adaptation job made (newest first)."""
    adapted = {str(encoder.folder): encoder for encoder in stores.adapted_encoders()}
    if not adapted:
        return
    choices: list[str | None] = [None, *adapted]
    if st.session_state.get(ENCODER_KEY) not in choices:
        st.session_state.pop(ENCODER_KEY, None)  # its folder is gone
    st.selectbox(
        "Encoder",
        choices,
        format_func=lambda folder: (
            "MiniLM, as pretrained" if folder is None else adapted[folder].label()
        ),
        key=ENCODER_KEY,
        help="An encoder adapted to your collection's text (Adapt the encoder, below).",
    )


def _adapt_controls(settings: AppSettings, stores: Curation) -> None:
    st.subheader("Adapt the encoder to your texts")
    st.caption(
        "Continues the encoder's masked-language-model pretraining on the text of one "
        "collection (no labels needed), so that it reads your abstracts' vocabulary; "
        "then train from it (Start from: the pretrained encoder, Encoder: adapted)."
    )
    names = stores.collections.names()
    if not names:
        st.caption("Import a collection first (Collections page).")
        return
    active = stores.queue.active_job()
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    left.selectbox("Collection", names, key=ADAPT_COLLECTION_KEY)
    right.number_input(
        "Passes over its text",
        min_value=1,
        max_value=MAX_ADAPT_EPOCHS,
        value=1,
        step=1,
        key=ADAPT_EPOCHS_KEY,
    )
    st.button(
        "Adapt the encoder",
        icon=":material/auto_stories:",
        disabled=active is not None,
        on_click=_adapt,
        args=(settings,),
        help=f"Wait for {active.describe()}." if active is not None else None,
    )


def _data_choice(stores: Curation) -> None:
    """Quick (replay) or Full, and Quick's optional sample size: only while Retrain
    would continue a model in service (a first training always uses everything)."""
    choice = st.radio(
        "Train on",
        list(RETRAIN_DATA_LABELS),
        format_func=RETRAIN_DATA_LABELS.__getitem__,
        key=RETRAIN_DATA_KEY,
        help=RETRAIN_DATA_HELP,
    )
    if choice != RETRAIN_DATA_REPLAY:
        return
    default = stores.replay_default()
    st.number_input(
        "Replayed training sentences (optional)",
        min_value=1,
        value=None,
        step=1,
        key=REPLAY_SENTENCES_KEY,
        placeholder=f"default: {default.sentences:,}",
        help=(
            f"Empty: the default rule, max({REPLAY_PER_CORRECTION} x corrections, "
            f"{REPLAY_MIN_SENTENCES}): {default.sentences:,} sentences for the "
            f"{render.plural(default.corrections, 'corrected sentence')} now. Never more "
            "than the training sentences that no correction replaced."
        ),
    )


def _data_line(job: Job) -> None:
    """Which data a job trains on, read from its options."""
    label = training_view.job_data_label(job)
    st.caption(f":material/dataset: Training data: {render.md(label)}.")


def _queued_view(job: Job, stores: Curation) -> None:
    st.info(f"{render.md(job.describe()).capitalize()}.", icon=":material/schedule:")
    _data_line(job)
    st.button("Cancel", key=f"cancel_{job.id}", on_click=_cancel, args=(stores, job.id))


def _running_view(job: Job, stores: Curation) -> None:
    progress = job.progress
    st.progress(progress.fraction, text=render.md(training_view.progress_text(progress)))
    _data_line(job)
    columns = st.columns(4)
    columns[0].metric("Loss", "–" if progress.loss is None else f"{progress.loss:.4f}")
    columns[1].metric("Best dev F1", "–" if progress.dev_f1 is None else f"{progress.dev_f1:.2f}")
    columns[2].metric("ETA", training_view.format_duration(progress.eta_s))
    columns[3].metric("Running for", training_view.format_duration(job.duration_s()))
    curve = training_view.loss_frame(stores.queue.loss_curve(job.id))
    epochs = training_view.epoch_frame(progress)
    left, right = st.columns(2)
    with left:
        st.caption("Training loss per step")
        if curve.empty:
            st.caption("The curve starts with the first training step.")
        else:
            st.line_chart(curve, x="step", y="loss", height=220)
    with right:
        _dev_column(job, epochs)
    if job.cancel_requested:
        st.warning(
            "Cancel requested: the job stops after its current step; the model in service "
            "stays as it is.",
            icon=":material/cancel:",
        )
    else:
        st.button(
            "Cancel",
            key=f"cancel_{job.id}",
            on_click=_cancel,
            args=(stores, job.id),
            icon=":material/cancel:",
            help="Stops after the current training step; nothing is registered.",
        )


def _dev_column(job: Job, epochs: pd.DataFrame) -> None:
    """Dev F1 per epoch; an adaptation job scores none, so it says what its loss is."""
    if job.kind == JOB_KIND_ADAPT:
        collection = job.options.get("collection", "?")
        st.caption(
            f"Adapting the encoder on the text of collection {render.code(collection)}: the "
            "loss is its masked-language-model loss; no dev F1 is scored."
        )
        return
    st.caption("Dev F1 per epoch")
    if epochs.empty:
        st.caption("Scored on the dev sentences at the end of each epoch.")
    else:
        st.line_chart(epochs, x="epoch", y="dev F1", height=160)
        st.dataframe(epochs, hide_index=True, width="stretch")


def _last_outcome(stores: Curation) -> None:
    recent = stores.queue.jobs(limit=1)
    if not recent:
        st.caption("No training job has run yet.")
        return
    job = recent[0]
    text = f"Last job {job.id} {job.status} ({training_view.format_time(job.finished_at)})"
    detail = job.message or training_view.first_line(job.error)
    line = f"{text}: {detail}" if detail else f"{text}."
    show = {JobStatus.FAILED: st.error, JobStatus.SUCCEEDED: st.success}.get(job.status, st.info)
    show(render.md(line), icon=STATUS_ICONS.get(job.status))


def live_progress(settings: AppSettings, job_at_render: int | None) -> None:
    """The part of the page that refreshes itself (see :func:`render_page`)."""
    stores = services.curation(settings)
    job = stores.queue.active_job()
    if (job.id if job is not None else None) != job_at_render:
        st.rerun()  # a job started or ended: the button and the history change too
    if job is None:
        _last_outcome(stores)
    elif job.status == JobStatus.QUEUED:
        _queued_view(job, stores)
    else:
        _running_view(job, stores)


def _promote_rows(stores: Curation, versions: list[ModelVersion]) -> None:
    history = stores.registry.serving_history(limit=1)
    previous = history[0].previous if history else None
    st.button(
        f"Roll back to {previous}" if previous else "Roll back",
        on_click=_rollback,
        args=(stores,),
        disabled=previous is None,
        icon=":material/undo:",
        help="Serve again the version that served before the current one.",
    )
    for version in versions[:MAX_PROMOTE_ROWS]:
        columns = st.columns([3, 1.2, 1.2, 1.4, 1.6], vertical_alignment="center")
        badge = " · **in service**" if version.serving else ""
        columns[0].markdown(f"{render.code(version.version)}{badge}")
        columns[1].caption(f"dev F1 {_f1(version.dev_f1)}")
        columns[2].caption(f"test F1 {_f1(version.test_f1)}")
        columns[3].caption(render.plural(version.corrections_used, "correction"))
        columns[4].button(
            "In service" if version.serving else "Promote",
            key=f"promote_{version.version}",
            on_click=_promote,
            args=(stores, version.version),
            disabled=version.serving,
        )


def _f1(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _versions(stores: Curation) -> None:
    st.subheader("Model versions")
    versions = stores.registry.versions()
    if not versions:
        st.info("No model version is registered yet: the first job will make one.")
        return
    frame = training_view.versions_frame(versions)
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "in service": st.column_config.CheckboxColumn("in service"),
            "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
        },
    )
    history = training_view.f1_history_frame(versions)
    if len(history) > 1:
        st.caption("F1 over versions")
        st.line_chart(history, x="created", y=["dev F1", "test F1"], height=220)
    _promote_rows(stores, versions)
    with st.expander("Who served what, when"):
        events = training_view.serving_history_frame(stores.registry.serving_history())
        st.dataframe(events, hide_index=True, width="stretch")


def _jobs(stores: Curation) -> None:
    st.subheader("Jobs")
    jobs = stores.queue.jobs(limit=50)
    if not jobs:
        st.caption("No job yet.")
        return
    frame = training_view.jobs_frame(jobs, versions=stores.registry.versions())
    st.dataframe(frame, hide_index=True, width="stretch")
    failed = [job for job in jobs if job.error]
    for job in failed[:5]:
        with st.expander(f"Job {job.id} {job.status}: the error"):
            st.code(job.error or "", language=None)
            if job.log_file:
                st.caption(f"Log: {render.code(job.log_file)}")


def _serving_warning(settings: AppSettings) -> None:
    """A damaged version in service: which one, and that the previous one still serves."""
    warning = services.serving_model(settings).warning
    if warning:
        st.caption(f":material/warning: {render.md(warning)}")


def render_page() -> None:
    settings = shell.settings_or_stop()
    st.title("Training")
    shell.show_flashes()
    _serving_warning(settings)
    try:
        stores = services.curation(settings)
        job = stores.queue.active_job()
    except TaggerError as error:  # damaged, busy or unreachable: the message names the fix
        st.error(render.md(str(error)), icon=":material/error:")
        return
    except Exception as error:  # the other pages keep working without the database
        st.error(
            f"The training database cannot be opened ({type(error).__name__}: "
            f"{render.md(str(error))}). Check TAGGER_DB_URL and TAGGER_DATA_DIR.",
            icon=":material/error:",
        )
        return
    _worker_line(settings, stores)
    _retrain_controls(settings, stores)
    st.subheader("Progress")
    refresh = ACTIVE_REFRESH_S if job is not None else IDLE_REFRESH_S
    st.fragment(live_progress, run_every=refresh)(settings, job.id if job else None)
    _versions(stores)
    _adapt_controls(settings, stores)
    _jobs(stores)


if __name__ == "__main__":
    render_page()
