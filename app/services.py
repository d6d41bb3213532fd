"""The long-lived objects behind the pages: the model in service, the stores, the worker.

- **The model in service** is the registry's serving version, read on every request
  (one indexed row), so a version promoted by the worker or by a curator is served on
  the next request without a restart. Each version is loaded once and shared by every
  session (``st.cache_resource`` keyed on its folder and ``model.json``). While the
  registry is empty, ``TAGGER_MODEL_DIR`` is served instead. Tests replace
  :func:`build_tagger` (``monkeypatch.setattr(services, "build_tagger", ...)``).
- **The stores**: corrections (:func:`corrections_store`) and the training job queue
  and model registry (:func:`training_stores`), all in the database of
  ``TAGGER_DB_URL`` or, by default, SQLite files in the data folder.
- **The worker**: :func:`supervise_training` (called by the shell on every run, acting
  at most every :data:`SUPERVISE_EVERY_S`) queues the first training job when no model
  exists at all and starts ``python -m training.worker`` when none is alive, through
  :func:`start_worker`, which tests replace so that no real process is spawned.

Example (inside a page)::

    status = services.serving_model(settings)
    if status.tagger is None:
        st.warning(status.problem)
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from app.settings import AppSettings
from training.corrections import CorrectionsStore
from training.db import Database
from training.jobs import STALE_AFTER_S, JobQueue, JobStatus, worker_process_gone
from training.registry import ModelVersion, PromotionPolicy, Registry
from training.worker import LOCK_FILE, WorkerSettings, ensure_initial_job, ensure_worker_running

if TYPE_CHECKING:
    from tagger import Tagger

MODEL_METADATA_FILE = "model.json"
logger = logging.getLogger(__name__)
SUPERVISE_EVERY_S = 15.0
TRAINING_PAGE_HINT = "see the Training page"


def build_tagger(model_dir: Path) -> Tagger:
    """Load the model folder; the one place the app constructs a tagger."""
    # Imported here: TensorFlow takes seconds to import, and the app must start (and
    # browse corrections) even where no model exists yet.
    from tagger import Tagger

    return Tagger.load(model_dir)


@dataclass(frozen=True)
class ModelStatus:
    """The model in service, or why there is none (``problem`` says what to do).

    ``registered`` is its registry entry (metrics, corrections used); None when the
    app serves ``TAGGER_MODEL_DIR`` because the registry is empty.
    """

    tagger: Tagger | None
    problem: str | None = None
    registered: ModelVersion | None = None

    @property
    def version(self) -> str:
        return self.tagger.version if self.tagger is not None else "none"


@dataclass(frozen=True)
class TrainingStores:
    """The job queue and the model registry, opened once per app process."""

    queue: JobQueue
    registry: Registry


def model_fingerprint(model_dir: Path) -> str | None:
    """A digest of the folder's ``model.json``: a new version means a new digest."""
    metadata = model_dir / MODEL_METADATA_FILE
    try:
        return hashlib.sha256(metadata.read_bytes()).hexdigest()
    except OSError:
        return None


@st.cache_resource(show_spinner="Loading the model…", max_entries=3)
def _load_tagger(model_dir: str, fingerprint: str) -> Tagger:
    # `fingerprint` is only a cache key: the same folder with a new model.json is a
    # new entry, and max_entries lets old versions go (a rollback reloads one).
    del fingerprint
    return build_tagger(Path(model_dir))


# ---------------------------------------------------------------------------
# Stores
# ---------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def _open_store(data_dir: str, db_url: str | None) -> CorrectionsStore:
    return CorrectionsStore.connect(db_url, data_dir=data_dir)


def corrections_store(settings: AppSettings) -> CorrectionsStore:
    """The corrections store (``TAGGER_DB_URL`` or the data folder), shared by all sessions."""
    return _open_store(str(settings.data_dir.resolve()), settings.db_url)


