"""The training worker: its own OS process that claims jobs and retrains the tagger.

Usage:
    python -m training.worker [--once] [--max-steps N] [--epochs N] [--data-dir DIR]
        [--db URL] [--app-data-dir DIR] [--registry DIR] [--encoder ENC]
        [--tolerance POINTS] [--adopt MODEL_DIR | --no-adopt]

``--data-dir`` is the BC5CDR-disease folder (as for ``training.train``; default
``$BC5CDR_DIR``); ``--app-data-dir`` is the app's folder with ``corrections.sqlite3``
and the job logs (default ``$TAGGER_DATA_DIR`` or ``data``); ``--db`` the jobs and
registry database (default ``$TAGGER_DB_URL`` or ``<app data>/tagger.sqlite3``);
``--registry`` the model versions folder (default ``$TAGGER_REGISTRY_DIR`` or ``models``).

On start the worker takes a per-folder lock (one worker per app data folder on a
machine; the OS frees it if the worker is killed), marks jobs of dead workers failed,
removes half-written model folders, adopts ``--adopt`` (default ``$TAGGER_MODEL_DIR``
or ``models/default``, if it holds a model) as the first version when the registry is
empty, and otherwise queues the first training job when no model exists at all. Then
it polls for jobs (``--once``: runs at most one and exits).

The app talks to it only through the database. From Python::

    from training.worker import request_retrain, ensure_worker_running
    result = request_retrain(queue, requested_by="ada")   # refuses while a job runs
    ensure_worker_running(WorkerSettings())               # spawns one if none is alive
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any

from training.corrections import CorrectionsStore
from training.db import Database, app_data_dir
from training.jobs import (
    STALE_AFTER_S,
    EnqueueResult,
    Job,
    JobQueue,
    JobSignal,
    JobStatus,
    this_worker_id,
)
from training.registry import (
    DEFAULT_REGISTRY_DIR,
    REGISTRY_DIR_ENV,
    PromotionPolicy,
    Registration,
    Registry,
)

if TYPE_CHECKING:
    from tagger.encoders import Encoder
    from training.train import TrainSettings

MODEL_DIR_ENV = "TAGGER_MODEL_DIR"
DEFAULT_ADOPT_DIR = Path("models") / "default"
LOCK_FILE = "worker.lock"
LOG_DIR = "logs"
WORKER_LOG = "worker.log"
JOB_KIND_TRAIN = "train"

logger = logging.getLogger("training.worker")


@dataclass
class WorkerSettings:
    """Where the worker finds its database, data and models, and how it trains."""

    db_url: str | None = None
    app_data_dir: Path = field(default_factory=app_data_dir)
    registry_dir: Path = field(
        default_factory=lambda: Path(
            os.environ.get(REGISTRY_DIR_ENV, "").strip() or DEFAULT_REGISTRY_DIR
        )
    )
    data_dir: Path | None = None  # BC5CDR-disease; None: $BC5CDR_DIR
    encoder: str | None = None
    max_steps: int | None = None
    epochs: int | None = None
    tolerance: float | None = None
    adopt_dir: Path | None = field(
        default_factory=lambda: Path(os.environ.get(MODEL_DIR_ENV, "").strip() or DEFAULT_ADOPT_DIR)
    )
    poll_s: float = 2.0
    heartbeat_s: float = 5.0
    stale_after_s: float = STALE_AFTER_S
    step_delay_s: float = 0.0

    @property
    def log_dir(self) -> Path:
        return self.app_data_dir / LOG_DIR

    def open_stores(self) -> tuple[JobQueue, Registry, CorrectionsStore]:
        database = Database.open(self.db_url, data_dir=self.app_data_dir)
        policy = (
            PromotionPolicy(self.tolerance)
            if self.tolerance is not None
            else PromotionPolicy.from_env()
        )
        return (
            JobQueue(database),
            Registry(database, self.registry_dir, policy),
            CorrectionsStore.connect(self.db_url, data_dir=self.app_data_dir),
        )


# ---------------------------------------------------------------------------
# What the app calls
# ---------------------------------------------------------------------------


def request_retrain(
    queue: JobQueue,
    *,
    requested_by: str = "app",
    start_from: str = "serving",
    override: bool = False,
    epochs: int | None = None,
    max_steps: int | None = None,
) -> EnqueueResult:
    """Queue a retrain; ``created`` is False (with the reason) while another job is active.

    A job whose worker died is failed first, so that it does not block the button.
    """
    from training.retrain import TrainJobOptions

    queue.reap_stale()

    options = TrainJobOptions(
        start_from=start_from, override=override, epochs=epochs, max_steps=max_steps
    )
    TrainJobOptions.from_json(options.to_json())  # refuse a bad start_from here, not later
    return queue.enqueue(kind=JOB_KIND_TRAIN, options=options.to_json(), requested_by=requested_by)


def ensure_initial_job(queue: JobQueue, registry: Registry) -> EnqueueResult | None:
    """Queue the first training job (from the encoder) when no model exists at all."""
    if registry.serving_version() is not None or registry.versions():
        return None
    if queue.active_job() is not None:
        return None
    return queue.enqueue(
        kind=JOB_KIND_TRAIN,
        options={"start_from": "encoder"},
        requested_by="first start (no model yet)",
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
    if folder is None or not (folder / "model.json").is_file() or registry.versions():
        return None
    return registry.adopt(folder, actor="worker start-up")


def worker_alive(queue: JobQueue) -> bool:
    return bool(queue.live_workers())


def ensure_worker_running(
    settings: WorkerSettings,
    *,
    queue: JobQueue | None = None,
    extra_args: Sequence[str] = (),
    python: str = sys.executable,
) -> int | None:
    """Start ``python -m training.worker`` in the background unless one is alive.

    Returns the new process id, or None when a worker was already seen. Two callers
    racing here at most start two processes, and the second exits at once: the worker
    lock admits one per app data folder.
    """
    queue = queue or JobQueue(Database.open(settings.db_url, data_dir=settings.app_data_dir))
    if worker_alive(queue):
        return None
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    command = [python, "-m", "training.worker", *settings_to_args(settings), *extra_args]
    with open(settings.log_dir / WORKER_LOG, "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the app's restarts and its Ctrl-C
        )
    return process.pid


def settings_to_args(settings: WorkerSettings) -> list[str]:
    args = ["--app-data-dir", str(settings.app_data_dir), "--registry", str(settings.registry_dir)]
    optional: list[tuple[str, Any]] = [
        ("--db", settings.db_url),
        ("--data-dir", settings.data_dir),
        ("--encoder", settings.encoder),
        ("--max-steps", settings.max_steps),
        ("--epochs", settings.epochs),
        ("--tolerance", settings.tolerance),
    ]
    for flag, value in optional:
        if value is not None:
            args += [flag, str(value)]
    args += ["--adopt", str(settings.adopt_dir)] if settings.adopt_dir else ["--no-adopt"]
    return args


# ---------------------------------------------------------------------------
# The worker
# ---------------------------------------------------------------------------


class WorkerLockedError(RuntimeError):
    """Another worker already serves this app data folder."""


@contextlib.contextmanager
def worker_lock(folder: Path) -> Iterator[None]:
    """One worker per app data folder on this machine; the OS releases it on any exit."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    handle: IO[str] = open(path, "a+")  # noqa: SIM115 - held for the worker's lifetime
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkerLockedError(
                f"another worker holds {path}; it already serves {folder}. "
                "Stop it first, or give this one another --app-data-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{this_worker_id()}\n")
        handle.flush()
        yield
    finally:
        handle.close()


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
        self.queue, self.registry, self.corrections = settings.open_stores()
        self.id = worker_id or this_worker_id()
        self.load_encoder = load_encoder
        self.encoder_settings = encoder_settings
        self.stop_event = threading.Event()
        self._device: str | None = None

    @property
    def device(self) -> str:
        if self._device is None:
            from tagger.device import describe_device
            from training.retrain import visible_gpus

            count = visible_gpus()
            suffix = f" ×{count} (MirroredStrategy)" if count > 1 else ""
            self._device = describe_device() + suffix
        return self._device

    def start(self) -> None:
        """Housekeeping before the first claim."""
        self.queue.worker_seen(self.id, device=self.device)
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
        queued = ensure_initial_job(self.queue, self.registry)
        if queued is not None and queued.created:
            logger.info("no model exists yet: queued the first training job %d", queued.job.id)

    def run(self, *, once: bool = False) -> int:
        """Poll and run jobs until stopped; ``once``: at most one job. Exit status 1 on failure."""
        self.start()
        status = 0
        try:
            while not self.stop_event.is_set():
                self.queue.worker_seen(self.id, device=self.device)
                self.queue.reap_stale(stale_after_s=self.settings.stale_after_s)
                job = self.queue.claim(self.id, device=self.device)
                if job is not None:
                    finished = self.run_job(job)
                    status = 1 if finished.status == JobStatus.FAILED else 0
                if once:
                    break
                if job is None:
                    self.stop_event.wait(self.settings.poll_s)
        finally:
            self.queue.worker_left(self.id)
        return status

    def run_job(self, job: Job) -> Job:
        """Run a claimed job to its end; the job row says how it ended."""
        from training.retrain import WORKER_STOPPING, JobRunner, JobStopped

        self.settings.log_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.settings.log_dir / f"job-{job.id}.log"
        self.queue.record_inputs(job.id, log_file=str(log_file))
        job = self.queue.get(job.id)
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
        with (
            job_log(log_file),
            HeartbeatThread(self.queue, job.id, self.id, self.settings.heartbeat_s),
        ):
            logger.info("job %d started on %s (options %s)", job.id, self.device, job.options)
            try:
                registration = runner.run()
            except JobStopped as stopped:
                self._end_stopped(job, stopped.signal, stopped.step, WORKER_STOPPING)
            except Exception as error:
                logger.exception("job %d failed", job.id)
                self.queue.finish(
                    job.id,
                    JobStatus.FAILED,
                    worker=self.id,
                    error=f"{type(error).__name__}: {error}\n\n{traceback.format_exc()}",
                    message="Training failed; the model in service is unchanged.",
                )
            else:
                prepare_serving_graph(registration.version.folder, registration.version.version)
                outcome = "in service" if registration.promoted else "kept as a candidate"
                message = f"Version {registration.version.version} {outcome}: {registration.note}."
                logger.info("job %d: %s", job.id, message)
                self.queue.finish(
                    job.id,
                    JobStatus.SUCCEEDED,
                    worker=self.id,
                    message=message,
                    model_version=registration.version.version,
                )
        return self.queue.get(job.id)

    def _end_stopped(self, job: Job, signal_name: str, step: int, stopping: str) -> None:
        if signal_name == JobSignal.CANCEL:
            logger.info("job %d cancelled after step %d", job.id, step)
            self.queue.finish(
                job.id,
                JobStatus.CANCELLED,
                worker=self.id,
                message=f"Cancelled after step {step}; the model in service is unchanged.",
            )
        elif signal_name == stopping:
            logger.warning("job %d interrupted: the worker is stopping", job.id)
            self.queue.finish(
                job.id,
                JobStatus.FAILED,
                worker=self.id,
                error=f"The worker was stopped during the job (after step {step}).",
                message="Interrupted; the model in service is unchanged. Click Retrain again.",
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
    target = logging.getLogger("training")
    level = target.level
    target.addHandler(handler)
    if target.getEffectiveLevel() > logging.INFO:
        target.setLevel(logging.INFO)  # the job log keeps INFO even where stderr does not
    try:
        yield
    finally:
        target.removeHandler(handler)
        target.setLevel(level)
        handler.close()


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.worker", description=__doc__.splitlines()[0]
    )
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


def settings_from_args(args: argparse.Namespace) -> WorkerSettings:
    settings = WorkerSettings(
        db_url=args.db_url,
        data_dir=args.data_dir,
        encoder=args.encoder,
        max_steps=args.max_steps,
        epochs=args.epochs,
        tolerance=args.tolerance,
        poll_s=args.poll_s,
        heartbeat_s=args.heartbeat_s,
        stale_after_s=args.stale_after_s,
        step_delay_s=args.step_delay_s,
    )
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
    settings = settings_from_args(args)
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
            return worker.run(once=args.once)
    except WorkerLockedError as error:
        print(f"training.worker: {error}", file=sys.stderr)
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
