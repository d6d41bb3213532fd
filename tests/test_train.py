"""Fine-tuning: the loss falls, the best-dev epoch is kept, recipes and flags, the LR schedule."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from tagger.bio import Sentence
from tagger.errors import EXIT_USER_ERROR
from tagger.model_folder import load_model_folder
from tagger.tagger import Tagger
from tagger.windows import WindowSettings
from tests.tiny import (
    TINY_TRAIN_SENTENCES,
    TINY_WINDOWS,
    tiny_corpus,
    tiny_encoder,
    tiny_recipe,
    tiny_split,
    tiny_training_folders,
)
from training.evaluate import evaluate_tagger
from training.schedule import WarmupLinearDecay
from training.train import (
    LABELS,
    PROG,
    RECIPES,
    DevEvaluation,
    TrainResult,
    TrainSettings,
    build_parser,
    compile_for_training,
    fine_tune,
    main,
    settings_from_args,
)

SABOTAGED_EPOCH = 4


class SabotageLastEpoch(keras.callbacks.Callback):
    """From epoch `SABOTAGED_EPOCH` on, force the head to predict O for every token.

    That epoch's dev F1 is then 0, so the returned model can only score well if
    `fine_tune` restored the weights of an earlier, better epoch.
    """

    def __init__(self) -> None:
        super().__init__()
        self.active = False

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.active = epoch + 1 >= SABOTAGED_EPOCH

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.active:
            head = self.model.get_layer("token_logits")
            kernel = head.get_weights()[0]
            head.set_weights([np.zeros_like(kernel), np.asarray([50.0, -50.0, -50.0])])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, list[Sentence]]:
    encoder = tiny_encoder(tmp_path_factory.mktemp("encoder"))
    train, dev = tiny_split()
    settings = tiny_recipe(SABOTAGED_EPOCH)
    result = fine_tune(encoder, train, dev, settings, callbacks=[SabotageLastEpoch()], verbose=0)
    return result, dev


def test_fine_tune_lowers_the_loss(trained: tuple[TrainResult, list[Sentence]]) -> None:
    result, _ = trained
    losses = [record["loss"] for record in result.history]
    assert len(losses) == SABOTAGED_EPOCH
    assert all(np.isfinite(losses))
    assert losses[SABOTAGED_EPOCH - 2] < 0.8 * losses[0]


def test_fine_tune_keeps_the_best_dev_epoch(trained: tuple[TrainResult, list[Sentence]]) -> None:
    result, dev = trained
    f1s = [record["dev"]["f1"] for record in result.history]
    assert f1s[-1] == 0.0, "the sabotaged last epoch should score nothing"
    assert max(f1s) > 0.0
    assert result.best_epoch == f1s.index(max(f1s)) + 1
    assert evaluate_tagger(result.tagger, dev)["f1"] == max(f1s)


def test_fine_tune_records_what_it_did(trained: tuple[TrainResult, list[Sentence]]) -> None:
    result, _ = trained
    metadata = result.tagger.info
    assert metadata.labels == list(LABELS)
    assert metadata.windows == TINY_WINDOWS
    assert metadata.metrics["dev"] == result.history[result.best_epoch - 1]["dev"]
    assert metadata.training["best_epoch"] == result.best_epoch
    assert metadata.training["train_sentences"] == TINY_TRAIN_SENTENCES
    assert metadata.training["train_windows"] >= TINY_TRAIN_SENTENCES
    assert metadata.training["history"] == result.history
    assert metadata.training["windows"] == dataclasses.asdict(TINY_WINDOWS)
    assert len(result.seconds_per_epoch) == SABOTAGED_EPOCH
    json.dumps(metadata.to_json())  # the whole record must be JSON


# ---------------------------------------------------------------- DevEvaluation


class ScriptedTagger:
    """Answers each dev pass with the next scripted labels."""

    def __init__(self, answers: list[list[tuple[str, ...]]]) -> None:
        self.answers = iter(answers)

    def tag_words(self, sentences: list[tuple[str, ...]]) -> list[tuple[tuple[str, ...], tuple]]:
        return [(labels, ()) for labels in next(self.answers)]


def test_dev_evaluation_stops_after_patience_and_keeps_the_best_weights() -> None:
    dev = [Sentence(["fever", "and", "rash"], ["B-Disease", "O", "B-Disease"])]
    found_one = [("B-Disease", "O", "O")]
    found_both = [("B-Disease", "O", "B-Disease")]
    found_none = [("O", "O", "O")]
    tagger = ScriptedTagger([found_one, found_both, found_none, found_one, found_both])
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    callback = DevEvaluation(tagger, dev, patience=2)  # type: ignore[arg-type]
    callback.set_model(model)
    model.stop_training = False  # as model.fit sets it
    epoch_weights = []
    for epoch in range(5):
        model.set_weights([np.full((1, 1), float(epoch)), np.zeros(1)])
        epoch_weights.append(model.get_weights())
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1)})
        if model.stop_training:
            break
    assert [record["dev"]["f1"] for record in callback.history] == [66.67, 100.0, 0.0, 66.67]
    assert model.stop_training and epoch == 3
    assert callback.best_epoch == 2 and callback.best_f1 == 100.0
    assert callback.best_weights is not None
    np.testing.assert_array_equal(callback.best_weights[0], epoch_weights[1][0])


# ---------------------------------------------------------------- recipes and flags


def parse(*flags: str) -> TrainSettings:
    return settings_from_args(build_parser().parse_args(["--out", "model", *flags]))


def test_no_flags_give_the_default_recipe() -> None:
    assert parse() == RECIPES["default"]


def test_flags_override_the_recipe() -> None:
    settings = parse(
        "--recipe", "peer", "--lr", "0.001", "--max-words", "20", "--no-cross-sentence",
        "--max-steps", "5", "--jit-compile", "--decoder", "viterbi",
    )  # fmt: skip
    peer = RECIPES["peer"]
    assert settings.learning_rate == 0.001
    assert settings.epochs == peer.epochs and settings.batch_size == peer.batch_size
    assert settings.decoder == "viterbi" and settings.max_steps == 5 and settings.jit_compile
    assert settings.windows == dataclasses.replace(peer.windows, max_words=20, cross_sentence=False)


def test_the_peer_recipe_mirrors_the_hugging_face_peer() -> None:
    peer = RECIPES["peer"]
    assert (peer.learning_rate, peer.epochs, peer.batch_size) == (5e-5, 4, 32)
    assert (peer.warmup_ratio, peer.weight_decay, peer.clip_norm) == (0.1, 0.01, 1.0)
    assert peer.adam_epsilon == 1e-8  # torch.optim.AdamW's default
    assert peer.length_pool_batches == 1  # plain shuffled batches, like the HF Trainer
    assert peer.decoder == "argmax-drop"  # raw arg-max as strict IOB2 scores it
    assert peer.windows.context_tokens == 0 and peer.windows.max_tokens >= 275


def test_optimizer_and_batching_flags() -> None:
    settings = parse("--adam-epsilon", "1e-7", "--length-pool-batches", "3")
    assert settings.adam_epsilon == 1e-7 and settings.length_pool_batches == 3
    assert parse("--decoder", "argmax-drop").decoder == "argmax-drop"


def test_window_flags_apply_over_the_recipe_windows() -> None:
    settings = parse("--max-tokens", "64", "--context-tokens", "0", "--cross-sentence")
    default = RECIPES["default"].windows
    assert settings.windows == WindowSettings(
        max_tokens=64, max_words=default.max_words, context_tokens=0, cross_sentence=True
    )


def test_overrides_do_not_change_the_recipes() -> None:
    before = {name: dataclasses.asdict(recipe) for name, recipe in RECIPES.items()}
    parse("--recipe", "peer", "--epochs", "1", "--max-words", "3", "--jit-compile")
    parse("--epochs", "2", "--cross-sentence", "--jit-compile")
    assert {name: dataclasses.asdict(recipe) for name, recipe in RECIPES.items()} == before


def test_impossible_window_flag_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", "model", "--max-tokens", "4"]) == EXIT_USER_ERROR
    assert capsys.readouterr().err.startswith(f"{PROG}: error: max_tokens=4")


def test_missing_data_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--out", str(tmp_path / "model"), "--data-dir", str(tmp_path / "none")])
    assert code == EXIT_USER_ERROR
    error = capsys.readouterr().err
    assert error.startswith(f"{PROG}: error: ") and error.count("\n") == 1
    assert not (tmp_path / "model").exists()


# ---------------------------------------------------------------- schedule


def lr(schedule: WarmupLinearDecay, step: int) -> float:
    return float(schedule(step))


def test_schedule_rises_to_the_peak_then_falls_to_zero() -> None:
    schedule = WarmupLinearDecay(2e-4, warmup_steps=10, total_steps=110)
    assert lr(schedule, 0) == 0.0
    assert lr(schedule, 5) == pytest.approx(1e-4)
    assert lr(schedule, 10) == pytest.approx(2e-4)
    assert lr(schedule, 60) == pytest.approx(1e-4)
    assert lr(schedule, 110) == pytest.approx(0.0, abs=1e-12)
    assert lr(schedule, 200) == 0.0
    values = [lr(schedule, step) for step in range(120)]
    assert max(values) == pytest.approx(2e-4)
    assert values[:11] == sorted(values[:11])
    assert values[10:] == sorted(values[10:], reverse=True)


def test_schedule_without_warmup_starts_at_the_peak_not_above() -> None:
    schedule = WarmupLinearDecay(1.0, warmup_steps=0, total_steps=10)
    assert lr(schedule, 0) == pytest.approx(1.0)
    assert lr(schedule, 5) == pytest.approx(0.5)
    assert lr(schedule, 10) == pytest.approx(0.0)
    assert max(lr(schedule, step) for step in range(12)) <= 1.0 + 1e-6


def test_schedule_survives_serialization() -> None:
    schedule = WarmupLinearDecay(1e-3, 7, 70)
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    assert isinstance(restored, WarmupLinearDecay)
    assert [lr(restored, s) for s in (0, 7, 40, 70)] == [lr(schedule, s) for s in (0, 7, 40, 70)]


def test_compile_for_training_uses_adamw_with_the_schedule() -> None:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    settings = TrainSettings(learning_rate=1e-3, warmup_ratio=0.1, weight_decay=0.05)
    compile_for_training(model, settings, total_steps=100)
    optimizer = model.optimizer
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert optimizer.weight_decay == 0.05 and optimizer.global_clipnorm == 1.0
    schedule = optimizer._learning_rate
    assert isinstance(schedule, WarmupLinearDecay)
    assert (schedule.peak, schedule.warmup_steps, schedule.total_steps) == (1e-3, 10, 100)


# ---------------------------------------------------------------- the command line, end to end


def test_train_command_writes_a_loadable_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    encoder_dir, data = tiny_training_folders(tmp_path)
    out = tmp_path / "model"
    code = main(
        [
            "--out", str(out), "--encoder", str(encoder_dir), "--data-dir", str(data),
            "--epochs", "1", "--max-steps", "2", "--batch-size", "8",
            "--max-tokens", "32", "--context-tokens", "8",
        ]
    )  # fmt: skip
    assert code == 0
    assert f"saved {out}" in capsys.readouterr().err
    loaded = load_model_folder(out)
    assert set(loaded.metadata.data) == {"train", "devel", "test"}
    assert loaded.metadata.data["test"]["file"] == "test.tsv"
    assert len(loaded.metadata.data["test"]["sha256"]) == 64
    assert set(loaded.metadata.metrics) == {"dev", "test"}
    assert loaded.metadata.training["max_steps"] == 2
    assert loaded.metadata.windows.max_tokens == 32
    labels, _ = Tagger(loaded).tag_words([tiny_corpus()[0].words])[0]
    assert len(labels) == len(tiny_corpus()[0].words)