@st.cache_resource(show_spinner=False)
def _open_training(data_dir: str, registry_dir: str, db_url: str | None) -> TrainingStores:
    database = Database.open(db_url, data_dir=data_dir)
    return TrainingStores(
        JobQueue(database), Registry(database, Path(registry_dir), PromotionPolicy.from_env())
    )


def training_stores(settings: AppSettings) -> TrainingStores:
    """The job queue and registry the worker uses too; raises if the database cannot open."""
    return _open_training(
        str(settings.data_dir.resolve()), str(settings.registry_dir.resolve()), settings.db_url
    )


def worker_settings(settings: AppSettings) -> WorkerSettings:
    """The settings a worker started by this app runs with: the app's folders and database."""
    return WorkerSettings(
        # None: the worker reads TAGGER_DB_URL from the environment it inherits, as the
        # app did; passing the URL as --db would show its password in `ps`.
        db_url=None,
        app_data_dir=settings.data_dir.resolve(),
        registry_dir=settings.registry_dir.resolve(),
        adopt_dir=settings.model_dir.resolve(),
    )


# ---------------------------------------------------------------------------
# The model in service
# ---------------------------------------------------------------------------


def _load(folder: Path, registered: ModelVersion | None) -> ModelStatus:
    fingerprint = model_fingerprint(folder)
    if fingerprint is None:
        what = f"version {registered.version} is in service but" if registered else "no model:"
        return ModelStatus(
            None,
            f"{what} {folder}/{MODEL_METADATA_FILE} does not exist. Point TAGGER_REGISTRY_DIR "
            "at the models folder the worker writes (on several machines: a shared folder), "
            f"or promote another version ({TRAINING_PAGE_HINT}).",
            registered,
        )
    try:
        return ModelStatus(_load_tagger(str(folder.resolve()), fingerprint), None, registered)
    except Exception as error:  # any load failure must leave the app usable
        return ModelStatus(
            None,
            f"The model in {folder} could not be loaded ({type(error).__name__}: {error}). "
            f"Promote or retrain another version ({TRAINING_PAGE_HINT}), or point "
            "TAGGER_MODEL_DIR at another model folder.",
            registered,
        )


def _no_model_yet(settings: AppSettings, stores: TrainingStores | None) -> ModelStatus:
    active = stores.queue.active_job() if stores is not None else None
    if active is not None:
        doing = f"the first model is being trained: {active.describe()} ({TRAINING_PAGE_HINT})"
    else:
        doing = (
            f"{settings.model_dir}/{MODEL_METADATA_FILE} does not exist. Train one with "
            f"Retrain ({TRAINING_PAGE_HINT}) or `make model`, or point TAGGER_MODEL_DIR at "
            "a model folder"
        )
    return ModelStatus(
        None,
        f"No model is available yet: {doing}. Browsing and uploading stay available meanwhile.",
    )


def serving_model(settings: AppSettings) -> ModelStatus:
    """The registry's version in service (else ``settings.model_dir``), loaded on first use.

    Asked on every request, so a promotion is served on the next one.
    """
    try:
        stores = training_stores(settings)
        registered = stores.registry.serving()
    except Exception as error:  # a database that is down must not take the Tag page with it
        logger.warning("the model registry cannot be read; serving %s", settings.model_dir)
        fallback = _load(settings.model_dir, None)
        if fallback.tagger is None:
            return ModelStatus(
                None,
                f"The model registry cannot be read ({type(error).__name__}: {error}); "
                "check TAGGER_DB_URL and TAGGER_DATA_DIR.",
            )
        return fallback
    if registered is not None:
        return _load(stores.registry.folder_of(registered.version), registered)
    if model_fingerprint(settings.model_dir) is None:
        return _no_model_yet(settings, stores)
    return _load(settings.model_dir, None)


def model_trained_at(metadata: dict[str, Any]) -> datetime | None:
    """When the model was saved (``created`` in ``model.json``), as an aware datetime."""
    value = metadata.get("created")
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class NewCorrections:
    """How many corrections the model in service has not trained on, and how we know."""

    count: int
    explanation: str


