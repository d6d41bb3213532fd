"""GPU smoke check: which device runs the model, a few training steps, inference throughput.

Runs a MiniLM-sized token classifier (random weights: speed does not depend on them) built
by `tagger.model`, so it needs only Keras, KerasHub and a backend. Prints one JSON line.

    KERAS_BACKEND=jax python benchmarks/gpu_check.py [--batch 256] [--length 128]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras
import keras_hub
import numpy as np

from tagger.device import describe_device
from tagger.model import MaskedTokenCrossEntropy, build_token_classifier

MINILM = {
    "vocabulary_size": 30522,
    "num_layers": 6,
    "num_heads": 12,
    "hidden_dim": 384,
    "intermediate_dim": 1536,
    "max_sequence_length": 512,
}


def batch(
    rng: np.random.Generator, size: int, length: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    inputs = {
        "token_ids": rng.integers(1000, 30000, (size, length)).astype("int32"),
        "segment_ids": np.zeros((size, length), "int32"),
        "padding_mask": np.ones((size, length), bool),
    }
    return inputs, rng.integers(-1, 3, (size, length)).astype("int32")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--mixed-precision", action="store_true")
    args = parser.parse_args()
    if args.mixed_precision:
        keras.config.set_dtype_policy("mixed_bfloat16")
    rng = np.random.default_rng(0)
    model = build_token_classifier(keras_hub.models.BertBackbone(**MINILM), 3)
    model.compile(optimizer=keras.optimizers.AdamW(1e-4), loss=MaskedTokenCrossEntropy())
    x, y = batch(rng, 32, args.length)
    losses = [float(model.train_on_batch(x, y)) for _ in range(2)]  # compile
    started = time.perf_counter()
    losses += [float(model.train_on_batch(x, y)) for _ in range(args.train_steps)]
    train_seconds = (time.perf_counter() - started) / args.train_steps
    x, _ = batch(rng, args.batch, args.length)
    model.predict_on_batch(x)
    started = time.perf_counter()
    runs = 10
    for _ in range(runs):
        np.asarray(model.predict_on_batch(x))
    infer_seconds = (time.perf_counter() - started) / runs
    print(
        json.dumps(
            {
                "device": describe_device(),
                "backend": keras.backend.backend(),
                "keras": keras.__version__,
                "train_step_ms_batch32": round(1000 * train_seconds, 1),
                "loss_first_last": [round(losses[0], 4), round(losses[-1], 4)],
                "inference_tokens_per_s": round(args.batch * args.length / infer_seconds),
                "batch": args.batch,
                "length": args.length,
                "mixed_precision": args.mixed_precision,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
