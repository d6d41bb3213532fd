"""The corrections store: validation, history, undo, delete, counts, export, durability.

Every test that takes ``store`` runs on SQLite and on PostgreSQL (tests/databases.py).
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from curation.corrections import (
    Correction,
    CorrectionFilter,
    CorrectionNotFoundError,
    CorrectionsStore,
    InvalidCorrectionError,
    SaveResult,
    file_source,
    sentence_key,
    text_source,
)
from curation.database import DB_URL_ENV, Database
from curation.jobs import JobQueue
from curation.registry import Registry
from tagger.bio import Sentence, parse_bio

START = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
WORDS = ("Chronic", "renal", "failure", "after", "lithium", ".")
GOLD = ("B-Disease", "I-Disease", "I-Disease", "O", "O", "O")
NONE = ("O",) * len(WORDS)


def ticking_clock() -> Callable[[], datetime]:
    """A clock one second later on every call, so times are distinct and predictable."""
    ticks = count()
    return lambda: START + timedelta(seconds=next(ticks))


@pytest.fixture
def store(database: Database) -> CorrectionsStore:
    return CorrectionsStore(database, clock=ticking_clock())


def save(store: CorrectionsStore, **overrides: Any) -> SaveResult:
    fields: dict[str, Any] = {
        "words": WORDS,
        "labels": GOLD,
        "predicted": NONE,
        "source": text_source("an abstract"),
        "sentence_index": 0,
        "model_version": "v1",
        "annotator": "ada",
    }
    fields.update(overrides)
    return store.save(**fields)


def test_save_keeps_every_field(store: CorrectionsStore) -> None:
    result = save(store)
    saved = result.correction
    assert isinstance(saved, Correction)
    assert (saved.words, saved.labels, saved.predicted) == (WORDS, GOLD, NONE)
    assert saved.source.startswith("text:")
    assert (saved.sentence_index, saved.model_version, saved.annotator) == (0, "v1", "ada")
    assert saved.created_at == START
    assert saved.current and result.repaired == 0 and result.replaced is None
    assert store.get(saved.id) == saved
    assert saved.span_texts() == ["Chronic renal failure"]


def test_the_sqlite_file_is_in_wal_mode_and_flushes_every_commit(tmp_path: Path) -> None:
    store = CorrectionsStore.open(data_dir=tmp_path)
    with store.database.read() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    with sqlite3.connect(tmp_path / "tagger.sqlite3") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_i_without_b_is_repaired_before_it_is_stored(store: CorrectionsStore) -> None:
    result = save(store, labels=("I-Disease", "I-Disease", "I-Disease", "O", "I-Disease", "O"))
    assert result.repaired == 2
    expected = ("B-Disease", "I-Disease", "I-Disease", "O", "B-Disease", "O")
    assert result.correction.labels == expected
    assert store.corrections()[0].labels == result.correction.labels


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"labels": ("B-Chemical", *GOLD[1:])}, "unknown"),
        ({"labels": GOLD[:-1]}, "5 labels for 6 words"),
        ({"predicted": ("X",) * len(WORDS)}, "prediction label 1 'X' is unknown"),
        ({"words": (), "labels": (), "predicted": ()}, "no words"),
        ({"words": ("two words", *WORDS[1:])}, "whitespace"),
        ({"annotator": "  "}, "annotator is empty"),
        ({"source": ""}, "source is empty"),
        ({"sentence_index": -1}, "non-negative"),
    ],
)
def test_invalid_corrections_are_refused_and_nothing_is_stored(
    store: CorrectionsStore, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidCorrectionError, match=message):
        save(store, **overrides)
    assert store.count(current_only=False) == 0


def test_same_sentence_twice_keeps_latest_current_and_history(store: CorrectionsStore) -> None:
    first = save(store, labels=("B-Disease", "I-Disease", "O", "O", "O", "O")).correction
    second = save(store, annotator="bo")
    assert second.replaced == first.id
    current = store.current()
    assert [c.id for c in current] == [second.correction.id]
    assert current[0].labels == GOLD
    history = store.history(first.sentence_key)
    assert [(c.id, c.current) for c in history] == [(first.id, False), (second.correction.id, True)]
    assert store.count() == 1
    assert store.count(current_only=False) == 2


def test_the_same_words_from_another_source_is_another_sentence(store: CorrectionsStore) -> None:
    save(store)
    save(store, source=file_source("test.tsv"), sentence_index=7)
    assert store.count() == 2
    assert sentence_key("a", 0, WORDS) != sentence_key("a", 1, WORDS)


def test_undo_removes_the_last_save_and_restores_the_previous_version(
    store: CorrectionsStore,
) -> None:
    first = save(store, labels=("B-Disease",) + ("O",) * 5).correction
    second = save(store).correction
    undone = store.undo_last()
    assert undone is not None and undone.id == second.id
    assert [(c.id, c.labels, c.current) for c in store.current()] == [
        (first.id, first.labels, True)
    ]
    assert store.undo_last() is not None
    assert store.undo_last() is None
    assert store.count(current_only=False) == 0


def test_undo_for_one_annotator_leaves_the_others(store: CorrectionsStore) -> None:
    mine = save(store, annotator="ada").correction
    save(store, annotator="bo", sentence_index=1)
    undone = store.undo_last(annotator="ada")
    assert undone is not None and undone.id == mine.id
    assert [c.annotator for c in store.corrections()] == ["bo"]


def test_delete_one_and_ids_are_never_reused(store: CorrectionsStore) -> None:
    first = save(store).correction
    second = save(store, sentence_index=1).correction
    assert store.delete(second.id) == second
    with pytest.raises(CorrectionNotFoundError, match=f"no correction has id {second.id}"):
        store.delete(second.id)
    third = save(store, sentence_index=2).correction
    assert third.id > second.id
    assert [c.id for c in store.corrections()] == [first.id, third.id]


def test_filters(store: CorrectionsStore) -> None:
    save(store)  # 12:00:00, v1, ada
    save(
        store,
        words=("Fever", "."),
        labels=("B-Disease", "O"),
        predicted=("O", "O"),
        source=file_source("Upload_50%.tsv"),
        model_version="v2",
        annotator="Bo",
    )
    save(store, labels=NONE)  # replaces the first: history, not current

    def texts(where: CorrectionFilter) -> list[str]:
        return [c.text for c in store.corrections(where)]

    assert texts(CorrectionFilter(text="fever")) == ["Fever ."]
    assert texts(CorrectionFilter(source="50%")) == ["Fever ."]
    assert texts(CorrectionFilter(source="_")) == ["Fever ."]
    assert texts(CorrectionFilter(annotator="bo")) == ["Fever ."]
    assert texts(CorrectionFilter(model_version="v1")) == [" ".join(WORDS)]
    assert len(texts(CorrectionFilter(model_version="v1", current_only=False))) == 2
    assert texts(CorrectionFilter(since=START + timedelta(seconds=1))) == [" ".join(WORDS)]


def test_counts_since_a_time_or_a_model_version(store: CorrectionsStore) -> None:
    save(store, model_version="v1")
    save(store, model_version="v2", sentence_index=1)
    save(store, model_version="v2", sentence_index=2)
    assert store.count() == 3
    assert store.count(model_version="v2") == 2
    assert store.count(since=START) == 2  # strictly after the first save
    assert store.count(since=START + timedelta(hours=1)) == 0
    with pytest.raises(InvalidCorrectionError, match="no time zone"):
        store.count(since=datetime(2025, 1, 1))


def test_current_up_to_an_id_ignores_later_saves(store: CorrectionsStore) -> None:
    first = save(store, labels=("B-Disease",) + ("O",) * 5).correction
    save(store)  # a newer version of the same sentence, saved "while a job runs"
    save(store, sentence_index=1)
    as_of_first = store.current(up_to_id=first.id)
    assert [(c.id, c.current) for c in as_of_first] == [(first.id, True)]
    assert [s.labels for s in store.training_sentences(up_to_id=first.id)] == [first.labels]
    assert store.last_id() == first.id + 2


def test_export_reads_back_identically(store: CorrectionsStore) -> None:
    assert store.export_bio() == ""
    save(store, labels=("O",) * 6)
    save(store)  # replaces the all-O version
    save(
        store,
        words=("Ménière", "'s", "disease"),
        labels=("B-Disease", "I-Disease", "I-Disease"),
        predicted=("O", "O", "O"),
        sentence_index=3,
    )
    exported = store.export_bio()
    expected = [
        Sentence(WORDS, GOLD),
        Sentence(("Ménière", "'s", "disease"), ("B-Disease", "I-Disease", "I-Disease")),
    ]
    read_back = parse_bio(exported)
    assert [(s.words, s.labels) for s in read_back] == [(s.words, s.labels) for s in expected]
    assert [(s.words, s.labels) for s in store.training_sentences()] == [
        (s.words, s.labels) for s in expected
    ]
    assert exported.endswith("\n\n")


def test_a_second_store_on_the_same_file_sees_every_save(tmp_path: Path) -> None:
    writer = CorrectionsStore.open(data_dir=tmp_path)
    save(writer)
    reader = CorrectionsStore.open(data_dir=tmp_path)
    assert [c.words for c in reader.corrections()] == [WORDS]


def _save_then_die(data_dir: str) -> None:
    store = CorrectionsStore.open(data_dir=data_dir)
    save(store, sentence_index=1)
    import os

    os._exit(0)  # no clean shutdown: the save must already be durable


def test_a_save_survives_the_process_that_made_it_dying(tmp_path: Path) -> None:
    CorrectionsStore.open(data_dir=tmp_path)
    process = multiprocessing.get_context("spawn").Process(
        target=_save_then_die, args=(str(tmp_path),)
    )
    process.start()
    process.join(timeout=60)
    assert process.exitcode == 0
    assert [c.sentence_index for c in CorrectionsStore.open(data_dir=tmp_path).corrections()] == [1]


def test_open_follows_the_database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DB_URL_ENV, raising=False)
    default = CorrectionsStore.open(data_dir=tmp_path / "app")
    assert default.database.url == f"sqlite:///{tmp_path / 'app' / 'tagger.sqlite3'}"

    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    explicit = CorrectionsStore.open(url, data_dir=tmp_path / "app")
    assert explicit.database.url == url

    monkeypatch.setenv(DB_URL_ENV, url)
    from_env = CorrectionsStore.open(data_dir=tmp_path / "app")
    save(explicit)
    assert [c.words for c in from_env.corrections()] == [WORDS]


def test_corrections_jobs_and_registry_share_one_database(
    database: Database,
    tmp_path: Path,
) -> None:
    store = CorrectionsStore(database)
    JobQueue(database)
    Registry(database, tmp_path / "models")
    saved = save(store).correction
    reopened = CorrectionsStore.open(database.url)
    assert reopened.get(saved.id) == saved
    with database.read() as connection:
        tables = set(database.engine.dialect.get_table_names(connection))
    assert {"corrections", "jobs", "model_versions", "serving", "alembic_version"} <= tables


def test_concurrent_saves_all_land(database: Database) -> None:
    stores = [CorrectionsStore(Database(database.engine, database.url)) for _ in range(4)]
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
    corrections = CorrectionsStore(database).corrections()
    assert len(corrections) == 20
    assert sorted(c.labels for c in corrections) == [GOLD] * 20


def test_a_failed_save_leaves_nothing_behind(
    store: CorrectionsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    save(store)

    def fail_after_insert(*args: object) -> None:
        raise OSError("disk vanished")

    # The read-back happens inside the insert's transaction, after the INSERT ran.
    monkeypatch.setattr(store, "_fetch_one", fail_after_insert)
    with pytest.raises(OSError, match="disk vanished"):
        save(store, sentence_index=5)
    monkeypatch.undo()
    every_row = store.corrections(CorrectionFilter(current_only=False))
    assert [c.sentence_index for c in every_row] == [0]


def test_text_source_is_stable_and_distinct() -> None:
    assert text_source("abc") == text_source("abc")
    assert text_source("abc") != text_source("abd")
    assert text_source("abc").startswith("text:")


def test_save_many_is_one_transaction_with_its_caller(store: CorrectionsStore) -> None:
    from curation.corrections import NewCorrection

    def sentence(index: int, labels: tuple[str, ...] = GOLD) -> NewCorrection:
        return NewCorrection(WORDS, labels, NONE, "collection:c/1", index, "v1", "ada")

    def refuse(_connection: object) -> None:
        raise RuntimeError("the caller's own write failed")

    with pytest.raises(RuntimeError, match="caller's own write"):
        store.save_many([sentence(0), sentence(1)], within=refuse)
    with pytest.raises(InvalidCorrectionError, match="unknown"):
        store.save_many([sentence(0), sentence(1, ("X",) * len(WORDS))])
    assert store.count(current_only=False) == 0

    saved = store.save_many([sentence(0), sentence(1)])
    assert [result.correction.sentence_index for result in saved] == [0, 1]
    assert [c.id for c in store.current()] == [result.correction.id for result in saved]
