"""The training job queue: one row per job, at most one queued or running at a time.

A job moves ``queued -> running -> succeeded | failed | cancelled`` (a queued job may
also be cancelled directly). The row holds everything the Training page shows: the
times, the worker's heartbeat and device, progress (epoch, step, total steps, loss,
dev F1, ETA), the error text, the log file, the model version it produced and the
correction ids it trained on. The loss curve lives in ``job_losses``, one row a step.

Guarantees, enforced by the database rather than by hope:

- *One job at a time.* Queued and running jobs carry ``active = 1``, a unique
  column (NULL for finished jobs, and NULLs never collide). Two sessions clicking
  Retrain in the same instant both INSERT; the database lets exactly one through and
  :meth:`JobQueue.enqueue` answers the other with the job that is already there.
- *One worker per job.* :meth:`JobQueue.claim` selects the oldest queued job with
  ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite the write transaction holds
  the database's write lock (``BEGIN IMMEDIATE``), so the same statements are atomic.
- *Dead workers are noticed.* A running job whose heartbeat is older than
  ``stale_after_s``, or whose worker process on this host is gone, is marked failed
  by :meth:`JobQueue.reap_stale` (every worker calls it on start and while polling).

Example:

>>> import tempfile
>>> from curation.database import Database
>>> queue = JobQueue(Database.open(data_dir=tempfile.mkdtemp()))
>>> first = queue.enqueue(options={"start_from": "serving"}, requested_by="ada")
>>> second = queue.enqueue(requested_by="bob")
>>> first.created, second.created, second.job.id == first.job.id
(True, False, True)
>>> str(queue.claim("host:1", device="CPU").status)
'running'
>>> try:
...     TrainJobOptions.from_json({"start_from": "yesterday"})
... except JobOptionsError as error:
...     print(error)
job options: start_from='yesterday' is unknown. Fix: use serving or encoder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from curation.database import Database, utc_now
from curation.schema import job_losses_table, jobs_table
from curation.workers import STALE_AFTER_S, worker_process_gone
from tagger.errors import TaggerError

Clock = Callable[[], datetime]
MAX_ERROR_CHARS = 8000


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
FINAL_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobSignal(StrEnum):
    """What a running job hears back from its heartbeat."""

    CONTINUE = "continue"
    CANCEL = "cancel"  # a curator asked to cancel it
    LOST = "lost"  # the job is no longer ours (reaped as stale): stop, write nothing


class JobNotFoundError(TaggerError, LookupError):
    """No job has the id asked for."""


class JobOptionsError(TaggerError, ValueError):
    """A job's options that the worker cannot run; the message names the fix."""


JOB_KIND_TRAIN = "train"
START_FROM_SERVING = "serving"
START_FROM_ENCODER = "encoder"
START_POINTS = (START_FROM_SERVING, START_FROM_ENCODER)

# Where a first training serves its first preliminary version when it trains no quick
# first model (``TrainJobOptions.first_model=False``): after this many steps of the job's
# own recipe. With the default recipe that point scored under 50 devel F1 (BENCHMARKS.md,
# first highlight), which is why the quick first model is the default.
DEFAULT_PRELIMINARY_AFTER_STEPS = 120

# What a retrain from the model in service trains on (``TrainJobOptions.retrain_data``).
RETRAIN_DATA_REPLAY = "replay"  # the corrections plus a seeded sample of the base split
RETRAIN_DATA_FULL = "full"  # the whole base split with the corrections in
RETRAIN_DATA_CHOICES = (RETRAIN_DATA_REPLAY, RETRAIN_DATA_FULL)

# The replay sample's size: REPLAY_PER_CORRECTION base sentences per correction, at least
# REPLAY_MIN_SENTENCES, at most the base sentences no correction replaced. Four per
# correction makes the corrections a fifth of the data: each is seen once per epoch, as
# in a full retrain, while four fifths of every batch still come from the distribution
# the model in service was trained on, which holds what it knows in place. The floor
# keeps a handful of corrections from making a run of a step or two (mostly warm-up):
# 800 sentences are some 25 batches of 32, and it is the whole of a retrain with no
# correction, the control the queue benchmark credits the corrections against.
REPLAY_PER_CORRECTION = 4
REPLAY_MIN_SENTENCES = 800


