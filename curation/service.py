"""The curation API: the one object the app (and the worker) open to share state.

:class:`Curation` opens the one database once and holds its stores (corrections, the
job queue, the model registry, the worker roster, the collections and their review
queue), and answers the questions the app asks: may Retrain be clicked and why,
which corrections changed since the version in service, queue a retrain, queue the
first job on a fresh machine, is a worker alive, start one. It imports neither Keras
nor TensorFlow nor ``training``: the app stays light, and the worker (``python -m
worker``) is the only process that trains.

Example:

>>> import tempfile
>>> curation = Curation.open(data_dir=tempfile.mkdtemp(), registry_dir=tempfile.mkdtemp())
>>> curation.retrain_availability().reason
'No model is in service yet: train the first one.'
>>> curation.ensure_first_job(adopt_dir=None).job.options
{'start_from': 'encoder', 'override': False}
>>> curation.request_retrain(requested_by="ada").created
False
>>> curation.replay_default()
ReplayDefault(corrections=0, sentences=800)
>>> from curation.jobs import JobOptionsError
>>> try:
...     curation.request_retrain(retrain_data="quick")
... except JobOptionsError as error:
...     print(error)  # doctest: +ELLIPSIS
job options: retrain_data='quick' is unknown. Fix: use replay or full, or leave it out ...
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from curation.adaptation import (
    DEFAULT_ADAPT_EPOCHS,
    JOB_KIND_ADAPT,
    AdaptedEncoder,
    AdaptJobOptions,
    adapted_encoders,
)
from curation.collections import CollectionStore
from curation.corrections import CorrectionsStore
from curation.database import Database, app_data_dir
from curation.jobs import (
    JOB_KIND_TRAIN,
    START_FROM_ENCODER,
    START_FROM_SERVING,
    EnqueueResult,
    Job,
    JobOptionsError,
    JobQueue,
    TrainJobOptions,
    replay_size,
)
from curation.promotion import PromotionPolicy
from curation.registry import ModelVersion, Registry
from curation.review import ReviewQueue
from curation.workers import WorkerRoster, job_has_live_worker, worker_holds_lock
from tagger.references import METADATA_FILE
from tagger.references import registry_dir as resolve_registry_dir

LOG_DIR = "logs"
WORKER_LOG = "worker.log"
FIRST_JOB_REQUESTER = "first start (no model yet)"


@dataclass(frozen=True)
class CorrectionChanges:
    """How the current corrections differ from those the version in service trained on.

    A re-save has a new id, so it shows as one id ``added`` (the new save) and one
    ``removed`` (the save it superseded); a deletion only as ``removed``.
    """

    serving_version: str | None
    added: tuple[int, ...]
    removed: tuple[int, ...]
    trained_on: int

    @property
    def changed_ids(self) -> tuple[int, ...]:
        return tuple(sorted({*self.added, *self.removed}))

    @property
    def new(self) -> int:
        """Current corrections the version in service has not learned from."""
        return len(self.added)

    def explanation(self) -> str:
        if self.serving_version is None:
            return "No registered version is in service, so no correction has been trained on."
        return (
            f"Current corrections that version {self.serving_version} did not train on "
            f"(it used {self.trained_on})."
        )


@dataclass(frozen=True)
class ReplayDefault:
    """What a replay retrain queued now would replay by default (no ``replay_sentences``).

    ``sentences`` is the default rule's size before its cap at the base sentences that no
    correction replaced (the app does not read the base split; the worker applies it).
    """

    corrections: int  # distinct corrected sentences (by words), as the worker counts them
    sentences: int


@dataclass(frozen=True)
class RetrainAvailability:
    """Whether Retrain can be clicked now; ``reason`` says why not (or what it will do)."""

    allowed: bool
    reason: str
    active_job: Job | None = None
    changes: CorrectionChanges | None = None

    @property
    def new_corrections(self) -> int:
        return self.changes.new if self.changes is not None else 0


@dataclass
class Curation:
    """The shared state of a curation team: one database, one models folder."""

    database: Database
    registry: Registry
    data_dir: Path
    corrections: CorrectionsStore = field(init=False)
    queue: JobQueue = field(init=False)
    roster: WorkerRoster = field(init=False)
    collections: CollectionStore = field(init=False)
    review: ReviewQueue = field(init=False)

    def __post_init__(self) -> None:
        self.corrections = CorrectionsStore(self.database)
        self.queue = JobQueue(self.database)
        self.roster = WorkerRoster(self.database)
        self.collections = CollectionStore(self.database)
        self.review = ReviewQueue(self.database, self.corrections)

    @classmethod
    def open(
        cls,
        *,
        db_url: str | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        registry_dir: str | os.PathLike[str] | None = None,
        policy: PromotionPolicy | None = None,
    ) -> Curation:
        """Open (and migrate) the database of ``db_url`` (else ``$TAGGER_DB_URL``, else
        ``<data_dir>/tagger.sqlite3``) and the registry in ``registry_dir`` (else
        ``$TAGGER_REGISTRY_DIR``, else ``models``)."""
        folder = app_data_dir(data_dir)
        database = Database.open(db_url, data_dir=folder)
        registry = Registry(
            database, resolve_registry_dir(registry_dir), policy or PromotionPolicy.from_env()
        )
        return cls(database, registry, folder)

    @property
    def log_dir(self) -> Path:
        return self.data_dir / LOG_DIR

    # -- what changed ------------------------------------------------------------

    def changes_since_serving(self, serving: ModelVersion | None = None) -> CorrectionChanges:
        """The one definition of "corrections changed since the version in service"."""
        serving = serving if serving is not None else self.registry.serving()
        current = {correction.id for correction in self.corrections.current()}
        used = set(serving.correction_ids) if serving is not None else set()
        return CorrectionChanges(
            serving_version=serving.version if serving is not None else None,
            added=tuple(sorted(current - used)),
            removed=tuple(sorted(used - current)),
            trained_on=len(used),
        )

    # -- retraining --------------------------------------------------------------

    def retrain_availability(self, *, override: bool = False) -> RetrainAvailability:
        """Blocked while a job is queued or running, and when no correction changed
        since the version in service was trained (unless ``override``)."""
        active = self.queue.active_job()
        if active is not None:
            what = "An adaptation of the encoder" if active.kind == JOB_KIND_ADAPT else "A retrain"
            return RetrainAvailability(
                False, f"{what} is in progress: {active.describe()}.", active_job=active
            )
        serving = self.registry.serving()
        if serving is None:
            return RetrainAvailability(True, "No model is in service yet: train the first one.")
        changes = self.changes_since_serving(serving)
        if changes.changed_ids or override:
            what = (
                f"{len(changes.changed_ids)} correction(s) changed"
                if changes.changed_ids
                else "no correction changed"
            )
            return RetrainAvailability(
                True, f"{what} since version {serving.version} was trained.", changes=changes
            )
        return RetrainAvailability(
            False,
            f"No new corrections since version {serving.version} was trained; "
            "tick the override to retrain anyway.",
            changes=changes,
        )

    def request_retrain(
        self,
        *,
        requested_by: str = "app",
        start_from: str = START_FROM_SERVING,
        override: bool = False,
        epochs: int | None = None,
        max_steps: int | None = None,
        retrain_data: str | None = None,
        replay_sentences: int | None = None,
        encoder: str | None = None,
    ) -> EnqueueResult:
        """Queue a retrain; ``created`` is False (with the reason) when it may not run now.

        A job whose worker died is failed first, so that it does not block the button.

        Args:
            requested_by: who asked (shown in the job list).
            start_from: ``serving`` or ``encoder`` (see :class:`TrainJobOptions`).
            override: retrain although no correction changed.
            epochs: overrides the schedule's epochs.
            max_steps: stops after this many training steps.
            retrain_data: ``replay`` or ``full``; None: replay when the job continues the
                model in service, else full (see :class:`TrainJobOptions`).
            replay_sentences: base sentences a replay retrain replays; None: the default
                rule (:func:`replay_size`).
            encoder: the encoder folder a training from the encoder starts from (one of
                :meth:`adapted_encoders`); None: the worker's own (MiniLM).

        Raises:
            JobOptionsError: an option the worker could not run (an unknown
                ``start_from`` or ``retrain_data``, ``replay_sentences`` below 1 or with
                ``retrain_data="full"``, an ``encoder`` without ``start_from="encoder"``);
                the message names the fix. Nothing is queued.
        """
        if encoder is not None and start_from != START_FROM_ENCODER:
            raise JobOptionsError(
                f"an encoder ({encoder}) is where a training from the encoder starts, but "
                f"start_from={start_from!r}",
                where="retrain options",
                fix="use start_from=encoder with it, or leave the encoder out",
            )
        self.queue.reap_stale()
        options = TrainJobOptions(
            encoder=encoder,
            start_from=start_from,
            override=override,
            epochs=epochs,
            max_steps=max_steps,
            retrain_data=retrain_data,
            replay_sentences=replay_sentences,
        )
        TrainJobOptions.from_json(options.to_json())  # refuse a bad option here, not later
        availability = self.retrain_availability(override=override)
        if not availability.allowed:
            active = availability.active_job
            if active is not None:
                return EnqueueResult(
                    active,
                    False,
                    f"Nothing was queued: {active.describe()} is already queued or running. "
                    "Wait for it to finish or cancel it first.",
                )
            return EnqueueResult(None, False, f"Nothing was queued: {availability.reason}")
        return self.queue.enqueue(
            kind=JOB_KIND_TRAIN, options=options.to_json(), requested_by=requested_by
        )

    # -- adapting the encoder ----------------------------------------------------

    def request_adaptation(
        self,
        collection: str,
        *,
        epochs: int = DEFAULT_ADAPT_EPOCHS,
        max_steps: int | None = None,
        requested_by: str = "app",
    ) -> EnqueueResult:
        """Queue an adaptation of the encoder to ``collection``'s text (see
        :mod:`curation.adaptation`); ``created`` is False while another job is queued or
        running (one job at a time, retrains included).

        Raises:
            CollectionNotFoundError: no collection has that name.
            JobOptionsError: a bad number of passes or steps. Nothing is queued.
        """
        options = AdaptJobOptions(collection, epochs=epochs, max_steps=max_steps)
        AdaptJobOptions.from_json(options.to_json())  # refuse a bad option here, not later
        self.collections.check_exists(collection)
        self.queue.reap_stale()
        return self.queue.enqueue(
            kind=JOB_KIND_ADAPT, options=options.to_json(), requested_by=requested_by
        )

    def adapted_encoders(self) -> list[AdaptedEncoder]:
        """The encoders adaptation jobs finished, newest first."""
        return adapted_encoders(self.queue.jobs(limit=1000), self.registry.root)

    def replay_default(self) -> ReplayDefault:
        """The default size of a replay retrain's sample for the current corrections."""
        distinct = len({correction.words for correction in self.corrections.current()})
        return ReplayDefault(distinct, replay_size(distinct, available=sys.maxsize))

    def ensure_first_job(self, *, adopt_dir: Path | None) -> EnqueueResult | None:
        """Queue the first training job (from the encoder) when there is no model at all:
        none registered, and no model folder at ``adopt_dir`` for the worker to adopt."""
        if adopt_dir is not None and (adopt_dir / METADATA_FILE).is_file():
            return None
        if self.registry.serving_version() is not None or self.registry.versions():
            return None
        if self.queue.active_job() is not None:
            return None
        options = TrainJobOptions(start_from=START_FROM_ENCODER)
        return self.queue.enqueue(
            kind=JOB_KIND_TRAIN, options=options.to_json(), requested_by=FIRST_JOB_REQUESTER
        )

    # -- the worker --------------------------------------------------------------

    def worker_alive(self) -> bool:
        """A worker on this machine holds the lock (even while it starts), one reported
        itself recently, or a running job has a fresh heartbeat."""
        return (
            worker_holds_lock(self.data_dir)
            or bool(self.roster.live())
            or job_has_live_worker(self.queue)
        )

    def start_worker(
        self,
        *,
        adopt_dir: Path | None,
        extra_args: Sequence[str] = (),
        python: str = sys.executable,
    ) -> int | None:
        """Start ``python -m worker`` in the background unless one is alive; its pid.

        The worker reads ``TAGGER_DB_URL`` from the environment it inherits rather than
        from ``--db``, which would show a password in ``ps``. Two callers racing here
        start at most two processes, and the second exits at once (the worker lock).
        """
        if self.worker_alive():
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        command = [python, "-m", "worker", *self.worker_args(adopt_dir), *extra_args]
        with open(self.log_dir / WORKER_LOG, "ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives the app's restarts and its Ctrl-C
            )
        return process.pid

    def worker_args(self, adopt_dir: Path | None) -> list[str]:
        """The worker's command-line flags for this installation's folders."""
        args = [
            "--app-data-dir",
            str(self.data_dir.resolve()),
            "--registry",
            str(self.registry.root.resolve()),
        ]
        return args + (["--adopt", str(adopt_dir.resolve())] if adopt_dir else ["--no-adopt"])

    def supervise(self, *, adopt_dir: Path | None, start_worker: bool) -> int | None:
        """Queue the first job when no model exists; start a worker when none is alive
        (and ``start_worker``). Returns the pid of a worker it started."""
        self.ensure_first_job(adopt_dir=adopt_dir)
        if start_worker:
            return self.start_worker(adopt_dir=adopt_dir)
        return None
