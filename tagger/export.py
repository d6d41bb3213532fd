"""Export a model folder as a TensorFlow SavedModel for TensorFlow Serving.

Usage:
    python -m tagger.export [--model MODEL] --out exports/disease-tagger/1

``--model`` is a model folder, a version id in the registry or ``current``; without it,
the version in service (the registry folder is ``$TAGGER_REGISTRY_DIR``, default
``models``).

TensorFlow Serving expects ``<model base path>/<numeric version>/``, hence the ``/1``.
The SavedModel's default signature (``serving_default``, also callable as ``serve``)
takes three int32 tensors of shape ``(batch, tokens)``:

``token_ids``     WordPiece ids, ``[CLS] ... [SEP]`` and padding included
``segment_ids``   all zeros for this tagger
``padding_mask``  1 for real tokens, 0 for padding

and returns ``logits`` and ``probabilities``, ``(batch, tokens, labels)``. The files a
client needs to build those inputs and read the outputs (``vocab.txt`` and
``model.json``, with the label names, casing and window settings) are copied into
``assets.extra/``, where TensorFlow Serving keeps but ignores them.

Example:

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp()) / "tagger" / "1"
>>> export_saved_model(tiny_model_dir, out) == out
True
>>> sorted(path.name for path in (out / "assets.extra").iterdir())
['model.json', 'vocab.txt']

Serve it with ``tensorflow_model_server --rest_api_port=8501 --model_name=tagger
--model_base_path=$PWD/exports/tagger``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras

from tagger.cli import ArgumentParser, add_model_argument
from tagger.errors import TaggerError, run_cli
from tagger.model_folder import METADATA_FILE, VOCAB_FILE, load_model_folder
from tagger.references import resolve_model

EXTRA_ASSETS_DIR = "assets.extra"
INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")


class ExportError(TaggerError, RuntimeError):
    """An export that cannot be done as asked; the message names the fix."""


def _require_tensorflow_backend() -> None:
    if keras.backend.backend() != "tensorflow":
        raise ExportError(
            f"a TensorFlow SavedModel needs the TensorFlow backend, but Keras runs on "
            f"{keras.backend.backend()!r}",
            fix="run with KERAS_BACKEND=tensorflow",
        )


def serving_function(model: keras.Model) -> Any:
    """A ``tf.function`` over the three int32 inputs, returning logits and probabilities."""
    import tensorflow as tf

    specs = [tf.TensorSpec((None, None), tf.int32, name=name) for name in INPUT_NAMES]

    @tf.function(input_signature=specs)
    def serve(
        token_ids: tf.Tensor, segment_ids: tf.Tensor, padding_mask: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        inputs = {
            "token_ids": token_ids,
            "segment_ids": segment_ids,
            "padding_mask": tf.cast(padding_mask, tf.bool),
        }
        logits = model(inputs, training=False)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1)}

    return serve


def export_saved_model(model_dir: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write the SavedModel to ``out`` (replaced if it exists), atomically.

    ``model_dir`` is a model folder, a registry version id or ``current``.
    """
    _require_tensorflow_backend()
    loaded = load_model_folder(resolve_model(model_dir))
    target = Path(out)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    except OSError as error:
        raise ExportError(
            f"cannot write to {target.parent} ({error.strerror or error})",
            fix="pass --out a folder in a writable place",
        ) from None
    try:
        archive = keras.export.ExportArchive()
        archive.track(loaded.model)
        # The first endpoint also becomes `serving_default`, the one TF Serving calls.
        archive.add_endpoint("serve", serving_function(loaded.model))
        archive.write_out(str(staging / "model"), verbose=False)
        extra = staging / "model" / EXTRA_ASSETS_DIR
        extra.mkdir(exist_ok=True)
        for name in (VOCAB_FILE, METADATA_FILE):
            shutil.copyfile(loaded.folder / name, extra / name)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging / "model", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


PROG = "python -m tagger.export"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    add_model_argument(parser)
    parser.add_argument(
        "--out", required=True, help="SavedModel folder to write, e.g. exports/tagger/1"
    )
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    model = resolve_model(args.model)
    folder = export_saved_model(model, args.out)
    print(f"exported {model} to {folder} (signature serving_default)", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status 0, or 2 after one `python -m tagger.export: error: ...` line on stderr."""
    return run_cli(lambda: run(argv), prog=PROG)


if __name__ == "__main__":
    raise SystemExit(main())