def replay_size(corrections: int, available: int, requested: int | None = None) -> int:
    """How many base sentences a replay retrain trains on besides ``corrections``.

    ``requested`` (the job's ``replay_sentences``) or the default rule, never more than
    the ``available`` base sentences no correction replaced.

    >>> replay_size(200, 4000), replay_size(5, 4000), replay_size(200, 500)
    (800, 800, 500)
    >>> replay_size(300, 4000), replay_size(300, 4000, requested=100)
    (1200, 100)
    """
    wanted = requested if requested is not None else corrections * REPLAY_PER_CORRECTION
    if requested is None:
        wanted = max(wanted, REPLAY_MIN_SENTENCES)
    return min(wanted, available)


@dataclass(frozen=True)
class TrainJobOptions:
    """What a curator (or the app) asks of a training job; stored as the job's options.

    Args:
        start_from: ``serving`` continues from the model in service (the encoder when
            there is none); ``encoder`` trains from the pretrained encoder.
        epochs, max_steps, learning_rate: override the recipe's values.
        encoder: the encoder for a job that starts from one (default: MiniLM).
        override: retrain although no correction changed.
        preliminary: serve preliminary versions while the job trains, so that a fresh
            installation tags within minutes rather than after the whole run: one after
            ``preliminary_after_steps`` steps and one at each epoch end whose dev F1 beats
            the last, each registered and put into service; the final version then
            replaces them. Only a job that starts with no version in service does this
            (a preliminary never displaces a model); None (the default) means yes for
            such a job, False never.
        preliminary_after_steps: training steps (over all epochs) of the job's own recipe
            before a preliminary version; None: none when the job trains a quick first
            model, else :data:`DEFAULT_PRELIMINARY_AFTER_STEPS`.
        first_model: a job that serves preliminary versions first trains the quick first
            model (:func:`training.recipes.first_model_recipe`: 250 batches, no context)
            and serves it, then trains its own recipe from the encoder, whose epochs
            replace it only when their dev F1 is higher; None means yes, False skips it.
        retrain_data: what a retrain from the model in service trains on: ``replay``
            (what None means there) is every correction plus a seeded sample of the base
            train sentences they did not replace, under the short replay schedule
            (``worker.training_job.REPLAY_OVERRIDES``); ``full`` is the whole base split
            with the corrections in, under ``RETRAIN_OVERRIDES``. A training from the
            encoder, or with nothing in service, always trains on the full data.
        replay_sentences: base sentences a replay retrain replays; None: the default
            rule (:func:`replay_size`). Capped at the base sentences that no
            correction replaced.
        replay_seed: seeds the replay sample; None: the training recipe's seed.
        score_test: score the new version on the test split before registering it (a
            pass over the whole split, for the Training page's test F1; the promotion reads
            dev only); None: yes, except for a replay retrain, whose minutes count.
    """

    start_from: str = START_FROM_SERVING
    epochs: int | None = None
    max_steps: int | None = None
    learning_rate: float | None = None
    encoder: str | None = None
    override: bool = False
    preliminary: bool | None = None
    preliminary_after_steps: int | None = None
    first_model: bool | None = None
    retrain_data: str | None = None
    replay_sentences: int | None = None
    replay_seed: int | None = None
    score_test: bool | None = None

    def wants_preliminary(self, *, serving: str | None) -> bool:
        """Whether this job serves preliminary versions, given the version in service.

        >>> TrainJobOptions().wants_preliminary(serving=None)
        True
        >>> TrainJobOptions(preliminary=True).wants_preliminary(serving="v1")
        False
        """
        return serving is None and self.preliminary is not False

    def scores_test(self, *, replay: bool) -> bool:
        """Whether the job scores test, given whether it trains on a replay sample.

        >>> TrainJobOptions().scores_test(replay=False), TrainJobOptions().scores_test(replay=True)
        (True, False)
        >>> TrainJobOptions(score_test=True).scores_test(replay=True)
        True
        """
        return self.score_test if self.score_test is not None else not replay

    def uses_replay(self, *, serving: bool) -> bool:
        """Whether this job trains on a replay sample, given whether a model is in service.

        >>> options = TrainJobOptions()
        >>> options.uses_replay(serving=True), options.uses_replay(serving=False)
        (True, False)
        >>> TrainJobOptions(retrain_data="full").uses_replay(serving=True)
        False
        """
        return (
            serving
            and self.start_from == START_FROM_SERVING
            and self.retrain_data != RETRAIN_DATA_FULL
        )

    def trains_first_model(self, *, serving: str | None) -> bool:
        """Whether the job starts with the quick first model (see ``first_model``).

        >>> TrainJobOptions().trains_first_model(serving=None)
        True
        >>> TrainJobOptions(first_model=False).trains_first_model(serving=None)
        False
        >>> TrainJobOptions().trains_first_model(serving="v1")
        False
        """
        return self.wants_preliminary(serving=serving) and self.first_model is not False

    def preliminary_steps(self, *, first_model: bool) -> int | None:
        """The step of the job's own recipe with a preliminary version; None: no such step.

        >>> TrainJobOptions().preliminary_steps(first_model=True) is None
        True
        >>> TrainJobOptions().preliminary_steps(first_model=False)
        120
        >>> TrainJobOptions(preliminary_after_steps=5).preliminary_steps(first_model=True)
        5
        """
        chosen = self.preliminary_after_steps
        if chosen is not None:
            return chosen
        return None if first_model else DEFAULT_PRELIMINARY_AFTER_STEPS

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}

    @classmethod
    def from_json(cls, content: dict[str, Any], *, job_id: int | None = None) -> TrainJobOptions:
        where = options_where(job_id)
        check_known_options(cls, content, where)
        options = cls(**content)
        if options.start_from not in START_POINTS:
            raise JobOptionsError(
                f"start_from={options.start_from!r} is unknown",
                where=where,
                fix=f"use {' or '.join(START_POINTS)}",
            )
        _check_count(
            "preliminary_after_steps", options.preliminary_after_steps, "training steps", where
        )
        for name in ("preliminary", "first_model", "override", "score_test"):
            _check_flag(name, getattr(options, name), where)
        options._check_retrain_data(where)
        return options

    def _check_retrain_data(self, where: str) -> None:
        data, sentences, seed = self.retrain_data, self.replay_sentences, self.replay_seed
        if data is not None and data not in RETRAIN_DATA_CHOICES:
            raise JobOptionsError(
                f"retrain_data={data!r} is unknown",
                where=where,
                fix=f"use {' or '.join(RETRAIN_DATA_CHOICES)}, or leave it out (replay for a "
                "retrain from the model in service)",
            )
        if data == RETRAIN_DATA_REPLAY and self.start_from != START_FROM_SERVING:
            raise JobOptionsError(
                f"retrain_data='replay' continues the model in service, but start_from="
                f"{self.start_from!r}",
                where=where,
                fix="use start_from=serving, or retrain_data=full (or leave it out) for a "
                "training from the encoder",
            )
        _check_count("replay_sentences", sentences, "base sentences", where)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise JobOptionsError(
                f"replay_seed={seed!r} is not a whole number",
                where=where,
                fix="give a whole number as the seed, or leave it out",
            )
        replay_only = " and ".join(
            name for name, value in (("replay_sentences", sentences), ("replay_seed", seed))
            if value is not None
        )  # fmt: skip
        full = (
            "retrain_data=full trains on the whole base split"
            if data == RETRAIN_DATA_FULL
            else "a training from the encoder trains on the full data"
            if self.start_from != START_FROM_SERVING
            else None
        )
        if replay_only and full:
            raise JobOptionsError(
                f"{replay_only} set for a job that replays nothing: {full}",
                where=where,
                fix=f"leave {replay_only} out, or use retrain_data=replay with start_from=serving",
            )


