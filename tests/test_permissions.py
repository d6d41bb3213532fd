"""New model folders, the pointer file and the ONNX cache follow the process umask.

``tempfile.mkdtemp``/``mkstemp`` make 0o700/0o600 entries, which an app server running
as another user cannot read from a shared registry; they must get what a plain
``mkdir``/``open`` would: 0o755/0o644 under umask 0o022, 0o775/0o664 under 0o002.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from curation.database import Database
from curation.registry import Registry
from tagger import model_folder
from tagger.model_folder import ModelMetadata, save_model_folder
from tagger.windows import WindowSettings


@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_tree_follows(folder: Path, umask: int) -> None:
    assert mode(folder) == 0o777 & ~umask, folder
    for entry in folder.rglob("*"):
        expected = (0o777 if entry.is_dir() else 0o666) & ~umask
        assert mode(entry) == expected, entry


def test_a_saved_model_folder_follows_the_umask(
    umask: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The weights writer needs Keras and a model; the folder's modes do not.
    monkeypatch.setattr(
        model_folder, "save_weights_without_optimizer", lambda model, path: path.write_bytes(b"w")
    )
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n")
    metadata = ModelMetadata(
        labels=["O"], lowercase=True, backbone_config={}, windows=WindowSettings(),
        libraries={"python": "3"},
    )
    folder = save_model_folder(None, vocab, metadata, tmp_path / "registry" / "versions" / "v1")
    assert_tree_follows(folder, umask)


def test_an_adopted_folder_and_the_pointer_file_follow_the_umask(
    umask: int, tmp_path: Path, tiny_model_dir: Path
) -> None:
    os.chmod(tiny_model_dir, 0o700)  # as mkdtemp made it: a copy must not keep that
    registry = Registry(Database.open(data_dir=tmp_path / "data"), tmp_path / "models")
    registration = registry.adopt(tiny_model_dir)
    assert registration.promoted
    assert_tree_follows(registration.version.folder, umask)
    assert mode(registry.pointer_file) == 0o666 & ~umask


def test_onnx_cache_files_follow_the_umask(umask: int, tmp_path: Path) -> None:
    from tagger.runtimes import _write_atomically

    path = tmp_path / "cache" / "graph.onnx"
    _write_atomically(path, lambda staging: staging.write_bytes(b"graph"))
    assert path.read_bytes() == b"graph"
    assert mode(path) == 0o666 & ~umask
    assert mode(path.parent) == 0o777 & ~umask
