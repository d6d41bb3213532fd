"""Rolling backups of the SQLite database and the one-command restore (curation.backup)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curation.backup import (
    BACKUP_EVERY_ENV,
    BACKUP_INTERVAL_ENV,
    BACKUP_KEEP_ENV,
    BackupPolicy,
    Backups,
)
from curation.corrections import CorrectionsStore
from curation.database import DEFAULT_DB_FILE, DatabaseDamagedError
from tests.conftest import REPO_ROOT
from tests.test_damaged_database import damage_header, save


def run_backup(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "curation.backup", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})},
    )


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(BACKUP_EVERY_ENV, "3")
    monkeypatch.setenv(BACKUP_KEEP_ENV, "2")
    monkeypatch.delenv(BACKUP_INTERVAL_ENV, raising=False)
    monkeypatch.delenv("TAGGER_DB_URL", raising=False)
    return tmp_path / "data"


def test_every_n_saves_a_backup_and_only_the_last_k_are_kept(data_dir: Path) -> None:
    store = CorrectionsStore.open(data_dir=data_dir)
    assert store.backups is not None and store.backups.policy == BackupPolicy(3, 2, 600.0)
    for index in range(2):
        save(store, index)
    assert store.backups.list() == []
    save(store, 2)
    (first,) = store.backups.list()
    assert first.parent == data_dir / "backups" and first.name.startswith("tagger-")
    for index in range(3, 9):
        save(store, index)
    kept = store.backups.list()
    assert len(kept) == 2 and first not in kept
    assert [p.name for p in (data_dir / "backups").iterdir()] != []  # no temporary left
    assert all(not p.name.endswith(".tmp") for p in (data_dir / "backups").iterdir())


def test_the_timer_backs_up_a_changed_database_at_most_every_interval(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BACKUP_EVERY_ENV, "1000")
    now = [1_000_000.0]
    store = CorrectionsStore.open(data_dir=data_dir)
    assert store.backups is not None
    backups = Backups(store.backups.database_file, store.backups.policy, clock=lambda: now[0])
    store.backups = backups
    save(store, 0)
    assert store.backup_if_due() is None  # not 10 minutes yet
    now[0] += 601
    made = store.backup_if_due()
    assert made is not None
    now[0] += 601
    assert store.backup_if_due() is None  # nothing changed since
    later = time.time() + 60  # the database changes after its newest backup
    os.utime(backups.database_file, (later, later))
    assert store.backup_if_due() is not None


def test_restore_brings_back_every_correction_up_to_the_last_backup(data_dir: Path) -> None:
    store = CorrectionsStore.open(data_dir=data_dir)
    for index in range(7):
        save(store, index)  # backups after the 3rd and the 6th save
    store.database.dispose()
    live = data_dir / DEFAULT_DB_FILE
    damage_header(live)
    with pytest.raises(DatabaseDamagedError):
        CorrectionsStore.open(data_dir=data_dir)

    done = run_backup("restore", "--app-data-dir", str(data_dir))
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 1 and "6 corrections" in done.stdout
    restored = CorrectionsStore.open(data_dir=data_dir)
    assert [c.sentence_index for c in restored.corrections()] == list(range(6))
    (aside,) = data_dir.glob(f"{DEFAULT_DB_FILE}.damaged-*")
    assert aside.read_bytes()[:100] == b"\x00" * 100  # kept as it was, never deleted
    save(restored, 6)  # usable again


def test_list_and_now(data_dir: Path) -> None:
    store = CorrectionsStore.open(data_dir=data_dir)
    save(store, 0)
    made = run_backup("now", "--app-data-dir", str(data_dir))
    assert made.returncode == 0, made.stderr
    listed = run_backup("list", "--app-data-dir", str(data_dir))
    assert listed.returncode == 0 and "tagger-" in listed.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("restore", "--from", "nowhere.sqlite3"),
        ("restore",),  # no backup yet
        ("restore", "--bogus"),
    ],
)
def test_a_mistake_is_one_line_and_exit_status_2(data_dir: Path, args: tuple[str, ...]) -> None:
    CorrectionsStore.open(data_dir=data_dir).database.dispose()
    done = run_backup(*args, "--app-data-dir", str(data_dir))
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("python -m curation.backup: error: ")
    assert (data_dir / DEFAULT_DB_FILE).is_file()  # nothing was moved


def test_a_damaged_backup_is_refused(data_dir: Path, tmp_path: Path) -> None:
    CorrectionsStore.open(data_dir=data_dir).database.dispose()
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"not a database at all" * 100)
    done = run_backup("restore", "--from", str(bad), "--app-data-dir", str(data_dir))
    assert done.returncode == 2 and "damaged" in done.stderr


def test_postgresql_backups_are_the_operators_job() -> None:
    url = "postgresql+psycopg2://tagger@db.internal/tagger"  # never connected to
    done = run_backup("now", env={"TAGGER_DB_URL": url})
    assert done.returncode == 2
    assert "pg_dump" in done.stderr and "point-in-time recovery" in done.stderr
