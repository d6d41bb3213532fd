"""Model references: a model folder, a registry version id, `current`, or None for current."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagger.errors import TaggerError
from tagger.references import (
    DEFAULT_REGISTRY_DIR,
    REGISTRY_DIR_ENV,
    read_pointer_file,
    registry_dir,
    resolve_model,
)


def add_version(root: Path, version: str) -> Path:
    folder = root / "versions" / version
    folder.mkdir(parents=True)
    (folder / "model.json").write_text("{}", encoding="utf-8")
    return folder


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    add_version(root, "20240101-000000-aaaaaa")
    add_version(root, "20240202-000000-bbbbbb")
    (root / "current").write_text("20240101-000000-aaaaaa\n", encoding="utf-8")
    return root


def test_a_model_folder_is_itself(tmp_path: Path, registry: Path) -> None:
    folder = add_version(tmp_path / "elsewhere", "mine")
    assert resolve_model(folder, registry_dir=registry) == folder
    assert resolve_model(str(folder), registry_dir=registry) == folder


def test_a_version_id_names_its_folder(registry: Path) -> None:
    found = resolve_model("20240202-000000-bbbbbb", registry_dir=registry)
    assert found == registry / "versions" / "20240202-000000-bbbbbb"


@pytest.mark.parametrize("reference", ["current", None])
def test_current_and_none_are_the_version_in_service(
    registry: Path, reference: str | None
) -> None:
    found = resolve_model(reference, registry_dir=registry)
    assert found == registry / "versions" / "20240101-000000-aaaaaa"


def test_the_registry_comes_from_the_environment_else_models(
    registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(REGISTRY_DIR_ENV, str(registry))
    assert resolve_model(None) == registry / "versions" / "20240101-000000-aaaaaa"
    assert registry_dir() == registry
    assert registry_dir(environ={}) == DEFAULT_REGISTRY_DIR
    assert registry_dir(environ={REGISTRY_DIR_ENV: "  "}) == DEFAULT_REGISTRY_DIR
    monkeypatch.delenv(REGISTRY_DIR_ENV)
    monkeypatch.chdir(registry.parent)
    assert resolve_model("current") == Path("models") / "versions" / "20240101-000000-aaaaaa"


def test_a_folder_wins_over_a_version_of_the_same_name(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir = tmp_path / "work"
    add_version(workdir, "20240202-000000-bbbbbb")
    monkeypatch.chdir(workdir / "versions")
    found = resolve_model("20240202-000000-bbbbbb", registry_dir=registry)
    assert found == Path("20240202-000000-bbbbbb")


def test_an_unknown_id_lists_the_known_versions_and_the_fix(registry: Path) -> None:
    with pytest.raises(TaggerError) as caught:
        resolve_model("20990101-nope", registry_dir=registry)
    message = str(caught.value)
    assert "no model '20990101-nope'" in message
    assert "20240202-000000-bbbbbb, 20240101-000000-aaaaaa" in message  # newest first
    assert "Fix: pass --model with a model folder" in message
    assert REGISTRY_DIR_ENV in message and "training.train --out 20990101-nope" in message


def test_a_long_list_of_versions_is_cut(tmp_path: Path) -> None:
    root = tmp_path / "models"
    for index in range(8):
        add_version(root, f"v{index}")
    with pytest.raises(TaggerError, match=r"v7, v6, v5, v4, v3, …"):
        resolve_model("v9", registry_dir=root)


def test_nothing_in_service_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(TaggerError) as caught:
        resolve_model(None, registry_dir=tmp_path / "empty")
    message = str(caught.value)
    assert message.startswith("no model is in service: ")
    assert str(tmp_path / "empty" / "current") in message
    assert "--model" in message and "make model" in message and REGISTRY_DIR_ENV in message
    assert "Training page" in message


def test_an_empty_pointer_is_nothing_in_service(registry: Path) -> None:
    (registry / "current").write_text("\n", encoding="utf-8")
    assert read_pointer_file(registry) is None
    with pytest.raises(TaggerError, match="no model is in service"):
        resolve_model("current", registry_dir=registry)


def test_a_pointer_to_a_missing_folder_names_it_and_the_fix(registry: Path) -> None:
    (registry / "current").write_text("20230303-000000-gone00\n", encoding="utf-8")
    with pytest.raises(TaggerError) as caught:
        resolve_model("current", registry_dir=registry)
    message = str(caught.value)
    assert "version '20230303-000000-gone00' (in service)" in message
    assert str(registry / "versions" / "20230303-000000-gone00") in message
    assert "Fix: promote or roll back to another version on the app's Training page" in message


def test_a_version_folder_without_model_json_is_an_error(registry: Path) -> None:
    (registry / "versions" / "half").mkdir()
    with pytest.raises(TaggerError, match=r"version 'half' has no complete model folder"):
        resolve_model("half", registry_dir=registry)


def test_an_incomplete_folder_is_left_for_loading_to_describe(tmp_path: Path) -> None:
    from tagger.model_folder import ModelFolderError, read_metadata

    folder = tmp_path / "broken"
    folder.mkdir()
    assert resolve_model(folder, registry_dir=tmp_path / "registry") == folder
    with pytest.raises(ModelFolderError, match=r"incomplete model folder, missing model\.json"):
        read_metadata(folder)
