"""Linear warm-up then linear decay to zero, the standard BERT fine-tuning schedule."""

from __future__ import annotations

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