def corrections_since_serving(store: CorrectionsStore, status: ModelStatus) -> NewCorrections:
    """Current corrections the serving version did not train on (new or re-saved).

    A registered version records the correction ids it used, which is exact; a model
    folder outside the registry only has its save time.
    """
    if status.registered is not None:
        used = set(status.registered.correction_ids)
        new = sum(1 for correction in store.current() if correction.id not in used)
        return NewCorrections(
            new,
            f"Current corrections that version {status.registered.version} did not train on "
            f"(it used {len(used)}).",
        )
    trained_at = model_trained_at(status.tagger.metadata) if status.tagger is not None else None
    if trained_at is not None:
        return NewCorrections(
            store.count(since=trained_at),
            f"Saved after {trained_at:%Y-%m-%d %H:%M} UTC, when {status.version} was saved.",
        )
    return NewCorrections(
        store.count(model_version=status.version), f"Saved while {status.version} was in service."
    )


# ---------------------------------------------------------------------------
# The worker
# ---------------------------------------------------------------------------


def start_worker(settings: AppSettings, queue: JobQueue) -> int | None:
    """Spawn ``python -m training.worker`` unless one is alive; the new pid or None.

    The one place the app starts a process: tests replace it.
    """
    return ensure_worker_running(worker_settings(settings), queue=queue)


def worker_holds_lock(data_dir: Path) -> bool:
    """True when a live worker on this machine holds ``<data_dir>/worker.lock``.

    A worker takes the lock before it imports TensorFlow and reports to the database,
    so this sees one that is still starting (e.g. the one ``make run`` launched). The
    file names ``host:pid``; reading it, rather than trying the lock, can never make
    a starting worker think another one holds it.
    """
    try:
        owner = (data_dir / LOCK_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return not worker_process_gone(owner)


def job_has_live_worker(queue: JobQueue, *, within_s: float = STALE_AFTER_S) -> bool:
    """A running job with a recent heartbeat: its worker is alive (wherever it runs).

    A worker busy with a long job does not refresh its ``workers`` row, so
    ``live_workers()`` alone would miss it.
    """
    job = queue.active_job()
    if job is None or job.status != JobStatus.RUNNING or job.heartbeat_at is None:
        return False
    return job.heartbeat_at >= queue.clock() - timedelta(seconds=within_s)


def no_model_anywhere(settings: AppSettings, registry: Registry) -> bool:
    """Nothing to serve and nothing for the worker to adopt: the first job must train one."""
    return model_fingerprint(settings.model_dir) is None and not registry.versions()


@dataclass
class _Supervision:
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_run: float = float("-inf")


@st.cache_resource(show_spinner=False)
def _supervision(key: str) -> _Supervision:
    del key  # one per data folder and database
    return _Supervision()


def supervise_training(settings: AppSettings, *, force: bool = False) -> None:
    """Queue the first job when no model exists; start a worker when none is alive.

    Cheap enough for every run: it acts at most every :data:`SUPERVISE_EVERY_S` per
    app process (``force``: now). Any failure is left to the Training page to show.
    """
    supervision = _supervision(f"{settings.data_dir.resolve()}|{settings.db_url}")
    with supervision.lock:
        now = time.monotonic()
        if not force and now - supervision.last_run < SUPERVISE_EVERY_S:
            return
        supervision.last_run = now
    try:
        stores = training_stores(settings)
        if no_model_anywhere(settings, stores.registry):
            ensure_initial_job(stores.queue, stores.registry)
        if (
            settings.start_worker
            and not worker_holds_lock(settings.data_dir)
            and not job_has_live_worker(stores.queue)
        ):
            start_worker(settings, stores.queue)
    except Exception:  # the Training page shows the problem; the other pages go on
        logger.warning("could not check on the training worker", exc_info=True)
