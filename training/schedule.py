"""Linear warm-up then linear decay to zero, the standard BERT fine-tuning schedule."""

from __future__ import annotations

from typing import Protocol

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="training")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`peak * step / warmup` up to `warmup_steps`, then down to 0 at `total_steps`."""

    def __init__(self, peak: float, warmup_steps: int, total_steps: int) -> None:
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = max(int(total_steps), 1)

    def __call__(self, step: object) -> object:
        step = ops.cast(step, "float32")
        warmup = ops.cast(max(self.warmup_steps, 1), "float32")
        total = ops.cast(self.total_steps, "float32")
        rising = step / warmup
        # The decay spans the steps after the real warm-up (none: all of them), so that it
        # starts at the peak, never above it.
        falling = ops.maximum(total - step, 0.0) / ops.maximum(total - self.warmup_steps, 1.0)
        factor = ops.where(step < warmup, rising, falling) if self.warmup_steps else falling
        return self.peak * factor

    def get_config(self) -> dict[str, float | int]:
        return {
            "peak": self.peak,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
        }


class OptimizerSettings(Protocol):
    """What BERT's optimizer needs of a recipe (fine-tuning's or adaptation's)."""

    learning_rate: float
    warmup_ratio: float
    weight_decay: float
    clip_norm: float
    adam_epsilon: float


def bert_adamw(settings: OptimizerSettings, total_steps: int) -> keras.optimizers.AdamW:
    """AdamW with linear warm-up and decay, clipped, no decay on biases and LayerNorm."""
    schedule = WarmupLinearDecay(
        settings.learning_rate, int(settings.warmup_ratio * total_steps), total_steps
    )
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule,
        weight_decay=settings.weight_decay,
        global_clipnorm=settings.clip_norm,
        epsilon=settings.adam_epsilon,
    )
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer
