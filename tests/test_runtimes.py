"""The ONNX Runtime path: the same logits as Keras, an int8 variant, and its graph cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from tagger.model_folder import WEIGHTS_FILE, load_model_folder
from tagger.onnx_graph import OnnxExportError, classifier_graph, classifier_weights
from tagger.runtimes import (
    KerasRuntime,
    OnnxRuntime,
    RuntimeSetupError,
    choose_serving,
    ensure_onnx_graph,
    onnx_graph_path,
)
from tagger.tagger import Tagger
from tests.conftest import REPO_ROOT
from tests.tiny import tiny_corpus


def random_batch(vocabulary_size: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(5, vocabulary_size, (3, 11)).astype(np.int32)
    padding_mask = np.ones((3, 11), dtype=bool)
    padding_mask[1, 7:] = False
    padding_mask[2, 4:] = False
    token_ids[~padding_mask] = 0
    return {
        "token_ids": token_ids,
        "segment_ids": np.zeros_like(token_ids),
        "padding_mask": padding_mask,
    }


@pytest.mark.parametrize("fused", [True, False])
def test_onnx_graph_computes_the_keras_logits(
    tiny_model_dir: Path, tmp_path: Path, fused: bool
) -> None:
    import onnx

    loaded = load_model_folder(tiny_model_dir)
    graph = classifier_graph(
        classifier_weights(loaded.model), loaded.metadata.backbone_config, fused=fused
    )
    onnx.save(graph, str(tmp_path / "graph.onnx"))
    inputs = random_batch(len(loaded.encoder.vocab))
    expected = np.asarray(loaded.model.predict_on_batch(inputs))
    session = onnxruntime.InferenceSession(str(tmp_path / "graph.onnx"))
    got = session.run(None, {k: v.astype(np.int32) for k, v in inputs.items()})[0]
    real = inputs["padding_mask"]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got[real], expected[real], atol=1e-4, rtol=1e-4)


def test_onnx_runtime_takes_each_window_alone_without_its_padding(
    tiny_model_dir: Path,
) -> None:
    loaded = load_model_folder(tiny_model_dir)
    runtime = OnnxRuntime(ensure_onnx_graph(tiny_model_dir, loaded.metadata.version, "int8"))
    inputs = random_batch(len(loaded.encoder.vocab), seed=4)
    together = runtime.logits(inputs)
    for row in range(3):
        length = int(inputs["padding_mask"][row].sum())
        alone = runtime.logits({k: v[row : row + 1, :length] for k, v in inputs.items()})
        # int8 activations are quantized per input: alone, a window's result is its own.
        np.testing.assert_array_equal(together[row, :length], alone[0])
        assert not together[row, length:].any()


def test_windows_run_side_by_side_with_the_same_logits_as_one_at_a_time(
    tiny_model_dir: Path,
) -> None:
    loaded = load_model_folder(tiny_model_dir)
    graph = ensure_onnx_graph(tiny_model_dir, loaded.metadata.version, "int8")
    inputs = random_batch(len(loaded.encoder.vocab), seed=7)
    one_core = OnnxRuntime(graph, threads=1).logits(inputs)
    side_by_side = OnnxRuntime(graph, threads=3)
    assert side_by_side.threads == 3
    np.testing.assert_array_equal(side_by_side.logits(inputs), one_core)


def test_a_failing_window_fails_the_batch_instead_of_leaving_zeros(
    tiny_model_dir: Path,
) -> None:
    loaded = load_model_folder(tiny_model_dir)
    runtime = OnnxRuntime(
        ensure_onnx_graph(tiny_model_dir, loaded.metadata.version, "float32"), threads=2
    )
    inputs = random_batch(len(loaded.encoder.vocab), seed=8)
    inputs["token_ids"] = inputs["token_ids"].copy()
    inputs["token_ids"][1, 0] = 10**6  # beyond the vocabulary: Gather fails on this window
    with pytest.raises(Exception, match=r"(?i)gather|indices"):
        runtime.logits(inputs)


def test_onnx_tagger_labels_like_the_keras_tagger(tiny_model_dir: Path) -> None:
    sentences = [s.words for s in tiny_corpus()]
    keras_tagger = Tagger.load(tiny_model_dir, runtime="keras")
    onnx_tagger = Tagger.load(tiny_model_dir, runtime="onnx", precision="float32")
    keras_results = keras_tagger.tag_words(sentences)
    onnx_results = onnx_tagger.tag_words(sentences)
    for (keras_labels, keras_scores), (onnx_labels, onnx_scores) in zip(
        keras_results, onnx_results, strict=True
    ):
        assert onnx_labels == keras_labels
        np.testing.assert_allclose(onnx_scores, keras_scores, atol=1e-4)
    assert onnx_tagger.device == "CPU (ONNX Runtime)"
    with pytest.raises(AttributeError, match="runtime='keras'"):
        onnx_tagger.model  # noqa: B018


def test_int8_tagger_finds_the_same_diseases(tiny_model_dir: Path) -> None:
    text = "Patients developed renal failure after cocaine. Lithium induced hepatitis."
    full = Tagger.load(tiny_model_dir, runtime="keras").tag(text)
    quantized = Tagger.load(tiny_model_dir, runtime="onnx", precision="int8").tag(text)
    assert [(s.start, s.end) for s in quantized] == [(s.start, s.end) for s in full]


def test_graphs_are_derived_once_into_the_cache_not_the_model_folder(
    tiny_model_dir: Path, onnx_cache: Path
) -> None:
    version = Tagger.load(tiny_model_dir, runtime="onnx").version
    path = onnx_graph_path(version, "int8")
    assert path.is_relative_to(onnx_cache) and path.is_file()
    assert not (tiny_model_dir / "onnx").exists()
    written = path.stat().st_mtime_ns
    Tagger.load(tiny_model_dir, runtime="onnx")
    assert path.stat().st_mtime_ns == written


def test_a_replaced_weights_file_makes_the_graph_stale(tiny_model_dir: Path, tmp_path: Path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    version = Tagger.load(folder, runtime="onnx", precision="float32").version
    path = onnx_graph_path(version, "float32")
    before = path.read_bytes()
    weights = folder / WEIGHTS_FILE
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    Tagger.load(folder, runtime="onnx", precision="float32")
    assert path.read_bytes() != before  # stamped with the new weights' time


def test_a_corrupt_cached_graph_is_derived_again(tiny_model_dir: Path) -> None:
    version = Tagger.load(tiny_model_dir, runtime="onnx", precision="float32").version
    path = onnx_graph_path(version, "float32")
    path.write_bytes(b"\x00 not a graph")
    tagger = Tagger.load(tiny_model_dir, runtime="onnx", precision="float32")
    assert tagger.tag("Patients developed renal failure.") is not None
    assert path.stat().st_size > 1000


def test_unknown_runtime_and_unsupported_precision_name_the_choices(
    tiny_model_dir: Path,
) -> None:
    with pytest.raises(ValueError, match=r"runtime 'tflite' is unknown.*auto, keras or onnx"):
        Tagger.load(tiny_model_dir, runtime="tflite")
    with pytest.raises(
        RuntimeSetupError,
        match=r"--runtime onnx has no bfloat16 precision\. Fix: use --runtime keras "
        r"--precision bfloat16, or --runtime onnx with --precision float32 or int8",
    ):
        Tagger.load(tiny_model_dir, runtime="onnx", precision="bfloat16")


def test_export_rejects_a_model_that_is_not_a_kerashub_bert() -> None:
    with pytest.raises(OnnxExportError, match="token_embedding/embeddings"):
        classifier_graph({}, {"num_heads": 2, "hidden_dim": 8, "num_layers": 1})


def test_serving_from_a_cached_graph_never_imports_tensorflow(tiny_model_dir: Path) -> None:
    Tagger.load(tiny_model_dir, runtime="onnx")  # derive the graph first
    code = (
        "import sys\n"
        "from tagger.tagger import Tagger\n"
        "tagger = Tagger.load(sys.argv[1], runtime='onnx')\n"
        "tagger.tag('Patients developed renal failure.')\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tiny_model_dir)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


# ---------------------------------------------------------------- runtime and precision


@pytest.mark.parametrize("default", ["keras", "onnx"])
@pytest.mark.parametrize(
    ("runtime", "precision", "expected"),
    [
        ("keras", None, ("keras", "float32")),
        ("keras", "float32", ("keras", "float32")),
        ("keras", "bfloat16", ("keras", "bfloat16")),
        ("keras", "float16", ("keras", "float16")),
        ("onnx", None, ("onnx", "int8")),
        ("onnx", "float32", ("onnx", "float32")),
        ("onnx", "int8", ("onnx", "int8")),
        # auto: a precision only one runtime has picks that runtime, wherever it runs
        ("auto", "bfloat16", ("keras", "bfloat16")),
        ("auto", "float16", ("keras", "float16")),
        ("auto", "int8", ("onnx", "int8")),
    ],
)
def test_every_combination_that_works_is_served_as_asked(
    runtime: str, precision: str | None, expected: tuple[str, str], default: str
) -> None:
    assert choose_serving(runtime, precision, default=lambda: default) == expected


@pytest.mark.parametrize("default", ["keras", "onnx"])
def test_auto_without_a_precision_or_with_float32_takes_the_default_runtime(
    default: str,
) -> None:
    served = {"keras": "float32", "onnx": "int8"}[default]
    assert choose_serving("auto", None, default=lambda: default) == (default, served)
    assert choose_serving("auto", "float32", default=lambda: default) == (default, "float32")


@pytest.mark.parametrize(
    ("runtime", "precision", "fix"),
    [
        (
            "keras",
            "int8",
            "use --runtime onnx --precision int8, or --runtime keras with --precision "
            "float32, bfloat16 or float16",
        ),
        (
            "onnx",
            "bfloat16",
            "use --runtime keras --precision bfloat16, or --runtime onnx with --precision "
            "float32 or int8",
        ),
        (
            "onnx",
            "float16",
            "use --runtime keras --precision float16, or --runtime onnx with --precision "
            "float32 or int8",
        ),
        ("tflite", None, "use --runtime auto, keras or onnx"),
        ("auto", "fp8", "use --precision float32, bfloat16, float16 or int8"),
    ],
)
def test_a_combination_that_cannot_be_served_names_those_that_can(
    runtime: str, precision: str | None, fix: str
) -> None:
    with pytest.raises(RuntimeSetupError) as caught:
        choose_serving(runtime, precision, default=lambda: "onnx")
    assert caught.value.fix == fix


def test_without_onnx_runtime_only_keras_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tagger.runtimes.onnx_installed", lambda: False)
    assert choose_serving("auto", None) == ("keras", "float32")
    for runtime, precision in [("onnx", None), ("auto", "int8")]:
        with pytest.raises(RuntimeSetupError, match=r"not installed.*--runtime keras"):
            choose_serving(runtime, precision)


def test_tagger_says_how_it_serves(tiny_model_dir: Path) -> None:
    onnx_tagger = Tagger.load(tiny_model_dir, runtime="onnx", precision="float32")
    assert (onnx_tagger.runtime_name, onnx_tagger.precision) == ("onnx", "float32")
    assert onnx_tagger.describe_serving() == "ONNX Runtime float32 on CPU"
    assert onnx_tagger.serving_note is None
    keras_tagger = Tagger.load(tiny_model_dir, runtime="keras")
    assert keras_tagger.describe_serving() == f"Keras float32 on {keras_tagger.device}"
    assert keras_tagger.serving_note is None


def test_auto_with_bfloat16_serves_keras_bfloat16_not_float32(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tagger.runtimes.default_runtime", lambda: "onnx")  # a CPU-only box
    tagger = Tagger.load(tiny_model_dir, precision="bfloat16")
    assert isinstance(tagger.runtime, KerasRuntime)
    assert tagger.precision == "bfloat16" and tagger.serving_note is None
    assert any(layer.dtype_policy.name == "mixed_bfloat16" for layer in tagger.model.layers)
    assert tagger.describe_serving().startswith("Keras bfloat16 on ")
    assert tagger.tag("Patients developed renal failure.") is not None
    # A Tagger built around a model in memory (as training does) reads its precision.
    in_memory = Tagger(load_model_folder(tiny_model_dir, precision="bfloat16"))
    assert (in_memory.runtime_name, in_memory.precision) == ("keras", "bfloat16")


def test_keras_int8_is_refused_before_anything_loads(tmp_path: Path) -> None:
    # The flags are checked first: even a missing model gives the flag error.
    with pytest.raises(RuntimeSetupError, match=r"--runtime keras has no int8 precision"):
        Tagger.load(tmp_path / "no-model", runtime="keras", precision="int8")


def block_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("TAGGER_CACHE_DIR", str(blocked))
    monkeypatch.setattr("tagger.runtimes.default_runtime", lambda: "onnx")
    return blocked


def test_an_unwritable_cache_names_the_fix(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = block_the_cache(tmp_path, monkeypatch)
    with pytest.raises(RuntimeSetupError) as caught:
        Tagger.load(tiny_model_dir, runtime="onnx")
    assert f"the ONNX graph cache {blocked} is not writable" in str(caught.value)
    assert caught.value.fix == "set TAGGER_CACHE_DIR to a writable folder, or pass --runtime keras"


def test_auto_falls_back_to_keras_float32_and_says_so(
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocked = block_the_cache(tmp_path, monkeypatch)
    with caplog.at_level("WARNING", logger="tagger.tagger"):
        tagger = Tagger.load(tiny_model_dir)
    assert isinstance(tagger.runtime, KerasRuntime)
    assert (tagger.runtime_name, tagger.precision) == ("keras", "float32")
    note = tagger.serving_note
    assert note is not None
    assert note.startswith("serving with Keras float32 instead of ONNX Runtime int8: ")
    assert f"the ONNX graph cache {blocked} is not writable" in note
    assert note.endswith("(set TAGGER_CACHE_DIR to a writable folder to serve with ONNX Runtime)")
    assert [record.getMessage() for record in caplog.records] == [note]
    assert tagger.describe_serving() == f"Keras float32 on {tagger.device}"
    assert tagger.tag("Patients developed renal failure.") is not None
    # float32 is float32 on either runtime: falling back keeps what was asked for.
    float32 = Tagger.load(tiny_model_dir, precision="float32")
    assert (float32.runtime_name, float32.precision) == ("keras", "float32")
    assert float32.serving_note == note.replace("ONNX Runtime int8", "ONNX Runtime float32")


@pytest.mark.parametrize("runtime", ["auto", "onnx"])
def test_no_fallback_where_it_would_change_what_was_asked_for(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime: str
) -> None:
    block_the_cache(tmp_path, monkeypatch)
    with pytest.raises(RuntimeSetupError, match="TAGGER_CACHE_DIR"):
        Tagger.load(tiny_model_dir, runtime=runtime, precision="int8")


def test_training_scores_on_onnx_float32_with_the_keras_labels(tiny_model_dir: Path) -> None:
    from tagger.tagger import scoring_tagger

    keras_tagger = Tagger.load(tiny_model_dir, runtime="keras")
    scorer = scoring_tagger(keras_tagger)
    assert scorer.describe_serving() == "ONNX Runtime float32 on CPU"
    sentences = [s.words for s in tiny_corpus()]
    for (keras_labels, keras_scores), (labels, scores) in zip(
        keras_tagger.tag_words(sentences), scorer.tag_words(sentences), strict=True
    ):
        assert labels == keras_labels
        np.testing.assert_allclose(scores, keras_scores, atol=1e-4)


def test_training_scores_with_keras_itself_where_keras_serves(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tagger import tagger as tagger_module

    monkeypatch.setattr(tagger_module, "default_runtime", lambda: "keras")
    keras_tagger = Tagger.load(tiny_model_dir, runtime="keras")
    assert tagger_module.scoring_tagger(keras_tagger) is keras_tagger
    onnx_tagger = Tagger.load(tiny_model_dir, runtime="onnx")
    assert tagger_module.scoring_tagger(onnx_tagger) is onnx_tagger  # no Keras model to export
