"""The model registry: immutable versions, the serving pointer, promotion, half-written folders.

Every test takes the `database` fixture, so tests/test_postgres.py runs the same tests
against a real PostgreSQL server by overriding it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tagger.model_folder import ModelFolderError
from tests.worker_helpers import clone_version
from training.corrections import CorrectionsStore
from training.db import Database
from training.jobs import JobQueue, JobStatus, retrain_availability
from training.registry import (
    PromotionDecision,
    PromotionPolicy,
    Registry,
    RegistryError,
    VersionNotFoundError,
    read_pointer_file,
    serving_folder_from_files,
)

PROMOTE = PromotionDecision(True, "test: promote")
KEEP = PromotionDecision(False, "test: keep as candidate")


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(data_dir=tmp_path)
    yield database
    database.dispose()


@pytest.fixture
def registry(database: Database, tmp_path: Path) -> Registry:
    return Registry(database, tmp_path / "models")


def add(
    registry: Registry,
    tiny_model_dir: Path,
    version: str,
    decision: PromotionDecision = PROMOTE,
    *,
    dev_f1: float = 50.0,
    summary: dict[str, object] | None = None,
) -> Path:
    folder = clone_version(tiny_model_dir, registry.versions_dir, version, dev_f1=dev_f1)
    registry.register_folder(
        folder,
        summary=summary or {},
        decision=decision,
        expected_serving=registry.serving_version(),
    )
    return folder


def test_empty_registry_serves_nothing(registry: Registry) -> None:
    assert registry.serving_version() is None
    assert registry.serving() is None
    assert registry.serving_folder() is None
    assert registry.versions() == []
    assert serving_folder_from_files(registry.root) is None


def test_promoted_version_is_served_and_named_in_the_pointer_file(
    registry: Registry, tiny_model_dir: Path
) -> None:
    folder = add(registry, tiny_model_dir, "v1", summary={"correction_ids": [3, 5]})
    assert registry.serving_version() == "v1"
    assert registry.serving_folder() == folder
    assert read_pointer_file(registry.root) == "v1"
    assert serving_folder_from_files(registry.root) == folder
    served = registry.serving()
    assert served is not None and served.serving and served.decision == "promoted"
    assert served.dev_f1 == 50.0 and served.correction_ids == (3, 5)
    assert served.corrections_used == 2


def test_candidate_keeps_the_serving_version_and_says_why(
    registry: Registry, tiny_model_dir: Path
) -> None:
    add(registry, tiny_model_dir, "v1")
    add(registry, tiny_model_dir, "v2", KEEP)
    assert registry.serving_version() == "v1"
    candidate = registry.get("v2")
    assert candidate.decision == "candidate" and not candidate.serving
    assert candidate.note == KEEP.reason
    assert [v.version for v in registry.versions()] == ["v2", "v1"]


def test_promotion_is_skipped_when_the_serving_version_changed_meanwhile(
    registry: Registry, tiny_model_dir: Path
) -> None:
    add(registry, tiny_model_dir, "v1")
    add(registry, tiny_model_dir, "v2")
    folder = clone_version(tiny_model_dir, registry.versions_dir, "v3")
    registration = registry.register_folder(folder, decision=PROMOTE, expected_serving="v1")
    assert not registration.promoted
    assert registry.serving_version() == "v2"
    assert "changed while it trained" in registry.get("v3").note


def test_curator_promotes_any_version_and_rolls_back(
    registry: Registry, tiny_model_dir: Path
) -> None:
    add(registry, tiny_model_dir, "v1")
    add(registry, tiny_model_dir, "v2")
    add(registry, tiny_model_dir, "v3", KEEP)
    registry.promote("v3", actor="ada")
    assert registry.serving_version() == "v3"
    assert read_pointer_file(registry.root) == "v3"
    rolled_back = registry.rollback(actor="ada")
    assert rolled_back.version == "v2" and rolled_back.serving
    assert read_pointer_file(registry.root) == "v2"
    history = registry.serving_history()
    assert [(e.version, e.previous) for e in history] == [
        ("v2", "v3"),
        ("v3", "v2"),
        ("v2", "v1"),
        ("v1", None),
    ]
    assert history[0].actor == "ada" and "rolled back" in history[0].reason


def test_rollback_without_an_earlier_version_names_the_fix(
    registry: Registry, tiny_model_dir: Path
) -> None:
    add(registry, tiny_model_dir, "v1")
    with pytest.raises(RegistryError, match="promote a specific version"):
        registry.rollback()


def test_unknown_version_cannot_be_promoted(registry: Registry) -> None:
    with pytest.raises(VersionNotFoundError, match="no model version 'nope'"):
        registry.promote("nope")


def test_versions_are_immutable(registry: Registry, tiny_model_dir: Path) -> None:
    add(registry, tiny_model_dir, "v1")
    from tagger.model_folder import load_model_folder

    loaded = load_model_folder(registry.folder_of("v1"))
    loaded.metadata.version = "v1"
    with pytest.raises(RegistryError, match="immutable"):
        registry.add_version(
            loaded.model,
            loaded.folder / "vocab.txt",
            loaded.metadata,
            summary={},
            decision=PROMOTE,
            expected_serving="v1",
        )


def test_add_version_writes_a_complete_folder_and_registers_it(
    registry: Registry, tiny_model_dir: Path
) -> None:
    from tagger.model_folder import load_model_folder
    from tagger.tagger import Tagger

    loaded = load_model_folder(tiny_model_dir)
    loaded.metadata.version = ""
    loaded.metadata.parent = "v0"
    registration = registry.add_version(
        loaded.model,
        tiny_model_dir / "vocab.txt",
        loaded.metadata,
        summary={"base_sentences": 48, "corrections_used": 0, "correction_ids": []},
        decision=PROMOTE,
        expected_serving=None,
        job_id=7,
    )
    version = registration.version
    assert registration.promoted and version.serving
    assert version.parent == "v0" and version.job_id == 7
    assert version.summary["base_sentences"] == 48
    served = Tagger.load(registry.serving_folder() or Path("missing"))
    assert served.version == version.version


def test_half_written_folder_never_enters_the_registry(
    registry: Registry, tiny_model_dir: Path
) -> None:
    add(registry, tiny_model_dir, "v1")
    half = clone_version(tiny_model_dir, registry.versions_dir, "v2")
    (half / "model.weights.h5").unlink()
    with pytest.raises(ModelFolderError, match="incomplete model folder"):
        registry.register_folder(half, decision=PROMOTE, expected_serving="v1")
    assert [v.version for v in registry.versions()] == ["v1"]
    assert registry.serving_version() == "v1"
    assert not half.exists()


def test_crash_while_writing_a_version_leaves_no_version(
    registry: Registry, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from tagger.model_folder import load_model_folder

    add(registry, tiny_model_dir, "v1")
    loaded = load_model_folder(tiny_model_dir)
    loaded.metadata.version = "v2"
    # The weights get written, then copying the vocabulary fails: a crash half-way.
    with pytest.raises(FileNotFoundError):
        registry.add_version(
            loaded.model,
            tmp_path / "vanished" / "vocab.txt",
            loaded.metadata,
            summary={},
            decision=PROMOTE,
            expected_serving="v1",
        )
    assert [v.version for v in registry.versions()] == ["v1"]
    assert registry.serving_version() == "v1"
    assert sorted(p.name for p in registry.versions_dir.iterdir()) == ["v1"]


def test_sweep_removes_leftovers_of_a_crash_but_keeps_versions(
    registry: Registry, tiny_model_dir: Path
) -> None:
    add(registry, tiny_model_dir, "v1")
    staging = registry.versions_dir / ".v2.partial-abc123"
    staging.mkdir()
    (staging / "model.weights.h5").write_bytes(b"half")
    orphan = clone_version(tiny_model_dir, registry.versions_dir, "v3")  # renamed, never inserted
    assert [v.version for v in registry.versions()] == ["v1"]
    assert registry.sweep() == []  # too young: another worker may still be writing them
    assert sorted(registry.sweep(min_age_s=0)) == sorted([staging, orphan])
    assert sorted(p.name for p in registry.versions_dir.iterdir()) == ["v1"]


def test_damaged_version_is_never_promoted(registry: Registry, tiny_model_dir: Path) -> None:
    add(registry, tiny_model_dir, "v1")
    folder = add(registry, tiny_model_dir, "v2", KEEP)
    (folder / "vocab.txt").unlink()
    with pytest.raises(ModelFolderError):
        registry.promote("v2")
    assert registry.serving_version() == "v1"


def test_pointer_file_is_repaired_from_the_database(
    registry: Registry, tiny_model_dir: Path
) -> None:
    add(registry, tiny_model_dir, "v1")
    registry.pointer_file.write_text("stale\n")
    assert registry.sync_pointer_file() == "v1"
    assert read_pointer_file(registry.root) == "v1"


def test_another_process_sees_the_new_serving_version(
    registry: Registry, database: Database, tiny_model_dir: Path
) -> None:
    app_view = Registry(Database(database.engine, database.url), registry.root)
    assert app_view.serving_version() is None
    add(registry, tiny_model_dir, "v1")
    assert app_view.serving_version() == "v1"
    add(registry, tiny_model_dir, "v2")
    assert app_view.serving_version() == "v2"


def test_adopt_copies_an_existing_model_folder_into_service(
    registry: Registry, tiny_model_dir: Path
) -> None:
    from tagger.model_folder import read_metadata

    registration = registry.adopt(tiny_model_dir)
    version = read_metadata(tiny_model_dir).version
    assert registration.promoted and registration.version.version == version
    assert registration.version.decision == "adopted"
    assert registry.serving_folder() == registry.folder_of(version)
    assert (registry.folder_of(version) / "model.weights.h5").is_file()
    assert (tiny_model_dir / "model.json").is_file()  # copied, not moved


@pytest.mark.parametrize(
    ("candidate", "serving", "promote"),
    [(80.0, 80.0, True), (79.5, 80.0, True), (79.49, 80.0, False), (85.0, 80.0, True)],
)
def test_promotion_policy_tolerance(candidate: float, serving: float, promote: bool) -> None:
    decision = PromotionPolicy(0.5).decide(candidate, serving_dev_f1=serving, serving_version="v1")
    assert decision.promote is promote
    if not promote:
        assert "below v1" in decision.reason and "candidate" in decision.reason


def test_promotion_policy_promotes_when_nothing_serves() -> None:
    assert PromotionPolicy(0.5).decide(3.0, serving_dev_f1=None).promote


def test_promotion_tolerance_from_the_environment() -> None:
    assert PromotionPolicy.from_env({"TAGGER_PROMOTION_TOLERANCE": "1.5"}).tolerance == 1.5
    assert PromotionPolicy.from_env({}).tolerance == 0.5
    with pytest.raises(RegistryError, match="TAGGER_PROMOTION_TOLERANCE"):
        PromotionPolicy.from_env({"TAGGER_PROMOTION_TOLERANCE": "half"})


def test_retrain_availability(
    registry: Registry, database: Database, tiny_model_dir: Path, tmp_path: Path
) -> None:
    queue = JobQueue(database)
    store = CorrectionsStore.in_folder(tmp_path / "app")
    first = retrain_availability(queue, registry, store)
    assert first.allowed and "No model is in service" in first.reason

    saved = store.save(
        words=["renal", "failure", "."],
        labels=["B-Disease", "I-Disease", "O"],
        predicted=["O", "O", "O"],
        source="text:1",
        sentence_index=0,
        model_version="v1",
        annotator="ada",
    ).correction
    add(registry, tiny_model_dir, "v1", summary={"correction_ids": [saved.id]})
    unchanged = retrain_availability(queue, registry, store)
    assert not unchanged.allowed and "No new corrections" in unchanged.reason
    assert retrain_availability(queue, registry, store, override=True).allowed

    store.delete(saved.id)
    deleted = retrain_availability(queue, registry, store)
    assert deleted.allowed and deleted.changed_correction_ids == (saved.id,)

    job = queue.enqueue().job
    busy = retrain_availability(queue, registry, store, override=True)
    assert not busy.allowed and busy.active_job is not None and busy.active_job.id == job.id
    assert f"job {job.id} (queued at" in busy.reason
    queue.request_cancel(job.id)
    assert queue.get(job.id).status == JobStatus.CANCELLED
