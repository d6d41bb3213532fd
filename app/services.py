"""The long-lived objects behind the pages: the model in service, the curation state.

- **The model in service** is the registry's serving version, read on every request
  (one indexed row), so a version promoted by the worker or by a curator is served on
  the next request without a restart. Each version is loaded once and shared by every
  session (``st.cache_resource`` keyed on its folder and ``model.json``). While the
  registry is empty, ``TAGGER_MODEL_DIR`` is served instead. Before a version is
  loaded it is verified (:meth:`curation.registry.Registry.verify`: its weights hash and
  shapes, without Keras); a damaged version is not loaded, and the app keeps serving
  the version it had loaded before, with a warning (``ModelStatus.warning``). Tests replace
  :func:`build_tagger` (``monkeypatch.setattr(services, "build_tagger", ...)``).
- **The curation state** (:func:`curation`): corrections, jobs, the model registry
  and the workers, in the one database of ``TAGGER_DB_URL`` or, by default, the
  SQLite file in the data folder; opened once per app process.
- **The worker**: :func:`supervise_training` (called by the shell on every run, acting
  at most every :data:`SUPERVISE_EVERY_S`) queues the first training job when no model
  exists at all and starts ``python -m worker`` when none is alive, through
  :func:`start_worker`, which tests replace so that no real process is spawned.

The app imports ``tagger`` and ``curation`` only: never ``training`` or the worker,
so neither TensorFlow nor Keras is imported in the Streamlit process.

Example (inside a page)::

    status = services.serving_model(settings)
    if status.tagger is None:
        st.warning(status.problem)
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from app.settings import AppSettings
from curation import CorrectionsStore, Curation, ModelVersion
from curation.registry import DamagedVersionError, Registry
from curation.service import WORKER_LOG, CorrectionChanges
from tagger.references import METADATA_FILE

if TYPE_CHECKING:
    from tagger import Tagger

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
    app serves ``TAGGER_MODEL_DIR`` because the registry is empty. ``warning``: the
    version in service is damaged, so this one (loaded before) still serves; it says so.
    """

    tagger: Tagger | None
    problem: str | None = None
    registered: ModelVersion | None = None
    warning: str | None = None

    @property
    def version(self) -> str:
        return self.tagger.version if self.tagger is not None else "none"


def model_fingerprint(model_dir: Path) -> str | None:
    """A digest of the folder's ``model.json``: a new version means a new digest."""
    metadata = model_dir / METADATA_FILE
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
def _open_curation(data_dir: str, registry_dir: str, db_url: str | None) -> Curation:
    return Curation.open(db_url=db_url, data_dir=data_dir, registry_dir=registry_dir)


def curation(settings: AppSettings) -> Curation:
    """The curation state the worker shares; raises if the database cannot be opened."""
    return _open_curation(
        str(settings.data_dir.resolve()), str(settings.registry_dir.resolve()), settings.db_url
    )


def corrections_store(settings: AppSettings) -> CorrectionsStore:
    return curation(settings).corrections


# ---------------------------------------------------------------------------
# The model in service
# ---------------------------------------------------------------------------


