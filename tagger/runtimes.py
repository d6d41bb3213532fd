"""What computes the logits of a padded batch: Keras itself, or ONNX Runtime.

Both take the inputs of `tagger.windows.pad_batch` and return float32 logits of shape
`(batch, tokens, labels)`. `Tagger.load(runtime=...)` picks one by name:

- `keras`: the Keras model, on whatever backend and device Keras runs (the GPU if one is
  visible); precisions float32, bfloat16, float16 (mixed precision).
- `onnx`: the same weights as an ONNX graph (`tagger.onnx_graph`) on ONNX Runtime's CPU
  kernels; precisions float32 and int8 (dynamically quantized matrix products). The graph
  is derived once per model version into a cache (`$TAGGER_CACHE_DIR`, by default
  `~/.cache/disease-tagger`), never into the model folder, and reused; a process that
  loads a cached graph never imports Keras or TensorFlow, which is most of its memory.

`auto` takes ONNX Runtime on a CPU-only machine and Keras where a GPU is visible; given a
precision only one runtime has, it takes that one. A combination that cannot be served
is a :class:`RuntimeSetupError` naming those that can (:func:`choose_serving`).

Example:
    >>> choose_serving("auto", "bfloat16")
    ('keras', 'bfloat16')
    >>> choose_serving("keras", None)
    ('keras', 'float32')
    >>> choose_serving("keras", "int8")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tagger.runtimes.RuntimeSetupError: --runtime keras has no int8 precision. Fix: ...
    >>> from tagger.tagger import Tagger
    >>> Tagger.load(tiny_model_dir, runtime="onnx", precision="int8").describe_serving()
    'ONNX Runtime int8 on CPU'
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tagger.errors import TaggerError

ONNX_DIR = "onnx"
KERAS_PRECISIONS = ("float32", "bfloat16", "float16")
ONNX_PRECISIONS = ("float32", "int8")
PRECISIONS_BY_RUNTIME = {"keras": KERAS_PRECISIONS, "onnx": ONNX_PRECISIONS}
ALL_PRECISIONS = ("float32", "bfloat16", "float16", "int8")
RUNTIME_CHOICES = ("auto", "keras", "onnx")
DEFAULT_PRECISIONS = {"keras": "float32", "onnx": "int8"}
RUNTIME_NAMES = {"keras": "Keras", "onnx": "ONNX Runtime"}
STAMP_KEY = "derived_from"
SERVING_NOTE_FLAG = "serving_note"  # set on the log record of a serving fallback


def default_runtime() -> str:
    """`onnx` on a CPU-only machine with ONNX Runtime installed, else `keras`.

    ONNX Runtime here runs on the CPU only; with a GPU visible, Keras serves on it. The
    check looks for NVIDIA device files rather than importing TensorFlow to ask.
    """
    if any(Path(device).exists() for device in ("/dev/nvidiactl", "/dev/nvidia0")):
        return "keras"
    return "onnx" if onnx_installed() else "keras"


class RuntimeSetupError(TaggerError, ValueError):
    """A runtime that cannot serve this model as asked; the message names the fix.

    ``remedy``, where given, is what makes this runtime work (``fix`` may instead offer
    another runtime); a serving fallback quotes it in its note.
    """

    def __init__(
        self,
        what: str,
        *,
        where: str | None = None,
        fix: str | None = None,
        remedy: str | None = None,
    ) -> None:
        super().__init__(what, where=where, fix=fix)
        self.remedy = remedy or fix


def _or_list(items: tuple[str, ...] | list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def onnx_installed() -> bool:
    """Whether ONNX Runtime and onnx (for the graph cache) can be imported; imports neither."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def choose_serving(
    runtime: str, precision: str | None, *, default: Callable[[], str] | None = None
) -> tuple[str, str]:
    """The runtime and precision to serve with, or a :class:`RuntimeSetupError`.

    ``runtime`` is ``auto``, ``keras`` or ``onnx``; ``precision`` None is the runtime's
    default (float32 on Keras, int8 on ONNX Runtime). ``auto`` with a precision that only
    one runtime has takes that runtime; otherwise ``default()`` (:func:`default_runtime`)
    decides.
    """
    if runtime not in RUNTIME_CHOICES:
        raise RuntimeSetupError(
            f"runtime {runtime!r} is unknown", fix=f"use --runtime {_or_list(RUNTIME_CHOICES)}"
        )
    if precision is not None and precision not in ALL_PRECISIONS:
        raise RuntimeSetupError(
            f"precision {precision!r} is unknown",
            fix=f"use --precision {_or_list(ALL_PRECISIONS)}",
        )
    chosen = runtime
    if runtime == "auto":
        preferred = (default or default_runtime)()
        offering = [name for name, offered in PRECISIONS_BY_RUNTIME.items() if precision in offered]
        chosen = preferred if precision is None or preferred in offering else offering[0]
    served = precision or DEFAULT_PRECISIONS[chosen]
    if served not in PRECISIONS_BY_RUNTIME[chosen]:
        others = [name for name, offered in PRECISIONS_BY_RUNTIME.items() if served in offered]
        raise RuntimeSetupError(
            f"--runtime {chosen} has no {served} precision",
            fix=f"use --runtime {others[0]} --precision {served}, or --runtime {chosen} with "
            f"--precision {_or_list(PRECISIONS_BY_RUNTIME[chosen])}",
        )
    if chosen == "onnx" and not onnx_installed():
        raise RuntimeSetupError(
            f"ONNX Runtime is not installed, so {served} on --runtime onnx cannot be served",
            fix="install onnxruntime and onnx (`pip install -r requirements.txt`), or pass "
            f"--runtime keras with --precision {_or_list(KERAS_PRECISIONS)}",
        )
    return chosen, served