def options_where(job_id: int | None) -> str:
    """How an options error names its job: ``job 7``, or ``job options`` before it has one."""
    return f"job {job_id}" if job_id is not None else "job options"


def check_known_options(options_class: type, content: dict[str, Any], where: str) -> None:
    """Refuse stored options that ``options_class`` (a dataclass) has no field for."""
    fields = options_class.__dataclass_fields__  # type: ignore[attr-defined]
    unknown = sorted(set(content) - set(fields))
    if unknown:
        raise JobOptionsError(
            f"unknown option(s) {', '.join(unknown)}",
            where=where,
            fix=f"use only {', '.join(fields)}",
        )


@dataclass(frozen=True)
class Progress:
    """Where a running job is; stored as JSON in ``jobs.progress``."""

    phase: str = "preparing"  # preparing, training, evaluating, saving
    epoch: int = 0
    epochs: int = 0
    step: int = 0  # steps done over all epochs
    total_steps: int = 0
    loss: float | None = None
    dev_f1: float | None = None  # best so far
    eta_s: float | None = None
    epoch_history: tuple[dict[str, Any], ...] = ()  # {"epoch", "loss", "dev_f1", "seconds"}

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0

    def to_json(self) -> dict[str, Any]:
        content = dataclasses.asdict(self)
        content["epoch_history"] = list(self.epoch_history)
        return content

    @classmethod
    def from_json(cls, content: dict[str, Any] | None) -> Progress:
        if not content:
            return cls()
        known = {name: content[name] for name in cls.__dataclass_fields__ if name in content}
        known["epoch_history"] = tuple(known.get("epoch_history", ()))
        return cls(**known)


