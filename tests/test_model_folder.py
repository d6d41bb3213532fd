"""Model folders: self-contained round trip, clear errors for damage, atomic saves."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tagger import model_folder
from tagger.model_folder import (
    FORMAT,
    METADATA_FILE,
    REQUIRED_FILES,
    VOCAB_FILE,
    WEIGHTS_FILE,
    LoadedModel,
    ModelFolderError,
    load_model_folder,
    read_metadata,
    save_model_folder,
)
from tagger.tagger import Tagger

TEXT = "Patients developed renal failure after cocaine. No seizures were seen with lithium."


@pytest.fixture(scope="module")
def loaded(tiny_model_dir: Path) -> LoadedModel:
    return load_model_folder(tiny_model_dir)


@pytest.fixture()
def model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model folder, safe to damage."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


def sample_inputs(loaded: LoadedModel) -> dict[str, np.ndarray]:
    encoder = loaded.encoder
    pieces = [p for word in encoder.encode_words(TEXT.lower().split()) for p in word]
    token_ids = np.asarray([[encoder.cls_id, *pieces, encoder.sep_id]], dtype=np.int32)
    return {
        "token_ids": token_ids,
        "segment_ids": np.zeros_like(token_ids),
        "padding_mask": np.ones_like(token_ids, dtype=bool),
    }


def edit_metadata(folder: Path, change: Callable[[dict[str, Any]], object]) -> None:
    path = folder / METADATA_FILE
    content = json.loads(path.read_text(encoding="utf-8"))
    change(content)
    path.write_text(json.dumps(content), encoding="utf-8")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


# ---------------------------------------------------------------- round trip


def test_folder_holds_everything_needed(tiny_model_dir: Path) -> None:
    assert {path.name for path in tiny_model_dir.iterdir()} == set(REQUIRED_FILES)
    content = json.loads((tiny_model_dir / METADATA_FILE).read_text(encoding="utf-8"))
    assert content["format"] == FORMAT
    assert content["labels"] == ["O", "B-Disease", "I-Disease"]
    assert content["lowercase"] is True
    assert content["backbone_config"]["num_layers"] == 2
    assert content["windows"] == {
        "max_tokens": 24,
        "max_words": 8,
        "context_tokens": 6,
        "cross_sentence": True,
        "packed": False,
    }
    assert content["version"] and content["created"]
    assert {"python", "keras", "keras_backend", "tokenizers"} <= set(content["libraries"])
    assert set(content["metrics"]["dev"]) >= {"precision", "recall", "f1"}
    assert content["training"]["best_epoch"] >= 1


def test_save_then_load_gives_identical_predictions(loaded: LoadedModel, tmp_path: Path) -> None:
    copy = save_model_folder(
        loaded.model, loaded.folder / VOCAB_FILE, loaded.metadata, tmp_path / "again"
    )
    reloaded = load_model_folder(copy)
    inputs = sample_inputs(loaded)
    np.testing.assert_array_equal(
        np.asarray(loaded.model.predict_on_batch(inputs)),
        np.asarray(reloaded.model.predict_on_batch(inputs)),
    )
    assert reloaded.metadata.to_json() == loaded.metadata.to_json()
    assert reloaded.encoder.vocab == loaded.encoder.vocab
    assert Tagger(reloaded).tag(TEXT) == Tagger(loaded).tag(TEXT)


def test_a_copied_folder_loads_on_its_own(model_copy: Path) -> None:
    # The encoder folder the model was trained from is elsewhere; the copy needs nothing else.
    loaded = load_model_folder(model_copy)
    assert loaded.folder == model_copy
    assert loaded.metadata.encoder_source == "tiny-random-bert"


def test_overwriting_replaces_the_folder_and_leaves_nothing_behind(
    loaded: LoadedModel, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    vocab = loaded.folder / VOCAB_FILE
    save_model_folder(loaded.model, vocab, loaded.metadata, folder)
    (folder / "stale.txt").write_text("from the old folder")
    save_model_folder(loaded.model, vocab, loaded.metadata, folder)
    assert {path.name for path in folder.iterdir()} == set(REQUIRED_FILES)
    assert [path.name for path in tmp_path.iterdir()] == ["model"]
    load_model_folder(folder)


# ---------------------------------------------------------------- damage


def test_missing_folder_names_how_to_train_one(tmp_path: Path) -> None:
    with pytest.raises(ModelFolderError, match=r"no model folder here.*training\.train --out"):
        load_model_folder(tmp_path / "nothing")


@pytest.mark.parametrize("name", REQUIRED_FILES)
def test_missing_file_is_named(model_copy: Path, name: str) -> None:
    (model_copy / name).unlink()
    with pytest.raises(ModelFolderError, match=rf"incomplete model folder, missing {name}"):
        load_model_folder(model_copy)


@pytest.mark.parametrize(
    "payload",
    [
        "{not json",
        "",
        "[1, 2]",
        '"a string"',
        "\udcff",
    ],
    ids=["syntax", "empty", "list", "string", "not-utf8"],
)
def test_corrupt_metadata_is_a_model_folder_error(model_copy: Path, payload: str) -> None:
    (model_copy / METADATA_FILE).write_bytes(payload.encode("utf-8", "surrogateescape"))
    with pytest.raises(ModelFolderError, match=r"model\.json is corrupt"):
        load_model_folder(model_copy)


@pytest.mark.parametrize(
    "change",
    [
        lambda content: content.pop("labels"),
        lambda content: content.pop("windows"),
        lambda content: content.update(windows=[1, 2]),
        lambda content: content.update(windows={"max_tokens": 4}),
        lambda content: content.update(unexpected_field=1),
    ],
    ids=["no-labels", "no-windows", "windows-list", "impossible-window", "unknown-field"],
)
def test_invalid_metadata_fields_name_the_file(
    model_copy: Path, change: Callable[[dict[str, Any]], object]
) -> None:
    edit_metadata(model_copy, change)
    with pytest.raises(ModelFolderError, match=r"model\.json is corrupt"):
        read_metadata(model_copy)


def test_an_impossible_window_in_model_json_is_named_without_the_training_fix(
    model_copy: Path,
) -> None:
    edit_metadata(model_copy, lambda content: content["windows"].update(max_tokens=4))
    with pytest.raises(ModelFolderError) as caught:
        read_metadata(model_copy)
    assert str(caught.value) == (
        f"{model_copy / METADATA_FILE} is corrupt (max_tokens=4: a BERT window holds 8 to "
        "512 tokens). Fix: retrain or restore the folder."
    )


def test_an_unknown_decoder_in_model_json_names_the_file(model_copy: Path) -> None:
    from tagger.tagger import Tagger

    edit_metadata(model_copy, lambda content: content.update(decoder="beam"))
    with pytest.raises(ModelFolderError, match=r"model\.json: unknown decoder 'beam'\. Fix: "):
        Tagger.load(model_copy, runtime="keras")
    # a decoder chosen when loading replaces the model's own
    assert Tagger.load(model_copy, runtime="keras", decoder="viterbi").tag("Fever.") is not None


def test_a_precision_keras_lacks_names_those_it_has(model_copy: Path) -> None:
    from tagger.runtimes import RuntimeSetupError

    with pytest.raises(RuntimeSetupError, match=r"Keras has no int8 precision.*--runtime keras"):
        load_model_folder(model_copy, precision="int8")


def test_unknown_format_says_to_retrain(model_copy: Path) -> None:
    edit_metadata(model_copy, lambda content: content.update(format="other/9"))
    with pytest.raises(ModelFolderError, match=r"format 'other/9' is not .*retrain"):
        load_model_folder(model_copy)


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],
        lambda data: data[:100],
        lambda data: b"not an HDF5 file at all",
        lambda data: b"",
    ],
    ids=["half", "header-only", "garbage", "empty"],
)
def test_damaged_weights_are_a_model_folder_error(
    model_copy: Path, damage: Callable[[bytes], bytes]
) -> None:
    weights = model_copy / WEIGHTS_FILE
    weights.write_bytes(damage(weights.read_bytes()))
    with pytest.raises(ModelFolderError, match=r"model\.weights\.h5 cannot be loaded"):
        load_model_folder(model_copy)


def test_vocabulary_of_another_model_is_refused(model_copy: Path) -> None:
    vocab = model_copy / VOCAB_FILE
    vocab.write_text(vocab.read_text(encoding="utf-8") + "extra\nwords\n", encoding="utf-8")
    with pytest.raises(ModelFolderError, match=r"vocab\.txt has \d+ tokens .* mixes two models"):
        load_model_folder(model_copy)


def test_vocabulary_without_bert_specials_names_the_file(model_copy: Path) -> None:
    (model_copy / VOCAB_FILE).write_text("disease\nfever\n", encoding="utf-8")
    with pytest.raises(ModelFolderError, match=r"vocab\.txt"):
        load_model_folder(model_copy)


@pytest.mark.parametrize(
    ("key", "value"),
    [("num_layers", 1), ("num_layers", 3), ("hidden_dim", 32), ("vocabulary_size", 99)],
)
def test_backbone_config_that_does_not_match_the_weights_is_refused(
    model_copy: Path, key: str, value: int
) -> None:
    # A model.json and a weights file from two different models must not load silently.
    edit_metadata(model_copy, lambda content: content["backbone_config"].update({key: value}))
    with pytest.raises(ModelFolderError, match=r"model\.weights\.h5"):
        load_model_folder(model_copy)


def test_labels_that_do_not_match_the_weights_are_refused(model_copy: Path) -> None:
    edit_metadata(model_copy, lambda content: content.update(labels=["O", "B-Disease"]))
    with pytest.raises(ModelFolderError, match=r"model\.weights\.h5 cannot be loaded"):
        load_model_folder(model_copy)


def test_unbuildable_backbone_config_is_a_model_folder_error(model_copy: Path) -> None:
    edit_metadata(model_copy, lambda content: content["backbone_config"].update(num_heads="x"))
    with pytest.raises(ModelFolderError, match=r"model\.json"):
        load_model_folder(model_copy)


# ---------------------------------------------------------------- atomic saves


def failing_save_weights(*args: object, **kwargs: object) -> None:
    raise OSError("disk full")


def test_failed_save_leaves_no_folder(
    loaded: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_folder, "save_weights_without_optimizer", failing_save_weights)
    with pytest.raises(OSError, match="disk full"):
        save_model_folder(loaded.model, loaded.folder / VOCAB_FILE, loaded.metadata, tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_survives_a_failed_overwrite(
    loaded: LoadedModel, model_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(model_copy)
    monkeypatch.setattr(model_folder, "save_weights_without_optimizer", failing_save_weights)
    with pytest.raises(OSError, match="disk full"):
        save_model_folder(loaded.model, loaded.folder / VOCAB_FILE, loaded.metadata, model_copy)
    assert snapshot(model_copy) == before
    assert [path.name for path in model_copy.parent.iterdir()] == ["model"]
    load_model_folder(model_copy)


def test_existing_folder_survives_a_failed_final_rename(
    loaded: LoadedModel, model_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(model_copy)
    real_replace = os.replace

    def replace(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        if ".partial-" in Path(source).name:
            raise KeyboardInterrupt  # interrupted between retiring the old and moving the new
        real_replace(source, target)

    monkeypatch.setattr("tagger.model_folder.os.replace", replace)
    with pytest.raises(KeyboardInterrupt):
        save_model_folder(loaded.model, loaded.folder / VOCAB_FILE, loaded.metadata, model_copy)
    assert snapshot(model_copy) == before
    assert [path.name for path in model_copy.parent.iterdir()] == ["model"]


def test_saved_weights_hold_no_optimizer_state(loaded: LoadedModel, tmp_path: Path) -> None:
    import h5py

    loaded.model.compile(optimizer="adamw", loss="mse")
    loaded.model.optimizer.build(loaded.model.trainable_variables)
    folder = save_model_folder(
        loaded.model, loaded.folder / VOCAB_FILE, loaded.metadata, tmp_path / "m"
    )
    with h5py.File(folder / WEIGHTS_FILE) as weights:
        assert "optimizer" not in weights
        assert set(weights) == {"layers", "vars"}
