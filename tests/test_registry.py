"""The model registry: immutable versions, the serving pointer, promotion, half-written folders.

Every test runs on SQLite and on PostgreSQL (the ``database`` fixture, tests/databases.py).
The registry is Keras-free: the worker writes a version's folder where
``reserve_folder`` says and registers it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.database import Database
from curation.promotion import PromotionDecision
from curation.registry import (
    Registry,
    RegistryError,
    VersionNotFoundError,
    serving_folder_from_files,
)
from tagger.model_folder import ModelFolderError
from tagger.references import read_pointer_file
from tests.worker_helpers import clone_version

PROMOTE = PromotionDecision(True, "test: promote")
KEEP = PromotionDecision(False, "test: keep as candidate")


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
    with pytest.raises(RegistryError, match="immutable"):
        registry.reserve_folder("v1")


def test_a_reserved_folder_written_by_the_worker_is_registered(
    registry: Registry, tiny_model_dir: Path
) -> None:
    from tagger.model_folder import load_model_folder, save_model_folder
    from tagger.tagger import Tagger

    loaded = load_model_folder(tiny_model_dir)
    target = registry.reserve_folder()
    assert not target.exists() and target.parent == registry.versions_dir
    loaded.metadata.version = target.name
    loaded.metadata.parent = "v0"
    save_model_folder(loaded.model, tiny_model_dir / "vocab.txt", loaded.metadata, target)
    registration = registry.register_folder(
        target,
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


def test_a_preliminary_version_says_so_and_where_its_job_took_it(
    registry: Registry, tiny_model_dir: Path
) -> None:
    point = {"job_id": 3, "epoch": 1, "step": 120, "epoch_end": False, "dev_f1": 61.27}
    add(registry, tiny_model_dir, "v1", summary={"preliminary": True, "preliminary_point": point})
    add(registry, tiny_model_dir, "v2", summary={"base_sentences": 48})
    preliminary, final = registry.get("v1"), registry.get("v2")
    assert preliminary.preliminary and preliminary.preliminary_point == point
    assert preliminary.preliminary_note() == (
        "preliminary (epoch 1, step 120, devel F1 61.3) — training continues"
    )
    assert not final.preliminary and final.preliminary_point == {}
    assert final.preliminary_note() is None


def test_a_folder_outside_the_registry_is_refused(registry: Registry, tiny_model_dir: Path) -> None:
    with pytest.raises(RegistryError, match="adopt"):
        registry.register_folder(tiny_model_dir, decision=PROMOTE, expected_serving=None)


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


# ---------------------------------------------------------------------------
# Verify before serving: the weights hash and a Keras-free load check
# ---------------------------------------------------------------------------


def flip_bytes(path: Path) -> None:
    """Damage a file in place without changing its size (a bad disk, a partial copy)."""
    data = bytearray(path.read_bytes())
    for index in range(len(data) - 64, len(data) - 32):
        data[index] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_registration_records_the_weights_hash(registry: Registry, tiny_model_dir: Path) -> None:
    from tagger.model_folder import file_sha256

    folder = add(registry, tiny_model_dir, "v1")  # register_folder: the worker's path
    recorded = registry.get("v1").weights_sha256
    assert recorded == file_sha256(folder / "model.weights.h5")
    assert registry.verify("v1").weights_sha256 == recorded


@pytest.mark.parametrize("damage", [flip_bytes, truncate], ids=["flipped", "truncated"])
def test_a_version_with_damaged_weights_is_refused_and_the_served_one_stays(
    registry: Registry, tiny_model_dir: Path, damage: object
) -> None:
    from curation.registry import DamagedVersionError

    add(registry, tiny_model_dir, "v1")
    folder = add(registry, tiny_model_dir, "v2", KEEP)
    damage(folder / "model.weights.h5")  # type: ignore[operator]
    with pytest.raises(DamagedVersionError) as raised:
        registry.promote("v2")
    message = str(raised.value)
    assert isinstance(raised.value, RegistryError)
    assert "version v2 is damaged" in message and "model.weights.h5" in message
    assert "Fix: retrain, or promote another version" in message
    assert registry.serving_version() == "v1"
    assert read_pointer_file(registry.root) == "v1"
    assert [event.version for event in registry.serving_history()] == ["v1"]


def test_rolling_back_to_a_damaged_version_is_refused(
    registry: Registry, tiny_model_dir: Path
) -> None:
    from curation.registry import DamagedVersionError

    first = add(registry, tiny_model_dir, "v1")
    add(registry, tiny_model_dir, "v2")
    flip_bytes(first / "model.weights.h5")
    with pytest.raises(DamagedVersionError, match="version v1 is damaged"):
        registry.rollback()
    assert registry.serving_version() == "v2"
    assert read_pointer_file(registry.root) == "v2"


def test_a_version_registered_before_hashes_gets_one_on_first_verification(
    registry: Registry, database: Database, tiny_model_dir: Path
) -> None:
    from sqlalchemy import update

    from curation.registry import DamagedVersionError
    from curation.schema import model_versions_table
    from tagger.model_folder import file_sha256

    add(registry, tiny_model_dir, "v1")
    old = add(registry, tiny_model_dir, "v2", KEEP)
    broken = add(registry, tiny_model_dir, "v3", KEEP)
    with database.write() as connection:  # as migration 0002 leaves the older versions
        connection.execute(update(model_versions_table).values(weights_sha256=None))
    assert registry.get("v2").weights_sha256 is None

    registry.promote("v2")
    assert registry.get("v2").weights_sha256 == file_sha256(old / "model.weights.h5")

    truncate(broken / "model.weights.h5")  # no hash to compare: the load check still refuses
    with pytest.raises(DamagedVersionError, match="version v3 is damaged"):
        registry.promote("v3")
    assert registry.get("v3").weights_sha256 is None  # nothing recorded for a damaged file
    assert registry.serving_version() == "v2"


def test_a_model_json_that_does_not_fit_the_weights_is_refused(
    registry: Registry, tiny_model_dir: Path
) -> None:
    import json

    from curation.registry import DamagedVersionError

    add(registry, tiny_model_dir, "v1")
    folder = add(registry, tiny_model_dir, "v2", KEEP)
    metadata = json.loads((folder / "model.json").read_text())
    metadata["backbone_config"]["num_layers"] += 1  # model.json of a deeper model
    (folder / "model.json").write_text(json.dumps(metadata))
    with pytest.raises(DamagedVersionError, match="weights where model"):
        registry.promote("v2")
    assert registry.serving_version() == "v1"
