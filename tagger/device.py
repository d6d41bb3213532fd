"""Which device serves the model: the first visible GPU, else the CPU."""

from __future__ import annotations

import functools


@functools.cache
def describe_device() -> str:
    """A short human name, e.g. `GPU: NVIDIA H100 80GB HBM3` or `CPU`."""
    import keras

    backend = keras.backend.backend()
    finder = _GPU_FINDERS.get(backend)
    name = finder() if finder else None
    return f"GPU: {name}" if name else "CPU"


def _tensorflow_gpu() -> str | None:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    return str(details.get("device_name", gpus[0].name))


def _jax_gpu() -> str | None:
    import jax

    gpus = [device for device in jax.devices() if device.platform == "gpu"]
    return str(gpus[0].device_kind) if gpus else None


def _torch_gpu() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


_GPU_FINDERS = {"tensorflow": _tensorflow_gpu, "jax": _jax_gpu, "torch": _torch_gpu}
