"""Checkpoint averaging (`TrainSettings.average_last`): the mean of the last epochs'
weights is scored on dev and kept only when it beats the best single epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from tests.tiny import tiny_encoder, tiny_recipe, tiny_split
from training.train import dev_scores, fine_tune, mean_weights, settings_from_args

EPOCHS = 5


class OffsetTheHead(keras.callbacks.Callback):
    """At the end of the given epochs, push the head's bias by `sign * 50` on `O`, and
    take it back at the next epoch's start, so training itself goes on undisturbed.

    A `+1` epoch's checkpoint then tags nothing and a `-1` epoch's tags every word, while
    the mean of the two cancels the offsets: it scores as a model trained that long does.
    """

    def __init__(self, signs: dict[int, float]) -> None:
        super().__init__()
        self.signs = signs  # epoch (from 1) -> sign
        self.epoch = 0
        self.applied = 0.0

    def _shift(self, amount: float) -> None:
        head = self.model.get_layer("token_logits")
        kernel, bias = head.get_weights()
        head.set_weights([kernel, bias + np.asarray([amount, 0.0, 0.0], np.float32)])

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch + 1
        if self.applied:
            self._shift(-self.applied)
            self.applied = 0.0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        sign = self.signs.get(self.epoch)
        if sign is not None and batch + 1 == self.params["steps"]:
            self.applied = 50.0 * sign
            self._shift(self.applied)


@pytest.fixture(scope="module")
def split() -> tuple[Any, Any]:
    return tiny_split()


def test_the_mean_of_the_last_epochs_is_kept_when_it_beats_every_single_epoch(
    tmp_path: Path, split: tuple[Any, Any]
) -> None:
    train, dev = split
    settings = tiny_recipe(EPOCHS, average_last=2)
    offsets = OffsetTheHead({EPOCHS - 1: 1.0, EPOCHS: -1.0})
    result = fine_tune(
        tiny_encoder(tmp_path), train, dev, settings, callbacks=[offsets], verbose=0
    )
    training = result.tagger.info.training
    averaged = training["averaged"]
    assert averaged["epochs"] == [EPOCHS - 1, EPOCHS]
    # One offset epoch tags nothing, the other everything; their mean is a real tagger.
    pushed, pulled = (record["dev"] for record in result.history[-2:])
    assert pushed["n_pred"] == 0 and pulled["precision"] < averaged["dev"]["precision"]
    assert averaged["dev"]["f1"] > max(pushed["f1"] or 0.0, pulled["f1"] or 0.0)
    best_single = max(record["dev"]["f1"] or 0.0 for record in result.history)
    assert averaged["kept"] == (averaged["dev"]["f1"] > best_single)
    # Whatever was kept, the model holds the weights whose dev scores model.json records.
    assert dev_scores(result.tagger, dev) == result.tagger.info.metrics["dev"]
    if averaged["kept"]:
        assert result.tagger.info.metrics["dev"] == averaged["dev"]


def test_a_mean_worse_than_the_best_epoch_is_not_kept(
    tmp_path: Path, split: tuple[Any, Any]
) -> None:
    train, dev = split
    settings = tiny_recipe(EPOCHS, average_last=2)
    # Both last epochs pushed the same way: their mean tags nothing either.
    offsets = OffsetTheHead({EPOCHS - 1: 1.0, EPOCHS: 1.0})
    result = fine_tune(
        tiny_encoder(tmp_path), train, dev, settings, callbacks=[offsets], verbose=0
    )
    averaged = result.tagger.info.training["averaged"]
    assert averaged["dev"]["n_pred"] == 0 and not averaged["kept"]
    best = result.best_epoch
    assert best < EPOCHS - 1
    assert result.tagger.info.metrics["dev"] == result.history[best - 1]["dev"]
    assert dev_scores(result.tagger, dev) == result.history[best - 1]["dev"]


def test_averaging_is_off_by_default_and_set_by_a_flag() -> None:
    from training.train import build_parser

    assert tiny_recipe(2).average_last == 0
    assert settings_from_args(build_parser().parse_args(["--out", "m"])).average_last == 0
    parsed = build_parser().parse_args(["--out", "m", "--average-last", "3"])
    assert settings_from_args(parsed).average_last == 3


def test_mean_weights_keeps_each_tensor_shape_and_dtype() -> None:
    checkpoints = [
        [np.full((2, 3), value, np.float32), np.full(4, value, np.float16)]
        for value in (1.0, 2.0, 6.0)
    ]
    mean = mean_weights(checkpoints)
    assert [weight.shape for weight in mean] == [(2, 3), (4,)]
    assert [weight.dtype for weight in mean] == [np.float32, np.float16]
    assert mean[0][0, 0] == pytest.approx(3.0) and mean[1][0] == pytest.approx(3.0)
