"""Checks only a real PostgreSQL server can make (Debian's packages, a throwaway cluster).

Every store test already runs on PostgreSQL too (the ``database`` fixture of
tests/databases.py is parametrized over both backends). Here: ``FOR UPDATE SKIP
LOCKED`` lets a second worker pass a job the first one holds, and two worker processes
racing for one job: exactly one wins. Skips, saying why, only where no server can be
started.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from sqlalchemy import select

from curation.database import Database
from curation.jobs import JobQueue, JobStatus
from curation.schema import jobs_table
from tests.conftest import REPO_ROOT


def test_skip_locked_lets_a_second_worker_pass_a_held_job(postgres_database: Database) -> None:
    database = postgres_database
    queue = JobQueue(database)
    job = queue.enqueue().job
    holder = database.engine.connect()
    transaction = holder.begin()
    try:
        held = holder.execute(
            select(jobs_table.c.id).where(jobs_table.c.id == job.id).with_for_update()
        ).scalar()
        assert held == job.id
        result: list[object] = []
        racer = threading.Thread(target=lambda: result.append(queue.claim("host:2", device="CPU")))
        started = time.monotonic()
        racer.start()
        racer.join(timeout=10)
        assert not racer.is_alive(), "claim blocked on a locked row instead of skipping it"
        assert result == [None]
        assert time.monotonic() - started < 5
    finally:
        transaction.rollback()
        holder.close()
    claimed = queue.claim("host:1", device="CPU")
    assert claimed is not None and claimed.id == job.id


CLAIM_SCRIPT = """
import sys, time
from curation.database import Database
from curation.jobs import JobQueue
queue = JobQueue(Database.open(sys.argv[1]))
start_at = float(sys.argv[2])
time.sleep(max(0.0, start_at - time.time()))
job = queue.claim(sys.argv[3], device="CPU")
print("won" if job is not None else "lost")
"""


def test_two_worker_processes_race_for_one_job_and_one_wins(
    postgres_database: Database,
) -> None:
    database = postgres_database
    queue = JobQueue(database)
    job = queue.enqueue().job
    start_at = f"{time.time() + 3.0:.3f}"  # both processes import, then claim together
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIM_SCRIPT, database.url, start_at, f"racer:{index}"],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(2)
    ]
    outcomes = []
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err
        outcomes.append(out.strip())
    assert sorted(outcomes) == ["lost", "won"]
    claimed = queue.get(job.id)
    assert claimed.status == JobStatus.RUNNING
    assert claimed.worker == f"racer:{outcomes.index('won')}"
