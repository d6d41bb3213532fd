"""Schema migrations on start-up, and the first start of an installation of two files.

The fixture ``tests/fixtures/legacy-install`` was written by the two-file code itself
(see its README): the first open of the one database must keep every correction (ids,
history, Unicode), every job and loss point, every version and the pointer.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from curation.database import Database, DatabaseError
from curation.migrate import IMPORTED_SUFFIX, head_revision, schema_revision, upgrade
from curation.schema import metadata
from curation.service import Curation
from tests.databases import postgres_url

LEGACY = Path(__file__).parent / "fixtures" / "legacy-install"


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    target = tmp_path / "install"
    shutil.copytree(LEGACY, target)
    return target


def legacy_rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT * FROM corrections ORDER BY id").fetchall()


def test_a_migrated_database_matches_the_schema_exactly(database: Database) -> None:
    assert schema_revision(database) == head_revision()
    with database.read() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def test_the_two_file_installation_keeps_every_row(legacy: Path) -> None:
    old_corrections = legacy_rows(legacy / "data" / "corrections.sqlite3")
    assert len(old_corrections) == 5  # six saves, one deleted

    curation = Curation.open(data_dir=legacy / "data", registry_dir=legacy / "models")

    assert not (legacy / "data" / "corrections.sqlite3").exists()
    kept = legacy / "data" / f"corrections.sqlite3{IMPORTED_SUFFIX}"
    assert legacy_rows(kept) == old_corrections  # set aside, never deleted
    assert legacy_rows(legacy / "data" / "tagger.sqlite3") == old_corrections
    current = curation.corrections.corrections()
    assert sorted(c.id for c in current) == [1, 3, 4, 5]  # 2 is history: 4 re-saved it
    resaved = curation.corrections.get(4)
    assert resaved is not None
    history = curation.corrections.history(resaved.sentence_key)
    assert [(c.id, c.annotator, c.current) for c in history] == [
        (2, "bob", False),
        (4, "ada", True),
    ]
    naive = curation.corrections.get(5)
    assert naive is not None and naive.words[0] == "Naïve" and naive.annotator == "çurator"

    jobs = curation.queue.jobs()
    assert [(job.id, job.status) for job in jobs] == [(2, "failed"), (1, "succeeded")]
    assert curation.queue.loss_curve(1) == [(1, 1, 0.75)]
    serving = curation.registry.serving()
    assert serving is not None and serving.version == "20261102-093000-aaaaaa"
    assert serving.correction_ids == (1, 2) and serving.test_f1 == 78.6
    assert [event.version for event in curation.registry.serving_history()] == [serving.version]

    saved = curation.corrections.save(
        words=["new"], labels=["O"], predicted=["O"], source="text:9", sentence_index=0,
        model_version=serving.version, annotator="ada",
    )
    assert saved.correction.id == 7  # the deleted id 6 never comes back


def test_a_second_start_imports_nothing_twice(legacy: Path) -> None:
    data = legacy / "data"
    Curation.open(data_dir=data, registry_dir=legacy / "models")
    # As if the rename had not happened (a crash right after the commit).
    shutil.copy(data / f"corrections.sqlite3{IMPORTED_SUFFIX}", data / "corrections.sqlite3")
    again = Curation.open(data_dir=data, registry_dir=legacy / "models")
    assert again.corrections.count(current_only=False) == 5


def test_conflicting_legacy_rows_stop_the_start_and_lose_nothing(legacy: Path) -> None:
    data = legacy / "data"
    with sqlite3.connect(data / "tagger.sqlite3") as connection:
        connection.execute(
            "CREATE TABLE corrections (id INTEGER PRIMARY KEY AUTOINCREMENT, sentence_key TEXT "
            "NOT NULL, source TEXT NOT NULL, sentence_index INTEGER NOT NULL, words TEXT NOT "
            "NULL, labels TEXT NOT NULL, predicted TEXT NOT NULL, model_version TEXT NOT NULL, "
            "annotator TEXT NOT NULL, created_at TEXT NOT NULL)"
        )
        connection.execute(
            "INSERT INTO corrections VALUES (1, 'k', 's', 0, '[\"x\"]', '[\"O\"]', '[\"O\"]', "
            "'v', 'eve', '2026-01-01T00:00:00.000000Z')"
        )
    with pytest.raises(DatabaseError, match="correction with id 1") as raised:
        Database.open(data_dir=data)
    assert "move" in str(raised.value) and "Fix:" in str(raised.value)
    assert len(legacy_rows(data / "corrections.sqlite3")) == 5  # still there, untouched


def test_legacy_corrections_move_into_postgresql_too(legacy: Path, pg_server: object) -> None:
    url = postgres_url(pg_server)  # type: ignore[arg-type]
    curation = Curation.open(db_url=url, data_dir=legacy / "data", registry_dir=legacy / "models")
    assert sorted(c.id for c in curation.corrections.corrections()) == [1, 3, 4, 5]
    saved = curation.corrections.save(
        words=["new"], labels=["O"], predicted=["O"], source="text:9", sentence_index=0,
        model_version="v", annotator="ada",
    )
    assert saved.correction.id == 7  # past every id the old file gave out (6 was deleted)


def test_a_database_from_a_newer_version_is_refused_with_the_fix(tmp_path: Path) -> None:
    database = Database.open(data_dir=tmp_path)
    with database.write() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(DatabaseError, match="newer version") as raised:
        upgrade(database)
    assert "update the tagger" in str(raised.value)


def test_processes_starting_at_once_migrate_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tagger.sqlite3'}"
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        try:
            Database.open(url).dispose()
        except BaseException as error:  # collected: a thread's exception is otherwise lost
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert schema_revision(Database.open(url, migrate=False)) == head_revision()