def _load(folder: Path, registered: ModelVersion | None) -> ModelStatus:
    fingerprint = model_fingerprint(folder)
    if fingerprint is None:
        what = f"version {registered.version} is in service but" if registered else "no model:"
        return ModelStatus(
            None,
            f"{what} {folder}/{METADATA_FILE} does not exist. Point TAGGER_REGISTRY_DIR "
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


@dataclass
class _ServingMemory:
    """Per app process: the last version loaded and served, and verification results."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    last_good: ModelStatus | None = None
    checks: dict[tuple[object, ...], str | None] = field(default_factory=dict)


MAX_REMEMBERED_CHECKS = 64


@st.cache_resource(show_spinner=False)
def _serving_memory(registry_root: str) -> _ServingMemory:
    del registry_root  # one per registry
    return _ServingMemory()


def _damage(registry: Registry, registered: ModelVersion, memory: _ServingMemory) -> str | None:
    """Why ``registered`` must not be loaded, or None; verified once per state of its files."""
    folder = registry.folder_of(registered.version)
    try:
        weights = (folder / "model.weights.h5").stat()
        files: object = (weights.st_size, weights.st_mtime_ns)
    except OSError:
        files = None
    key = (registered.version, registered.weights_sha256, files, model_fingerprint(folder))
    with memory.lock:
        if key in memory.checks:
            return memory.checks[key]
    try:
        registry.verify(registered.version)
        damage = None
    except DamagedVersionError as error:
        damage = error.damage
    with memory.lock:
        if len(memory.checks) >= MAX_REMEMBERED_CHECKS:
            memory.checks.clear()
        memory.checks[key] = damage
    return damage


def _serve_registered(registry: Registry, registered: ModelVersion) -> ModelStatus:
    """The version in service, verified and loaded; if it is damaged (or does not load),
    the version this process served before, with a warning saying so."""
    folder = registry.folder_of(registered.version)
    memory = _serving_memory(str(registry.root.resolve()))
    if model_fingerprint(folder) is None:
        status = _load(folder, registered)  # says the folder is not there, and what to do
        damage = f"{folder}/{METADATA_FILE} does not exist"
    else:
        damage = _damage(registry, registered, memory)
        if damage is None:
            status = _load(folder, registered)
            if status.tagger is not None:
                memory.last_good = status
                return status
            damage = "it does not load"
        else:
            status = ModelStatus(
                None,
                f"Version {registered.version} is in service but damaged: {damage}. Promote "
                f"another version or retrain ({TRAINING_PAGE_HINT}).",
                registered,
            )
    previous = memory.last_good
    if previous is None or previous.tagger is None:
        return status
    served = previous.registered.version if previous.registered else previous.version
    still = (
        "the copy of it this app loaded before"
        if served == registered.version
        else f"version {served}, loaded before"
    )
    return ModelStatus(
        previous.tagger,
        None,
        previous.registered,
        warning=(
            f"Version {registered.version} is in service but damaged ({damage}); this app "
            f"still serves {still}. Promote another version or retrain ({TRAINING_PAGE_HINT})."
        ),
    )


def _no_model_yet(settings: AppSettings, state: Curation) -> ModelStatus:
    active = state.queue.active_job()
    if active is not None:
        doing = f"the first model is being trained: {active.describe()} ({TRAINING_PAGE_HINT})"
    else:
        doing = (
            f"{settings.model_dir}/{METADATA_FILE} does not exist. Train one with "
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
        state = curation(settings)
        registered = state.registry.serving()
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
        return _serve_registered(state.registry, registered)
    if model_fingerprint(settings.model_dir) is None:
        return _no_model_yet(settings, state)
    return _load(settings.model_dir, None)


def corrections_since_serving(settings: AppSettings) -> CorrectionChanges:
    """Current corrections the version in service did not train on (see
    :meth:`curation.Curation.changes_since_serving`, the one definition)."""
    return curation(settings).changes_since_serving()


# ---------------------------------------------------------------------------
# The worker
# ---------------------------------------------------------------------------


def start_worker(settings: AppSettings) -> int | None:
    """Spawn ``python -m worker`` unless one is alive; the new pid or None.

    The one place the app starts a process: tests replace it.
    """
    return curation(settings).start_worker(adopt_dir=settings.model_dir)


def worker_log(settings: AppSettings) -> Path:
    return curation(settings).log_dir / WORKER_LOG


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
        state = curation(settings)
        state.ensure_first_job(adopt_dir=settings.model_dir)
        if settings.start_worker and not state.worker_alive():
            start_worker(settings)
    except Exception:  # the Training page shows the problem; the other pages go on
        logger.warning("could not check on the training worker", exc_info=True)