@dataclass(frozen=True)
class Job:
    """One row of ``jobs``."""

    id: int
    kind: str
    status: JobStatus
    options: dict[str, Any]
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker: str | None
    device: str | None
    progress: Progress
    cancel_requested: bool
    error: str | None
    message: str | None
    log_file: str | None
    model_version: str | None
    correction_ids: tuple[int, ...] | None

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def duration_s(self, now: datetime | None = None) -> float | None:
        """Seconds from start to finish (or to ``now`` while it runs)."""
        if self.started_at is None:
            return None
        end = self.finished_at or now or utc_now()
        return (end - self.started_at).total_seconds()

    def describe(self) -> str:
        """One line for the app, e.g. ``job 4 (running since 12:03 UTC on GPU: ...)``."""
        if self.status == JobStatus.RUNNING and self.started_at is not None:
            where = f" on {self.device}" if self.device else ""
            return f"job {self.id} (running since {self.started_at:%H:%M} UTC{where})"
        if self.status == JobStatus.QUEUED:
            return f"job {self.id} (queued at {self.created_at:%H:%M} UTC, waiting for a worker)"
        ended = self.finished_at or self.created_at
        return f"job {self.id} ({self.status} at {ended:%H:%M} UTC)"


@dataclass(frozen=True)
class EnqueueResult:
    """What :meth:`JobQueue.enqueue` did: ``created`` False means it refused, and why
    (``job`` is then the job in the way, if a job is)."""

    job: Job | None
    created: bool
    message: str


