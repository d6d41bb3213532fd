"""The token classifier and its loss on every installed Keras backend, each in its own process.

Keras fixes its backend at import, so each backend runs in a subprocess with `KERAS_BACKEND`
set. Every backend's package is in requirements-test.txt, so a missing one fails the test.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}

SCRIPT = """
import json
import keras
import numpy as np
from tagger.model import IGNORE_INDEX, MaskedTokenCrossEntropy, build_token_classifier
from tests.tiny import tiny_backbone

model = build_token_classifier(tiny_backbone(), num_labels=3)
inputs = {
    "token_ids": np.asarray([[2, 5, 6, 7, 3, 0], [2, 8, 3, 0, 0, 0]], dtype="int32"),
    "segment_ids": np.zeros((2, 6), dtype="int32"),
    "padding_mask": np.asarray([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]], dtype=bool),
}
labels = np.full((2, 6), IGNORE_INDEX, dtype="int32")
labels[0, 1:4] = [1, 2, 0]
labels[1, 1] = 1
logits = keras.ops.convert_to_numpy(model(inputs, training=False))
loss = float(keras.ops.convert_to_numpy(MaskedTokenCrossEntropy()(labels, logits)))
try:
    MaskedTokenCrossEntropy()(labels, logits[:, 0, :])
    rejected = False
except ValueError:
    rejected = True
model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=MaskedTokenCrossEntropy())
steps = [float(model.train_on_batch(inputs, labels)) for _ in range(5)]
print(json.dumps({
    "backend": keras.backend.backend(),
    "shape": list(logits.shape),
    "finite": bool(np.isfinite(logits).all()),
    "loss": loss,
    "per_sentence_rejected": rejected,
    "train_losses": steps,
}))
"""


def backend_env(backend: str) -> dict[str, str]:
    return {
        **os.environ,
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "JAX_PLATFORMS": "cpu",
        "CUDA_VISIBLE_DEVICES": "",
    }


@pytest.fixture(scope="module")
def backend_runs() -> dict[str, tuple[int, str, str]]:
    """`(returncode, stdout, stderr)` per installed backend; the processes run side by side."""
    processes = {
        backend: subprocess.Popen(
            [sys.executable, "-c", SCRIPT],
            cwd=REPO_ROOT,
            env=backend_env(backend),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for backend, package in BACKEND_PACKAGES.items()
        if importlib.util.find_spec(package) is not None
    }
    results: dict[str, tuple[int, str, str]] = {}
    for backend, process in processes.items():
        try:
            out, err = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        results[backend] = (process.returncode, out, err)
    return results


@pytest.mark.slow
@pytest.mark.parametrize("backend", sorted(BACKEND_PACKAGES))
def test_forward_pass_and_loss_on_backend(
    backend: str, backend_runs: dict[str, tuple[int, str, str]]
) -> None:
    package = BACKEND_PACKAGES[backend]
    assert backend in backend_runs, (
        f"the {backend} backend's package {package} is not installed: "
        "pip install -r requirements-test.txt"
    )
    returncode, out, err = backend_runs[backend]
    assert returncode == 0, err[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["backend"] == backend
    assert result["shape"] == [2, 6, 3]
    assert result["finite"]
    assert 0.0 < result["loss"] < 10.0
    assert result["per_sentence_rejected"]
    losses = result["train_losses"]
    assert all(abs(value) < 1e6 for value in losses)  # also false for NaN
    assert losses[-1] < losses[0]
