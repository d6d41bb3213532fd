"""Refitting on train + devel (`--refit-on-devel`) for the epoch count devel chose."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tagger.model_folder import load_model_folder
from tests.tiny import tiny_encoder, tiny_recipe, tiny_split, tiny_training_folders
from training.train import fine_tune, main, refit_on_train_and_devel


def test_the_refit_trains_on_both_splits_for_the_chosen_epochs(tmp_path: Path) -> None:
    train, dev = tiny_split()
    settings = tiny_recipe(3, average_last=2)
    selected = fine_tune(tiny_encoder(tmp_path / "a"), train, dev, settings, verbose=0)
    refit = refit_on_train_and_devel(
        tiny_encoder(tmp_path / "b"), train, dev, settings, selected, verbose=0
    )
    training = refit.tagger.info.training
    assert training["train_sentences"] == len(train) + len(dev)
    assert training["epochs"] == selected.best_epoch == len(refit.history)
    assert refit.best_epoch == selected.best_epoch  # the last epoch is the one kept
    assert all("dev" not in record for record in refit.history)  # dev was trained on
    assert refit.tagger.info.metrics == {}
    record = training["refit"]
    assert record["on"] == ["train", "devel"] and record["epochs"] == selected.best_epoch
    assert record["selected_on_devel"]["dev"] == selected.tagger.info.metrics["dev"]
    assert record["selected_on_devel"]["averaged"] == selected.tagger.info.training["averaged"]
    assert "averaged" not in training


def test_the_train_command_refits_and_keeps_the_selected_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    encoder_dir, data = tiny_training_folders(tmp_path)
    out, selected = tmp_path / "refit", tmp_path / "selected"
    code = main(
        ["--out", str(out), "--encoder", str(encoder_dir), "--data-dir", str(data),
         "--epochs", "2", "--batch-size", "8", "--max-tokens", "32", "--context-tokens", "8",
         "--refit-on-devel", "--keep-selected", str(selected)]
    )  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err
    assert f"saved the devel-selected model to {selected}" in err and f"saved {out}" in err
    kept = load_model_folder(selected).metadata
    refit = load_model_folder(out).metadata
    assert set(kept.metrics) == {"dev"} and set(refit.metrics) == {"test"}
    assert refit.training["refit"]["selected_on_devel"]["dev"] == kept.metrics["dev"]
    assert refit.data == kept.data
    assert json.loads((out / "model.json").read_text(encoding="utf-8"))["version"] != (
        json.loads((selected / "model.json").read_text(encoding="utf-8"))["version"]
    )


def test_keep_selected_without_a_refit_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--out", str(tmp_path / "m"), "--keep-selected", str(tmp_path / "s")])
    assert code == 2
    assert capsys.readouterr().err == (
        "python -m training.train: error: --keep-selected saves the devel-selected model of a "
        "refit. Fix: add --refit-on-devel, or drop --keep-selected.\n"
    )


def test_refit_epochs_takes_the_count_from_an_earlier_run_and_trains_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    encoder_dir, data = tiny_training_folders(tmp_path)
    out = tmp_path / "refit"
    code = main(
        ["--out", str(out), "--encoder", str(encoder_dir), "--data-dir", str(data),
         "--epochs", "5", "--batch-size", "8", "--max-tokens", "32", "--context-tokens", "8",
         "--refit-epochs", "2", "--no-test"]
    )  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err
    assert "refit on train and devel for 2 epochs" in err and "(chosen on devel)" not in err
    refit = load_model_folder(out).metadata
    assert refit.training["epochs"] == 2 == len(refit.training["history"])
    assert refit.training["train_sentences"] == 40 + 10  # tiny_training_folders' splits
    assert refit.training["refit"] == {
        "on": ["train", "devel"],
        "epochs": 2,
        "selected_on_devel": None,
    }
    assert refit.metrics == {}


def test_refit_epochs_with_refit_on_devel_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--out", str(tmp_path / "m"), "--refit-on-devel", "--refit-epochs", "3"])
    assert code == 2
    assert "--refit-epochs and --refit-on-devel both set the refit's epoch count" in (
        capsys.readouterr().err
    )
