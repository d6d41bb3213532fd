"""The training worker: its own OS process that claims jobs and retrains the tagger.

Usage:
    python -m worker [--once] [--max-steps N] [--epochs N] [--data-dir DIR]
        [--db URL] [--app-data-dir DIR] [--registry DIR] [--encoder ENC]
        [--tolerance POINTS] [--adopt MODEL_DIR | --no-adopt]

``--data-dir`` is the BC5CDR-disease folder (as for ``training.train``; default
``$BC5CDR_DIR``); ``--app-data-dir`` is the app's data folder with the database and
the job logs (default ``$TAGGER_DATA_DIR`` or ``data``); ``--db`` the database
(default ``$TAGGER_DB_URL`` or ``<app data>/tagger.sqlite3``); ``--registry`` the model
versions folder (default ``$TAGGER_REGISTRY_DIR`` or ``models``).

On start the worker takes a per-folder lock (one worker per app data folder on a
machine; the OS frees it if the worker is killed), marks jobs of dead workers failed,
removes half-written model folders, adopts ``--adopt`` (default ``$TAGGER_MODEL_DIR``
or ``models/default``, if it holds a model) as the first version when the registry is
empty, and otherwise queues the first training job when no model exists at all. Then
it polls for jobs (``--once``: runs at most one and exits).

The app never imports this module: it talks to the worker through the database
(:class:`curation.Curation`), and starts one with ``Curation.start_worker``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from curation.adaptation import JOB_KIND_ADAPT
from curation.database import app_data_dir
from curation.jobs import Job, JobQueue, JobSignal, JobStatus
from curation.promotion import PromotionPolicy
from curation.registry import Registration, Registry
from curation.service import LOG_DIR, Curation
from curation.workers import STALE_AFTER_S, WorkerLockedError, this_worker_id, worker_lock
from tagger.errors import run_cli
from tagger.references import METADATA_FILE, model_dir, registry_dir
from worker.collection_tagging import CollectionTagger

if TYPE_CHECKING:
    from tagger.encoders import Encoder
    from training.recipes import TrainSettings

PROG = "python -m worker"
logger = logging.getLogger("worker")


@dataclass
class WorkerSettings:
    """Where the worker finds its database, data and models, and how it trains."""

    db_url: str | None = None
    app_data_dir: Path = field(default_factory=app_data_dir)
    registry_dir: Path = field(default_factory=registry_dir)
    data_dir: Path | None = None  # BC5CDR-disease; None: $BC5CDR_DIR
    encoder: str | None = None
    max_steps: int | None = None
    epochs: int | None = None
    tolerance: float | None = None
    adopt_dir: Path | None = field(default_factory=model_dir)
    poll_s: float = 2.0
    heartbeat_s: float = 5.0
    stale_after_s: float = STALE_AFTER_S
    step_delay_s: float = 0.0

    @property
    def log_dir(self) -> Path:
        return self.app_data_dir / LOG_DIR

    def open_curation(self) -> Curation:
        policy = None if self.tolerance is None else PromotionPolicy(self.tolerance)
        return Curation.open(
            db_url=self.db_url,
            data_dir=self.app_data_dir,
            registry_dir=self.registry_dir,
            policy=policy,
        )


def prepare_serving_graph(folder: Path, version: str) -> None:
    """Derive the ONNX graph the app will serve this version with, here, where Keras is
    already loaded: the app's switch to the new version is then instant and never imports
    TensorFlow. A failure only costs the app that work later."""
    from tagger.runtimes import DEFAULT_PRECISIONS, default_runtime, ensure_onnx_graph

    if default_runtime() != "onnx":
        return
    try:
        ensure_onnx_graph(folder, version, DEFAULT_PRECISIONS["onnx"])
    except Exception:
        logger.warning("version %s: could not derive its ONNX graph", version, exc_info=True)


def adopt_existing_model(registry: Registry, folder: Path | None) -> Registration | None:
    """Make ``folder`` (e.g. ``make model``'s output) the first version of an empty registry."""
    if folder is None or not (folder / METADATA_FILE).is_file() or registry.versions():
        return None
    return registry.adopt(folder, actor="worker start-up")


# ---------------------------------------------------------------------------
# The worker
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _JobRun:
    """A job ready to run: ``run`` returns its closing message and the model version it
    made (None: none); ``kept`` says what a job that ends early leaves behind."""

    run: Callable[[], tuple[str, str | None]]
    kept: Callable[[], str]
    failure: str  # the message's start when ``run`` raises
    button: str  # the Training page's button that queues such a job again


class Worker:
    """Claims jobs one at a time and runs them; see the module docstring."""

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        load_encoder: Callable[[str | None], Encoder] | None = None,
        encoder_settings: TrainSettings | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.curation = settings.open_curation()
        self.queue = self.curation.queue
        self.registry = self.curation.registry
        self.corrections = self.curation.corrections
        self.roster = self.curation.roster
        self.id = worker_id or this_worker_id()
        self.load_encoder = load_encoder
        self.encoder_settings = encoder_settings
        self.stop_event = threading.Event()
        self._device: str | None = None
        # Between jobs the loop tags collections with the model in service (one batch a poll).
        self.collection_tagging = CollectionTagger(self.curation.collections, self.registry)

    @property
    def device(self) -> str:
        if self._device is None:
            from tagger.device import describe_device
            from worker.devices import visible_gpus

            count = visible_gpus()
            suffix = f" ×{count} (MirroredStrategy)" if count > 1 else ""
            self._device = describe_device() + suffix
        return self._device

    def start(self) -> None:
        """Housekeeping before the first claim."""
        self.roster.seen(self.id, device=self.device)
        for job in self.queue.reap_stale(stale_after_s=self.settings.stale_after_s):
            logger.warning("marked job %d failed: %s", job.id, job.error)
        for folder in self.registry.sweep():
            logger.warning("removed %s: a model folder that was never registered", folder)
        self.registry.sync_pointer_file()
        adopted = adopt_existing_model(self.registry, self.settings.adopt_dir)
        if adopted is not None:
            logger.info(
                "adopted %s as version %s", self.settings.adopt_dir, adopted.version.version
            )
        queued = self.curation.ensure_first_job(adopt_dir=self.settings.adopt_dir)
        if queued is not None and queued.created:
            logger.info("no model exists yet: queued the first training job %d", queued.job.id)

    def run(self, *, once: bool = False) -> int:
        """Poll and run jobs until stopped; ``once``: at most one job. Exit status 1 on failure."""
        self.start()
        status = 0
        try:
            while not self.stop_event.is_set():
                self.roster.seen(self.id, device=self.device)
                self.corrections.backup_if_due()  # the timed SQLite backup; never raises
                self.queue.reap_stale(stale_after_s=self.settings.stale_after_s)
                job = self.queue.claim(self.id, device=self.device)
                if job is not None:
                    self.collection_tagging.unload()  # the job gets the tagger's memory
                    finished = self.run_job(job)
                    status = 1 if finished.status == JobStatus.FAILED else 0
                if once:
                    break
                if job is None and not self.collection_tagging.step_safely():
                    self.stop_event.wait(self.settings.poll_s)
        finally:
            self.roster.left(self.id)
        return status

    def run_job(self, job: Job) -> Job:
        """Run a claimed job to its end; the job row says how it ended."""
        self.settings.log_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.settings.log_dir / f"job-{job.id}.log"
        self.queue.record_inputs(job.id, log_file=str(log_file))
        job = self.queue.get(job.id)
        run = self._adapt_job(job) if job.kind == JOB_KIND_ADAPT else self._training_job(job)
        with (
            job_log(log_file),
            HeartbeatThread(self.queue, job.id, self.id, self.settings.heartbeat_s),
        ):
            logger.info("job %d started on %s (options %s)", job.id, self.device, job.options)
            self._run_to_end(job, run)
        return self.queue.get(job.id)

    def _training_job(self, job: Job) -> _JobRun:
        from worker.training_job import JobRunner

        runner = JobRunner(
            queue=self.queue,
            registry=self.registry,
            corrections=self.corrections,
            job=job,
            worker=self.id,
            data_dir=self.settings.data_dir,
            encoder_spec=self.settings.encoder,
            max_steps=self.settings.max_steps,
            epochs=self.settings.epochs,
            step_delay_s=self.settings.step_delay_s,
            stopping=self.stop_event.is_set,
            encoder_settings=self.encoder_settings,
            **({"load_encoder": self.load_encoder} if self.load_encoder else {}),
        )

        def run() -> tuple[str, str | None]:
            registration = runner.run()
            prepare_serving_graph(registration.version.folder, registration.version.version)
            outcome = "in service" if registration.promoted else "kept as a candidate"
            version = registration.version.version
            return f"Version {version} {outcome}: {registration.note}.", version

        return _JobRun(run, runner.kept_in_service, "Training failed", "Retrain")

    def _adapt_job(self, job: Job) -> _JobRun:
        from worker.adapt_job import AdaptJobRunner

        runner = AdaptJobRunner(
            queue=self.queue,
            collections=self.curation.collections,
            registry_root=self.registry.root,
            job=job,
            worker=self.id,
            encoder_spec=self.settings.encoder,
            step_delay_s=self.settings.step_delay_s,
            stopping=self.stop_event.is_set,
            **({"load_encoder": self.load_encoder} if self.load_encoder else {}),
        )
        return _JobRun(
            lambda: (runner.run(), None),
            lambda: "no encoder was written",
            "Adaptation failed",
            "Adapt the encoder",
        )

    def _run_to_end(self, job: Job, run: _JobRun) -> None:
        from worker.progress import WORKER_STOPPING, JobStopped

        try:
            message, version = run.run()
        except JobStopped as stopped:
            self._end_stopped(job, stopped.signal, stopped.step, WORKER_STOPPING, run)
        except Exception as error:
            logger.exception("job %d failed", job.id)
            self._finish(
                job,
                JobStatus.FAILED,
                error=f"{type(error).__name__}: {error}\n\n{traceback.format_exc()}",
                message=f"{run.failure}; {run.kept()}.",
            )
        else:
            logger.info("job %d: %s", job.id, message)
            self._finish(job, JobStatus.SUCCEEDED, message=message, model_version=version)

    def _finish(self, job: Job, status: JobStatus, **outcome: str | None) -> None:
        self.queue.finish(job.id, status, worker=self.id, **outcome)

    def _end_stopped(
        self,
        job: Job,
        signal_name: str,
        step: int,
        stopping: str,
        run: _JobRun,
    ) -> None:
        kept = run.kept()
        if signal_name == JobSignal.CANCEL:
            logger.info("job %d cancelled after step %d", job.id, step)
            message = f"Cancelled after step {step}; {kept}."
            self._finish(job, JobStatus.CANCELLED, message=message)
        elif signal_name == stopping:
            logger.warning("job %d interrupted: the worker is stopping", job.id)
            self._finish(
                job,
                JobStatus.FAILED,
                error=f"The worker was stopped during the job (after step {step}).",
                message=f"Interrupted; {kept}. Click {run.button} again.",
            )
        else:  # LOST: another worker reaped it as stale; the row is not ours to write
            logger.warning("job %d is no longer assigned to this worker; dropped it", job.id)


class HeartbeatThread:
    """Beats every ``interval_s`` while a job runs, so that long evaluations between
    training steps are not mistaken for a dead worker."""

    def __init__(self, queue: JobQueue, job_id: int, worker: str, interval_s: float) -> None:
        self.queue = queue
        self.job_id = job_id
        self.worker = worker
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id}", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.queue.heartbeat(self.job_id, self.worker)
            except Exception:  # a busy database now and then must not end the job
                logger.warning("heartbeat for job %d failed", self.job_id, exc_info=True)

    def __enter__(self) -> HeartbeatThread:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def job_log(path: Path) -> Iterator[None]:
    """Copy the worker's and the training code's log records into the job's log file."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # The worker's own records and the training code's go to the job's log.
    targets = [logging.getLogger("worker"), logging.getLogger("training")]
    levels = [target.level for target in targets]
    for target in targets:
        target.addHandler(handler)
        if target.getEffectiveLevel() > logging.INFO:
            target.setLevel(logging.INFO)  # the job log keeps INFO even where stderr does not
    try:
        yield
    finally:
        for target, level in zip(targets, levels, strict=True):
            target.removeHandler(handler)
            target.setLevel(level)
        handler.close()


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="run at most one job, then exit")
    parser.add_argument("--max-steps", type=int, help="cap training batches per epoch")
    parser.add_argument("--epochs", type=int, help="override the epochs of every job")
    parser.add_argument("--data-dir", type=Path, help="BC5CDR-disease folder ($BC5CDR_DIR)")
    parser.add_argument("--db", dest="db_url", help="database URL ($TAGGER_DB_URL)")
    parser.add_argument(
        "--app-data-dir", type=Path, help="app data folder with the corrections ($TAGGER_DATA_DIR)"
    )
    parser.add_argument("--registry", type=Path, help="model versions folder (default: models)")
    parser.add_argument("--encoder", help="encoder for jobs that start from one (default: MiniLM)")
    parser.add_argument(
        "--tolerance", type=float, help="promotion tolerance in dev F1 points (default 0.5)"
    )
    adopt = parser.add_mutually_exclusive_group()
    adopt.add_argument("--adopt", type=Path, help="model folder to adopt into an empty registry")
    adopt.add_argument("--no-adopt", action="store_true", help="never adopt a model folder")
    parser.add_argument("--poll-s", type=float, default=2.0, help="seconds between polls")
    parser.add_argument("--heartbeat-s", type=float, default=5.0, help="seconds between beats")
    parser.add_argument(
        "--stale-after-s",
        type=float,
        default=STALE_AFTER_S,
        help="a running job without a heartbeat this long is failed",
    )
    parser.add_argument(
        "--step-delay-s", type=float, default=0.0, help=argparse.SUPPRESS
    )  # fault tests only: slow each step so a test can kill the worker mid-epoch
    return parser


# Flags whose value goes to the WorkerSettings field of the same name, as given.
_PLAIN_FLAGS = (
    "db_url",
    "data_dir",
    "encoder",
    "max_steps",
    "epochs",
    "tolerance",
    "poll_s",
    "heartbeat_s",
    "stale_after_s",
    "step_delay_s",
)


def settings_from_args(args: argparse.Namespace) -> WorkerSettings:
    settings = WorkerSettings(**{name: getattr(args, name) for name in _PLAIN_FLAGS})
    if args.app_data_dir is not None:
        settings.app_data_dir = args.app_data_dir
    if args.registry is not None:
        settings.registry_dir = args.registry
    if args.no_adopt:
        settings.adopt_dir = None
    elif args.adopt is not None:
        settings.adopt_dir = args.adopt
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return run_cli(lambda: _serve(settings_from_args(args), once=args.once), prog=PROG)


def _serve(settings: WorkerSettings, *, once: bool) -> int:
    try:
        with worker_lock(settings.app_data_dir):
            worker = Worker(settings)

            def stop(signum: int, _frame: FrameType | None) -> None:
                logger.warning("signal %d: stopping after the current step", signum)
                worker.stop_event.set()

            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
            logger.info(
                "worker %s on %s; database %s; registry %s",
                worker.id,
                worker.device,
                worker.queue.database.display_url,
                settings.registry_dir,
            )
            return worker.run(once=once)
    except WorkerLockedError as error:
        # Not a failure: the folder is served already (the app may have raced `make run`).
        print(f"{PROG}: {error}", file=sys.stderr)
        return 0
