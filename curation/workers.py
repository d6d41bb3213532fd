"""Worker liveness, in one place: who is training, and is that process still there.

Three signals, each for a different question:

- the **lock file** ``<data folder>/worker.lock``: one worker per app data folder on a
  machine (:func:`worker_lock`, freed by the OS on any exit). It names ``host:pid``
  before the worker imports TensorFlow, so :func:`worker_holds_lock` sees a worker
  that is still starting;
- the ``workers`` table (:class:`WorkerRoster`): every worker, on any machine, says
  it is alive while it polls;
- a running job's **heartbeat** (:func:`job_has_live_worker`): a worker busy with a
  long job beats there instead.

A ``host:pid`` on this machine whose process has ended (:func:`worker_process_gone`)
is dead whatever the others say: ``kill -9`` says no goodbye.

Example:

>>> import tempfile
>>> from curation.database import Database
>>> roster = WorkerRoster(Database.open(data_dir=tempfile.mkdtemp()))
>>> roster.seen(this_worker_id(), device="CPU")
>>> [worker.device for worker in roster.live()]
['CPU']
>>> worker_process_gone(f"{socket.gethostname()}:999999999")
True
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING

from sqlalchemy import delete, insert, select, update

from curation.database import Database, utc_now
from curation.schema import workers_table
from tagger.errors import TaggerError

if TYPE_CHECKING:
    from curation.jobs import JobQueue

Clock = Callable[[], datetime]
LOCK_FILE = "worker.lock"
STALE_AFTER_S = 60.0  # a running job without a heartbeat this long has lost its worker
WORKER_SEEN_WITHIN_S = 30.0


class WorkerLockedError(TaggerError, RuntimeError):
    """Another worker already serves this app data folder."""


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    host: str
    pid: int
    device: str
    started_at: datetime
    last_seen: datetime


def this_worker_id() -> str:
    """``host:pid``: enough to tell, on this host, whether the process is still alive."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is just not ours
    stat = Path(f"/proc/{pid}/stat")
    try:
        # A killed child its parent has not waited for yet is a zombie: dead all the same.
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def worker_process_gone(worker: str | None) -> bool:
    """True when ``worker`` (``host:pid``) names a process on this host that has ended."""
    if not worker or ":" not in worker:
        return False
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's worker: only its heartbeat can tell
    return not _process_alive(int(pid))


class WorkerRoster:
    """The ``workers`` table: who said they were alive, and when."""

    def __init__(self, database: Database, *, clock: Clock = utc_now) -> None:
        self.database = database
        self.clock = clock

    def seen(self, worker: str, *, device: str) -> None:
        """Record that ``worker`` is alive (a worker calls it on start and while polling)."""
        now = self.clock()
        host, _, pid = worker.rpartition(":")
        with self.database.write() as connection:
            updated = connection.execute(
                update(workers_table)
                .where(workers_table.c.id == worker)
                .values(last_seen=now, device=device)
            ).rowcount
            if not updated:
                connection.execute(
                    insert(workers_table).values(
                        id=worker,
                        host=host,
                        pid=int(pid) if pid.isdigit() else 0,
                        device=device,
                        started_at=now,
                        last_seen=now,
                    )
                )

    def left(self, worker: str) -> None:
        with self.database.write() as connection:
            connection.execute(delete(workers_table).where(workers_table.c.id == worker))

    def live(
        self,
        *,
        within_s: float = WORKER_SEEN_WITHIN_S,
        is_gone: Callable[[str | None], bool] = worker_process_gone,
    ) -> list[WorkerInfo]:
        """Workers seen in the last ``within_s`` seconds whose process is not known to be
        gone, most recent first."""
        cutoff = self.clock() - timedelta(seconds=within_s)
        query = (
            select(workers_table)
            .where(workers_table.c.last_seen >= cutoff)
            .order_by(workers_table.c.last_seen.desc())
        )
        with self.database.read() as connection:
            rows = [row._mapping for row in connection.execute(query)]
        workers = [
            WorkerInfo(**{key: row[key] for key in WorkerInfo.__dataclass_fields__}) for row in rows
        ]
        return [worker for worker in workers if not is_gone(worker.id)]


def job_has_live_worker(queue: JobQueue, *, within_s: float = STALE_AFTER_S) -> bool:
    """A running job with a recent heartbeat: its worker is alive, wherever it runs.

    A worker busy with a long job does not refresh its ``workers`` row, so
    :meth:`WorkerRoster.live` alone would miss it.
    """
    job = queue.active_job()
    if job is None or job.status != "running" or job.heartbeat_at is None:
        return False
    return job.heartbeat_at >= queue.clock() - timedelta(seconds=within_s)


def worker_holds_lock(data_dir: Path) -> bool:
    """True when a live worker on this machine holds ``<data_dir>/worker.lock``.

    Reading the file, rather than trying the lock, can never make a starting worker
    think another one holds it.
    """
    try:
        owner = (data_dir / LOCK_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return not worker_process_gone(owner)


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
                f"another worker holds {path}; it already serves {folder}",
                fix="stop that worker first, or give this one another --app-data-dir",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{this_worker_id()}\n")
        handle.flush()
        yield
    finally:
        handle.close()
