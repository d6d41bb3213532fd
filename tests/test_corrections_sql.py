"""The corrections store on SQLAlchemy: the same tests as the SQLite file store, and more.

Every store test of tests/test_corrections.py runs here again with the `store` fixture
on :class:`SqlAlchemyCorrectionsBackend` over a SQLite URL; tests/test_postgres.py
imports them from here once more with `database` pointing at a real PostgreSQL server.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_corrections import (  # noqa: F401
    GOLD,
    WORDS,
    save,
    test_a_failed_save_leaves_nothing_behind,
    test_an_i_without_b_is_repaired_before_it_is_stored,
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
    ticking_clock,
)
from training.corrections import (
    CorrectionsStore,
    SqlAlchemyCorrectionsBackend,
    SqliteCorrectionsBackend,
)
from training.db import DB_URL_ENV, Database
from training.jobs import JobQueue
from training.registry import Registry


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(f"sqlite:///{tmp_path / 'tagger.sqlite3'}")
    yield database
    database.dispose()


@pytest.fixture
def store(database: Database) -> CorrectionsStore:
    return CorrectionsStore.on_database(database, clock=ticking_clock())


def test_connect_follows_the_database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DB_URL_ENV, raising=False)
    default = CorrectionsStore.connect(data_dir=tmp_path / "app")
    assert isinstance(default.backend, SqliteCorrectionsBackend)
    assert default.backend.path == tmp_path / "app" / "corrections.sqlite3"

    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    explicit = CorrectionsStore.connect(url, data_dir=tmp_path / "app")
    assert isinstance(explicit.backend, SqlAlchemyCorrectionsBackend)
    assert explicit.backend.database.url == url

    monkeypatch.setenv(DB_URL_ENV, url)
    from_env = CorrectionsStore.connect(data_dir=tmp_path / "app")
    assert isinstance(from_env.backend, SqlAlchemyCorrectionsBackend)
    save(explicit)
    assert [c.words for c in from_env.corrections()] == [WORDS]


def test_corrections_jobs_and_registry_share_one_database(
    database: Database, tmp_path: Path
) -> None:
    store = CorrectionsStore.on_database(database)
    JobQueue(database)
    Registry(database, tmp_path / "models")
    saved = save(store).correction
    reopened = CorrectionsStore.connect(database.url)
    assert reopened.get(saved.id) == saved
    with database.read() as connection:
        tables = set(database.engine.dialect.get_table_names(connection))
    assert {"corrections", "jobs", "model_versions", "serving"} <= tables


def test_either_backend_reads_the_other_s_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "corrections.sqlite3"
    stdlib = CorrectionsStore.open(path)
    first = save(stdlib).correction
    database = Database.open(f"sqlite:///{path}")
    try:
        sql = CorrectionsStore.on_database(database)
        assert sql.get(first.id) == first
        second = save(sql, labels=("O",) * len(WORDS)).correction
        assert second.id == first.id + 1
        assert [(c.id, c.current) for c in stdlib.history(first.sentence_key)] == [
            (first.id, False),
            (second.id, True),
        ]
        assert stdlib.get(second.id) == second
    finally:
        database.dispose()


def test_concurrent_saves_all_land(database: Database) -> None:
    stores = [
        CorrectionsStore.on_database(Database(database.engine, database.url)) for _ in range(4)
    ]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def curate(store: CorrectionsStore, worker: int) -> None:
        barrier.wait()
        try:
            for index in range(5):
                save(store, sentence_index=worker * 10 + index, annotator=f"curator-{worker}")
        except BaseException as error:  # collected: a thread's exception is otherwise lost
            errors.append(error)

    threads = [
        threading.Thread(target=curate, args=(store, worker)) for worker, store in enumerate(stores)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    corrections = CorrectionsStore.on_database(database).corrections()
    assert len(corrections) == 20
    assert sorted(c.labels for c in corrections) == [GOLD] * 20