class LogitsRuntime(Protocol):
    num_labels: int
    bucketed: bool  # pad batches to tagger.windows.LENGTH_BUCKETS (compiled steps retrace less)

    def logits(self, inputs: dict[str, np.ndarray]) -> np.ndarray: ...


class KerasRuntime:
    """A Keras token classifier's `predict_on_batch`."""

    bucketed = True

    def __init__(self, model: Any) -> None:
        self.model = model
        self.num_labels = int(model.output_shape[-1])

    def logits(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self.model.predict_on_batch(inputs))


class OnnxRuntime:
    """An ONNX Runtime session of a graph written by `tagger.onnx_graph`.

    Args:
        path: the `.onnx` graph, or the serialized graph itself.
        threads: cores to use (default: all this process may run on). Each window runs
            on one core and `threads` windows run at once, in one shared session.

    Windows run side by side rather than each on all cores because a 128-token window
    is too small to split: intra-op threads wait on one another at every operator, and
    two single-threaded windows at a time measured about 1.7 times the throughput of
    one window on two threads (BENCHMARKS.md, serving).
    """

    # ONNX Runtime has no compiled shapes to reuse: pad to the batch's longest window only.
    bucketed = False

    def __init__(self, path: str | Path | bytes, *, threads: int | None = None) -> None:
        import onnxruntime

        self.threads = max(1, threads or available_cores())
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # shape-merge notices on fused operators are noise
        try:
            self.session = onnxruntime.InferenceSession(
                path if isinstance(path, bytes) else str(path),
                options,
                providers=["CPUExecutionProvider"],
            )
        except Exception as error:  # onnxruntime raises its own exception types
            remedy = f"delete {path}; the next load derives it again from the model's weights"
            raise RuntimeSetupError(
                f"ONNX Runtime cannot load {path} ({error})",
                fix=f"{remedy}, or pass --runtime keras",
                remedy=remedy,
            ) from None
        self.num_labels = int(self.session.get_outputs()[0].shape[-1])
        self._pool = (
            ThreadPoolExecutor(self.threads, thread_name_prefix="onnx-window")
            if self.threads > 1
            else None
        )

    def logits(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Each window alone, without its padding, `threads` windows at a time.

        int8 graphs quantize activations with a scale taken from the whole input, so in
        a batch a window's labels would depend on its neighbours; alone they never do,
        and alone no padding is computed.
        """
        token_ids = inputs["token_ids"]
        lengths = np.asarray(inputs["padding_mask"]).sum(axis=1).tolist()
        result = np.zeros((*token_ids.shape, self.num_labels), np.float32)

        def run_window(row: int) -> None:
            length = lengths[row]
            feed = {
                name: np.asarray(value[row : row + 1, :length], dtype=np.int32)
                for name, value in inputs.items()
            }
            result[row, :length] = self.session.run(None, feed)[0][0]

        rows = range(len(lengths))
        if self._pool is None or len(lengths) == 1:
            for row in rows:
                run_window(row)
        else:
            # ONNX Runtime releases the GIL while it runs; list() re-raises any error.
            list(self._pool.map(run_window, rows))
        return result


def add_serving_arguments(parser: argparse.ArgumentParser) -> None:
    """`--runtime` and `--precision`, as `Tagger.load` takes them, for command lines."""
    parser.add_argument(
        "--runtime",
        choices=RUNTIME_CHOICES,
        default="auto",
        help="auto (default): ONNX Runtime on a CPU-only machine, Keras where a GPU is "
        "visible, or the one runtime that has the --precision asked for",
    )
    parser.add_argument(
        "--precision",
        choices=ALL_PRECISIONS,
        help=f"keras: {', '.join(KERAS_PRECISIONS)}; onnx: {', '.join(ONNX_PRECISIONS)} "
        "(default: float32 on Keras, int8 on ONNX Runtime)",
    )


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# ---------------------------------------------------------------- the ONNX graph cache


CACHE_DIR_ENV = "TAGGER_CACHE_DIR"


def cache_dir() -> Path:
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "disease-tagger"


def onnx_graph_path(version: str, precision: str) -> Path:
    return cache_dir() / ONNX_DIR / version / f"classifier.{precision}.onnx"


def weights_stamp(folder: Path, version: str) -> str:
    """Which weights a graph was derived from: a replaced weights file is a new stamp."""
    from tagger.model_folder import WEIGHTS_FILE

    status = (folder / WEIGHTS_FILE).stat()
    return f"{version}:{status.st_size}:{status.st_mtime_ns}"


def ensure_onnx_graph(folder: Path, version: str, precision: str) -> Path:
    """The ONNX graph of the model in `folder` at `precision`, derived first if missing.

    A graph records the weights it was derived from; a stale one is derived again.
    """
    if precision not in ONNX_PRECISIONS:
        raise RuntimeSetupError(
            f"--runtime onnx has no {precision} precision",
            fix=f"use --runtime onnx with --precision {_or_list(ONNX_PRECISIONS)}, or "
            f"--runtime keras --precision {precision}",
        )
    path = onnx_graph_path(version, precision)
    stamp = weights_stamp(folder, version)
    if _graph_stamp(path) == stamp:
        return path
    try:
        if precision == "int8":
            full = ensure_onnx_graph(folder, version, "float32")
            _write_atomically(path, lambda staging: _quantize(full, staging, stamp))
        else:
            _write_atomically(path, lambda staging: _export_float32(folder, staging, stamp))
    except OSError as error:
        remedy = f"set {CACHE_DIR_ENV} to a writable folder"
        raise RuntimeSetupError(
            f"the ONNX graph cache {cache_dir()} is not writable (writing {path}: "
            f"{error.strerror or error})",
            fix=f"{remedy}, or pass --runtime keras",
            remedy=remedy,
        ) from None
    return path


def _graph_stamp(path: Path) -> str | None:
    if not path.is_file():
        return None
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # a truncated or foreign file: derive it again
        return None
    return {entry.key: entry.value for entry in model.metadata_props}.get(STAMP_KEY)


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    from tagger.model_folder import shared_file_mode

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        write(Path(staging))
        # mkstemp makes it private; a shared cache gets what open() would under the umask.
        os.chmod(staging, shared_file_mode())
        os.replace(staging, path)
    finally:
        Path(staging).unlink(missing_ok=True)


def _stamp(model: Any, stamp: str) -> None:
    from onnx import helper

    del model.metadata_props[:]
    helper.set_model_props(model, {STAMP_KEY: stamp})


def _export_float32(folder: Path, out: Path, stamp: str) -> None:
    import onnx

    from tagger.model_folder import load_model_folder
    from tagger.onnx_graph import classifier_graph, classifier_weights

    loaded = load_model_folder(folder)
    graph = classifier_graph(classifier_weights(loaded.model), loaded.metadata.backbone_config)
    _stamp(graph, stamp)
    onnx.save(graph, str(out))


def _quantize(full: Path, out: Path, stamp: str) -> None:
    """int8 weights for every matrix product, activations quantized per batch at run time."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    hint = _DropMessage("pre-processing before quantization")  # advice for vision models
    logging.getLogger().addFilter(hint)
    try:
        quantize_dynamic(
            str(full),
            str(out),
            weight_type=QuantType.QInt8,
            per_channel=True,
            # Fused com.microsoft operators have no ONNX shape inference; they output float.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        logging.getLogger().removeFilter(hint)
    model = onnx.load(str(out))
    _stamp(model, stamp)
    onnx.save(model, str(out))


class _DropMessage(logging.Filter):
    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        return self.fragment not in record.getMessage()
