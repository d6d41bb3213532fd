"""A damaged or busy SQLite database is a clear message, never a traceback or a lost save.

- damaged header (the first bytes overwritten): opening refuses with the file, the word
  "damaged" and the one restore command; the app's pages that do not need the store
  keep working (Tag), those that do show that one error;
- damage in the middle (a page of a file of several hundred rows): ``PRAGMA
  quick_check`` on open finds it, and every write is refused with the same message
  (today a save reported success there while listing and export failed);
- a save succeeds only after its row is read back in a separate read;
- another process holding the lock: the store retries for a bounded time, then says
  the database is busy (the store's half; the Correct page's half is in
  tests/test_app_correct.py).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from curation.corrections import CorrectionsStore
from curation.database import (
    BUSY_RETRY_ENV,
    DEFAULT_DB_FILE,
    Database,
    DatabaseBusyError,
    DatabaseDamagedError,
    DatabaseError,
)
from tests.app_fakes import make_app, shown

RESTORE_COMMAND = "python -m curation.backup restore"


def save(store: CorrectionsStore, index: int, words: tuple[str, ...] = ("Fever", ".")) -> int:
    result = store.save(
        words=[*words[:-1], f"w{index}", words[-1]],
        labels=["B-Disease"] + ["O"] * len(words),
        predicted=["O"] * (len(words) + 1),
        source="file:cases.tsv",
        sentence_index=index,
        model_version="v1",
        annotator="ada",
    )
    return result.correction.id


def damage_header(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.write(b"\x00" * 100)


def damage_a_middle_page(path: Path) -> None:
    """Overwrite most of one page in the middle of the file (its first 100 bytes kept)."""
    with sqlite3.connect(path) as connection:
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
    connection.close()
    with open(path, "r+b") as handle:
        handle.seek(page_size * (pages // 2) + 100)
        handle.write(b"\xff" * (page_size - 100))


@contextmanager
def locked(path: Path) -> Iterator[sqlite3.Connection]:
    """A second connection, as another process would hold it: ``BEGIN EXCLUSIVE``."""
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield other
    finally:
        other.execute("ROLLBACK")
        other.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    store = CorrectionsStore.open(data_dir=folder)
    for index in range(3):
        save(store, index)
    store.database.dispose()
    return folder


# -- the store ---------------------------------------------------------------------


def test_a_damaged_header_is_refused_with_the_file_and_the_restore_command(
    data_dir: Path,
) -> None:
    damage_header(data_dir / DEFAULT_DB_FILE)
    with pytest.raises(DatabaseDamagedError) as raised:
        CorrectionsStore.open(data_dir=data_dir)
    message = str(raised.value)
    assert str(data_dir / DEFAULT_DB_FILE) in message and "damaged" in message
    assert f"{RESTORE_COMMAND} --app-data-dir {data_dir}" in message


def test_damage_in_the_middle_is_found_on_open_and_every_write_is_refused(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "data"
    store = CorrectionsStore.open(data_dir=folder)
    for index in range(400):
        save(store, index, words=("Chronic", "renal", "failure", "in", "many", "patients", "."))
    store.database.dispose()
    damage_a_middle_page(folder / DEFAULT_DB_FILE)

    damaged = CorrectionsStore.open(data_dir=folder)  # opens: reads that still work may work
    assert damaged.database.damaged
    with pytest.raises(DatabaseDamagedError) as raised:
        save(damaged, 1000)
    assert "damaged" in str(raised.value) and RESTORE_COMMAND in str(raised.value)
    with pytest.raises(DatabaseDamagedError):
        damaged.undo_last()
    for read in (damaged.corrections, damaged.export_bio, damaged.count):
        try:
            read()
        except DatabaseError as error:  # a clear error, never sqlite3's own
            assert "damaged" in str(error)


def test_a_save_succeeds_only_once_a_separate_read_finds_it(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CorrectionsStore.open(data_dir=data_dir)

    @contextmanager
    def unreadable() -> Iterator[None]:
        raise DatabaseDamagedError("the file cannot be read")
        yield

    monkeypatch.setattr(store.database, "read", unreadable)
    with pytest.raises(DatabaseError):
        save(store, 7)


def test_a_locked_database_is_retried_then_reported_busy(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BUSY_RETRY_ENV, "1.5")
    store = CorrectionsStore.open(data_dir=data_dir)
    busy_calls: list[int] = []
    with locked(data_dir / DEFAULT_DB_FILE):
        started = time.monotonic()
        with pytest.raises(DatabaseBusyError) as raised:
            store.save(
                words=["Fever", "."],
                labels=["B-Disease", "O"],
                predicted=["O", "O"],
                source="file:cases.tsv",
                sentence_index=99,
                model_version="v1",
                annotator="ada",
                on_busy=lambda: busy_calls.append(1),
            )
        waited = time.monotonic() - started
        assert store.count() == 3  # reads go on while another process writes
    assert 1.4 <= waited < 6.0
    assert busy_calls, "the caller is told that the save is being retried"
    assert "busy" in str(raised.value) and "another process holds its lock" in str(raised.value)
    assert save(store, 99) == 4  # the lock is gone: the same save goes through


def test_a_lock_released_while_retrying_lets_the_save_through(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BUSY_RETRY_ENV, "20")
    store = CorrectionsStore.open(data_dir=data_dir)
    other = sqlite3.connect(
        data_dir / DEFAULT_DB_FILE, isolation_level=None, timeout=0, check_same_thread=False
    )
    other.execute("BEGIN EXCLUSIVE")
    releaser = threading.Timer(2.5, lambda: other.execute("ROLLBACK"))
    releaser.start()
    try:
        assert save(store, 50) == 4
    finally:
        releaser.join()
        other.close()


def test_a_database_replaced_by_a_restore_is_reopened(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    database = Database.open(data_dir=folder)
    store = CorrectionsStore(database)
    save(store, 0)
    fresh = tmp_path / "fresh"
    copy = CorrectionsStore.open(data_dir=fresh)
    for index in range(5):
        save(copy, index)
    copy.database.dispose()
    live = folder / DEFAULT_DB_FILE
    for tail in ("-wal", "-shm"):  # as the restore does: the old file's WAL goes with it
        Path(f"{live}{tail}").replace(tmp_path / f"old{tail}")
    (fresh / DEFAULT_DB_FILE).replace(live)
    assert store.count() == 5


# -- the app -----------------------------------------------------------------------


@pytest.fixture
def damaged_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> AppTest:
    damage_header(data_dir / DEFAULT_DB_FILE)
    return make_app(tmp_path, monkeypatch).run()


def test_tag_page_tags_and_the_sidebar_says_the_store_is_unavailable(
    damaged_app: AppTest, data_dir: Path
) -> None:
    app = damaged_app
    assert not app.exception
    sidebar = shown(" ".join(w.value for w in app.sidebar.warning))
    assert "corrections store is unavailable" in sidebar and "damaged" in sidebar
    assert RESTORE_COMMAND in sidebar
    app.text_area(key="tag_text").input("The patient had fever.")
    app.button[0].click().run()
    assert not app.exception
    assert "fever" in app.dataframe[0].value["mention"].tolist()


@pytest.mark.parametrize(
    "page", ["app/page_correct.py", "app/page_corrections.py", "app/page_training.py"]
)
def test_pages_that_need_the_store_show_one_clear_error(
    damaged_app: AppTest, data_dir: Path, page: str
) -> None:
    app = damaged_app.switch_page(page).run()
    assert not app.exception
    errors = [shown(e.value) for e in app.main.error]
    assert len(errors) == 1, errors
    assert str(data_dir / DEFAULT_DB_FILE) in errors[0] and "damaged" in errors[0]
    assert f"{RESTORE_COMMAND} --app-data-dir {data_dir.resolve()}" in errors[0]
