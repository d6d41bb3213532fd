"""Corrections, the job queue and the registry on a real PostgreSQL server (Debian's packages).

The tests of tests/test_jobs.py, tests/test_registry.py and the corrections store's
(tests/test_corrections_sql.py) run here again with the `database` fixture pointing at
a fresh database of a throwaway local cluster, plus
PostgreSQL-only checks: `FOR UPDATE SKIP LOCKED` lets a second worker pass a job the
first one holds, and two worker processes racing for one job: exactly one wins.
Skips, saying why, only where no server can be started.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from tests.conftest import REPO_ROOT
from tests.pg_server import PgServer, PgUnavailable, start_server

# The shared tests, collected again in this module with its `database` fixture.
from tests.test_corrections_sql import (  # noqa: F401
    store,
    test_a_failed_save_leaves_nothing_behind,
    test_an_i_without_b_is_repaired_before_it_is_stored,
    test_concurrent_saves_all_land,
    test_corrections_jobs_and_registry_share_one_database,
    test_counts_since_a_time_or_a_model_version,
    test_current_up_to_an_id_ignores_later_saves,
    test_delete_one_and_ids_are_never_reused,
    test_export_reads_back_identically,
    test_filters,
    test_invalid_corrections_are_refused_and_nothing_is_stored,
    test_same_sentence_twice_keeps_latest_current_and_history,
    test_save_keeps_every_field,
    test_the_same_words_from_another_source_is_another_sentence,
    test_undo_for_one_annotator_leaves_the_others,
    test_undo_removes_the_last_save_and_restores_the_previous_version,
)
from tests.test_jobs import (  # noqa: F401
    test_a_new_job_can_be_queued_once_the_last_one_finished,
    test_cancelling_a_queued_job_ends_it_at_once,
    test_cancelling_a_running_job_is_heard_by_its_next_heartbeat,
    test_claim_takes_the_queued_job_once,
    test_finish_refuses_a_non_final_status,
    test_heartbeat_records_progress_and_the_loss_curve,
    test_job_of_a_dead_worker_process_is_failed_at_once,
    test_live_workers_are_those_seen_recently,
    test_racing_workers_claim_one_job_exactly_once,
    test_second_enqueue_is_refused_with_the_reason,
    test_simultaneous_enqueues_make_exactly_one_job,
    test_stale_running_job_is_failed_by_heartbeat_age,
    test_unknown_job_id_says_so,
)
from tests.test_registry import (  # noqa: F401
    registry,
    test_add_version_writes_a_complete_folder_and_registers_it,
    test_another_process_sees_the_new_serving_version,
    test_candidate_keeps_the_serving_version_and_says_why,
    test_crash_while_writing_a_version_leaves_no_version,
    test_curator_promotes_any_version_and_rolls_back,
    test_damaged_version_is_never_promoted,
    test_half_written_folder_never_enters_the_registry,
    test_promoted_version_is_served_and_named_in_the_pointer_file,
    test_promotion_is_skipped_when_the_serving_version_changed_meanwhile,
    test_retrain_availability,
    test_unknown_version_cannot_be_promoted,
    test_versions_are_immutable,
)
from training.db import Database
from training.jobs import JobQueue, JobStatus, jobs_table

_database_names = (f"tagger_test_{n}" for n in itertools.count())


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PgServer]:
    try:
        server = start_server()
    except PgUnavailable as reason:
        pytest.skip(f"no PostgreSQL server could be started: {reason}")
    yield server
    server.stop()


@pytest.fixture
def database(pg_server: PgServer) -> Iterator[Database]:
    database = Database.open(pg_server.create_database(next(_database_names)))
    assert database.dialect == "postgresql"
    yield database
    database.dispose()


def test_skip_locked_lets_a_second_worker_pass_a_held_job(database: Database) -> None:
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
from training.db import Database
from training.jobs import JobQueue
queue = JobQueue(Database.open(sys.argv[1]))
start_at = float(sys.argv[2])
time.sleep(max(0.0, start_at - time.time()))
job = queue.claim(sys.argv[3], device="CPU")
print("won" if job is not None else "lost")
"""


def test_two_worker_processes_race_for_one_job_and_one_wins(database: Database) -> None:
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