def _job_from_row(row: RowMapping) -> Job:
    ids = row["correction_ids"]
    return Job(
        id=row["id"],
        kind=row["kind"],
        status=JobStatus(row["status"]),
        options=dict(row["options"] or {}),
        requested_by=row["requested_by"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        heartbeat_at=row["heartbeat_at"],
        worker=row["worker"],
        device=row["device"],
        progress=Progress.from_json(row["progress"]),
        cancel_requested=bool(row["cancel_requested"]),
        error=row["error"],
        message=row["message"],
        log_file=row["log_file"],
        model_version=row["model_version"],
        correction_ids=None if ids is None else tuple(ids),
    )


class JobQueue:
    """The job table and its transitions; every method is one short transaction."""

    def __init__(self, database: Database, *, clock: Clock = utc_now) -> None:
        self.database = database
        self.clock = clock

    # -- reading -----------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        with self.database.read() as connection:
            return self._get(connection, job_id)

    @staticmethod
    def _get(connection: Connection, job_id: int) -> Job:
        row = connection.execute(select(jobs_table).where(jobs_table.c.id == job_id)).first()
        if row is None:
            raise JobNotFoundError(f"no job has id {job_id}; refresh the list of jobs")
        return _job_from_row(row._mapping)

    def active_job(self) -> Job | None:
        """The queued or running job, if any (there is never more than one)."""
        with self.database.read() as connection:
            return self._active(connection)

    @staticmethod
    def _active(connection: Connection) -> Job | None:
        row = connection.execute(select(jobs_table).where(jobs_table.c.active == 1)).first()
        return None if row is None else _job_from_row(row._mapping)

    def jobs(self, *, limit: int = 50) -> list[Job]:
        """The most recent jobs, newest first."""
        query = select(jobs_table).order_by(jobs_table.c.id.desc()).limit(limit)
        with self.database.read() as connection:
            return [_job_from_row(row._mapping) for row in connection.execute(query)]

    def loss_curve(self, job_id: int) -> list[tuple[int, int, float]]:
        """``(step, epoch, loss)`` for every step the job reported, in order."""
        query = (
            select(job_losses_table.c.step, job_losses_table.c.epoch, job_losses_table.c.loss)
            .where(job_losses_table.c.job_id == job_id)
            .order_by(job_losses_table.c.step)
        )
        with self.database.read() as connection:
            return [(row.step, row.epoch, row.loss) for row in connection.execute(query)]

    # -- enqueueing and claiming ----------------------------------------------------

    def enqueue(
        self,
        *,
        kind: str = JOB_KIND_TRAIN,
        options: dict[str, Any] | None = None,
        requested_by: str = "app",
    ) -> EnqueueResult:
        """Queue a job, or refuse (``created=False``) while another is queued or running."""
        for _ in range(3):
            try:
                with self.database.write() as connection:
                    job_id = connection.execute(
                        insert(jobs_table)
                        .values(
                            kind=kind,
                            status=JobStatus.QUEUED.value,
                            active=1,
                            options=options or {},
                            requested_by=requested_by,
                            created_at=self.clock(),
                            cancel_requested=False,
                        )
                        .returning(jobs_table.c.id)
                    ).scalar_one()
                    job = self._get(connection, job_id)
                return EnqueueResult(job, True, f"Queued job {job.id}.")
            except IntegrityError:
                # The unique `active` column refused a second active job.
                existing = self.active_job()
                if existing is not None:
                    return EnqueueResult(
                        existing,
                        False,
                        f"Nothing was queued: {existing.describe()} is already "
                        "queued or running. Wait for it to finish or cancel it first.",
                    )
                # It finished between our INSERT and our look: try again.
        raise RuntimeError("could not queue a job after 3 tries; the jobs table is very busy")

    def claim(self, worker: str, *, device: str) -> Job | None:
        """Take the oldest queued job for ``worker``; None if there is none (or another won)."""
        now = self.clock()
        query = (
            select(jobs_table.c.id)
            .where(jobs_table.c.status == JobStatus.QUEUED.value)
            .order_by(jobs_table.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        with self.database.write() as connection:
            job_id = connection.execute(query).scalar()
            if job_id is None:
                return None
            claimed = connection.execute(
                update(jobs_table)
                .where(jobs_table.c.id == job_id, jobs_table.c.status == JobStatus.QUEUED.value)
                .values(
                    status=JobStatus.RUNNING.value,
                    started_at=now,
                    heartbeat_at=now,
                    worker=worker,
                    device=device,
                    progress=Progress().to_json(),
                )
            ).rowcount
            return self._get(connection, job_id) if claimed == 1 else None

    # -- while running ---------------------------------------------------------------

    def record_inputs(
        self, job_id: int, *, correction_ids: Sequence[int] | None = None, log_file: str | None
    ) -> None:
        values: dict[str, Any] = {"log_file": log_file}
        if correction_ids is not None:
            values["correction_ids"] = list(correction_ids)
        with self.database.write() as connection:
            connection.execute(update(jobs_table).where(jobs_table.c.id == job_id).values(values))

    def heartbeat(
        self,
        job_id: int,
        worker: str,
        *,
        progress: Progress | None = None,
        loss_point: tuple[int, int, float] | None = None,
    ) -> JobSignal:
        """Say the job is alive (with progress, optionally); hear whether to go on."""
        values: dict[str, Any] = {"heartbeat_at": self.clock()}
        if progress is not None:
            values["progress"] = progress.to_json()
        with self.database.write() as connection:
            updated = connection.execute(
                update(jobs_table)
                .where(
                    jobs_table.c.id == job_id,
                    jobs_table.c.status == JobStatus.RUNNING.value,
                    jobs_table.c.worker == worker,
                )
                .values(values)
            ).rowcount
            if updated != 1:
                return JobSignal.LOST
            if loss_point is not None:
                step, epoch, loss = loss_point
                # Delete, then insert: a portable upsert (a step may be reported twice).
                connection.execute(
                    delete(job_losses_table).where(
                        job_losses_table.c.job_id == job_id, job_losses_table.c.step == step
                    )
                )
                connection.execute(
                    insert(job_losses_table).values(
                        job_id=job_id, step=step, epoch=epoch, loss=loss
                    )
                )
            cancel = connection.execute(
                select(jobs_table.c.cancel_requested).where(jobs_table.c.id == job_id)
            ).scalar()
            return JobSignal.CANCEL if cancel else JobSignal.CONTINUE

    def request_cancel(self, job_id: int) -> Job:
        """Cancel a queued job at once; ask a running one to stop after its current step."""
        now = self.clock()
        with self.database.write() as connection:
            job = self._get(connection, job_id)
            if job.status == JobStatus.QUEUED:
                self._finish(
                    connection,
                    job_id,
                    JobStatus.CANCELLED,
                    now,
                    message="Cancelled before it started.",
                    from_status=JobStatus.QUEUED,
                )
            elif job.status == JobStatus.RUNNING:
                connection.execute(
                    update(jobs_table)
                    .where(jobs_table.c.id == job_id)
                    .values(cancel_requested=True)
                )
            return self._get(connection, job_id)

    def finish(
        self, job_id: int, status: JobStatus, *, worker: str | None = None, **outcome: str | None
    ) -> bool:
        """End a running job; False when it was no longer running (or not ``worker``'s).

        ``outcome``: ``error``, ``message`` and ``model_version``, as the row keeps them.
        """
        if status not in FINAL_STATUSES:
            raise ValueError(f"finish() takes a final status, not {status!r}")
        with self.database.write() as connection:
            return self._finish(connection, job_id, status, self.clock(), worker=worker, **outcome)

    @staticmethod
    def _finish(
        connection: Connection,
        job_id: int,
        status: JobStatus,
        now: datetime,
        *,
        worker: str | None = None,
        error: str | None = None,
        message: str | None = None,
        model_version: str | None = None,
        from_status: JobStatus = JobStatus.RUNNING,
    ) -> bool:
        conditions = [jobs_table.c.id == job_id, jobs_table.c.status == from_status.value]
        if worker is not None:
            conditions.append(jobs_table.c.worker == worker)
        values: dict[str, Any] = {
            "status": status.value,
            "active": None,
            "finished_at": now,
            "error": None if error is None else error[-MAX_ERROR_CHARS:],
            "message": message,
        }
        if model_version is not None:
            values["model_version"] = model_version
        result = connection.execute(update(jobs_table).where(*conditions).values(values))
        return result.rowcount == 1

    def reap_stale(
        self,
        *,
        stale_after_s: float = STALE_AFTER_S,
        is_gone: Callable[[str | None], bool] = worker_process_gone,
    ) -> list[Job]:
        """Mark failed every running job whose worker died; returns those jobs."""
        now = self.clock()
        cutoff = now - timedelta(seconds=stale_after_s)
        reaped: list[Job] = []
        with self.database.write() as connection:
            running = connection.execute(
                select(jobs_table).where(jobs_table.c.status == JobStatus.RUNNING.value)
            )
            for job in [_job_from_row(row._mapping) for row in running]:
                reason = _stale_reason(job, cutoff, is_gone)
                if reason is None:
                    continue
                self._finish(
                    connection,
                    job.id,
                    JobStatus.FAILED,
                    now,
                    error=f"{reason}. The model in service and all corrections are "
                    "unchanged; click Retrain to run the job again.",
                )
                reaped.append(self._get(connection, job.id))
        return reaped


def _stale_reason(job: Job, cutoff: datetime, is_gone: Callable[[str | None], bool]) -> str | None:
    if is_gone(job.worker):
        return f"The worker {job.worker} ended during the job (killed or crashed)"
    if job.heartbeat_at is None or job.heartbeat_at < cutoff:
        last = "never" if job.heartbeat_at is None else f"{job.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
        return f"The worker {job.worker} stopped responding (last heartbeat: {last})"
    return None


def _check_flag(name: str, value: object, where: str) -> None:
    """``value`` is None, True or False, else a :class:`JobOptionsError`."""
    if value is not None and not isinstance(value, bool):
        raise JobOptionsError(
            f"{name}={value!r} is not true or false",
            where=where,
            fix=f"give {name} as true or false, or leave it out",
        )


def _check_count(name: str, value: object, unit: str, where: str) -> None:
    """``value`` is None or a whole number of 1 or more, else a :class:`JobOptionsError`."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise JobOptionsError(
            f"{name}={value!r} is not a whole number of {unit}",
            where=where,
            fix=f"give a number of {unit} of 1 or more, or leave it out",
        )
    if value < 1:
        raise JobOptionsError(
            f"{name}={value} is below 1",
            where=where,
            fix=f"give a number of {unit} of 1 or more, or leave it out",
        )
