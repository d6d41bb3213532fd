"""Where a job trains: one device, or TensorFlow's MirroredStrategy over several GPUs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import keras


def visible_gpus() -> int:
    if keras.backend.backend() != "tensorflow":
        return 0
    import tensorflow as tf

    return len(tf.config.list_logical_devices("GPU"))


def mirrored_strategy(devices: Sequence[str] | None = None) -> Any:
    """``tf.distribute.MirroredStrategy`` that tolerates boolean inputs.

    Keras 3.15 builds a model under a strategy by averaging the first batch across
    replicas (``Trainer._maybe_symbolic_build``), which TensorFlow cannot do for our
    boolean ``padding_mask``. Only that sample is affected, and only its shape and
    dtype kind matter there, so booleans are averaged as int32 instead.
    """
    import tensorflow as tf

    class MaskSafeMirroredStrategy(tf.distribute.MirroredStrategy):  # type: ignore[misc]
        def reduce(self, reduce_op: Any, value: Any, axis: Any) -> Any:
            def as_number(item: Any) -> Any:
                is_mask = (
                    isinstance(item, tf.distribute.DistributedValues)
                    and self.experimental_local_results(item)[0].dtype == tf.bool
                )
                if is_mask:
                    return self.run(lambda part: tf.cast(part, tf.int32), args=(item,))
                return item

            return super().reduce(reduce_op, tf.nest.map_structure(as_number, value), axis)

    return MaskSafeMirroredStrategy(list(devices) if devices else None)


@contextlib.contextmanager
def training_scope(devices: Sequence[str] | None = None) -> Iterator[str]:
    """Mirror training over ``devices``; by default over all GPUs when TensorFlow sees
    several, else no strategy at all. Yields a description for the job log."""
    if devices is None and visible_gpus() < 2:
        yield "single device"
        return
    strategy = mirrored_strategy(devices)
    with strategy.scope():
        yield f"MirroredStrategy over {strategy.num_replicas_in_sync} devices"
