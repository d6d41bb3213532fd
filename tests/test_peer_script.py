"""The peer benchmark's install contract: every package pinned, torch at the CPU build.

`benchmarks/peer_hf.py` itself needs torch, which the project's .venv does not have, so
its requirements file is checked here, and its serving sweep is run as a subprocess of
.venv-bench's python on a tiny random BERT (skipped, saying how to get it, without that
venv). An unpinned line or another torch version makes `make bench-env` resolve a multi-GB
CUDA build of torch instead of the CPU wheel on disk. The spaCy CNN baseline runs in the
project's .venv; its wiring into `benchmarks.run_all` and the report is checked at the
end, without training anything.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tagger.bio import write_bio
from tests.tiny import tiny_corpus, tiny_vocabulary

REPO_ROOT = Path(__file__).resolve().parent.parent
PEER_REQUIREMENTS = REPO_ROOT / "benchmarks" / "requirements-peer.txt"
PEER_SCRIPT = REPO_ROOT / "benchmarks" / "peer_hf.py"
BENCH_PYTHON = REPO_ROOT / ".venv-bench" / "bin" / "python"
CPU_TORCH_VERSION = "2.13.0"
SERVE_CONFIGS = ("torch-fp32", "torch-int8", "ort-fp32-fused", "ort-int8-fused")
PINNED = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[0-9][0-9A-Za-z.+-]*)")


def requirement_lines(path: Path = PEER_REQUIREMENTS) -> list[tuple[int, str]]:
    """(line number, requirement) for every line that is not blank or a comment."""
    lines = path.read_text().splitlines()
    return [
        (number, line.split("#", 1)[0].strip())
        for number, line in enumerate(lines, start=1)
        if line.split("#", 1)[0].strip()
    ]


def pinned_versions(path: Path = PEER_REQUIREMENTS) -> dict[str, str]:
    pins: dict[str, str] = {}
    for _, requirement in requirement_lines(path):
        match = PINNED.fullmatch(requirement)
        if match:
            pins[match["name"].lower()] = match["version"]
    return pins


def test_every_peer_requirement_is_pinned_exactly() -> None:
    unpinned = [
        f"{PEER_REQUIREMENTS.name}:{number}: {requirement!r}"
        for number, requirement in requirement_lines()
        if not PINNED.fullmatch(requirement)
    ]
    assert not unpinned, f"pin these as name==version: {unpinned}"


def test_peer_requirements_pin_the_cpu_torch_and_the_libraries_the_script_imports() -> None:
    pins = pinned_versions()
    assert pins.get("torch") == CPU_TORCH_VERSION
    assert {"transformers", "seqeval", "numpy", "safetensors", "tqdm"} <= pins.keys()
    # Scores must be computed the same way as the project's own evaluation.
    assert pins["seqeval"] == pinned_versions(REPO_ROOT / "requirements.txt")["seqeval"]


def test_the_peer_onnx_runtime_is_the_one_the_project_serves_with() -> None:
    """The sweep's ORT configurations run the very onnx/onnxruntime our CPU serving pins."""
    ours = pinned_versions(REPO_ROOT / "requirements.txt")
    pins = pinned_versions()
    assert pins["onnx"] == ours["onnx"]
    assert pins["onnxruntime"] == ours["onnxruntime"]


# ------------------------------------------------ the serving sweep, on a tiny random BERT

# Run by .venv-bench's python: a random 2-layer BERT encoder (no head, as MiniLM ships)
# with the tiny corpus's vocabulary, saved as a Hugging Face model folder.
MAKE_TINY_HF_BERT = """
import sys
import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

folder, vocab = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
config = BertConfig(
    vocab_size=len(open(vocab, encoding="utf-8").read().split()),
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=128,
)
BertModel(config).save_pretrained(folder)
BertTokenizerFast(vocab_file=vocab, do_lower_case=True).save_pretrained(folder)
"""


def run_bench(*args: str | Path) -> None:
    """Run .venv-bench's python; fail with its stderr's tail when it exits non-zero."""
    done = subprocess.run(
        [str(BENCH_PYTHON), *map(str, args)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{args[:3]} exited {done.returncode}:\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def tiny_peer(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny BC5CDR-style splits and a tiny random HF BERT folder, built in .venv-bench."""
    if not BENCH_PYTHON.is_file():
        pytest.skip(f"needs the peer venv {BENCH_PYTHON.parent.parent}: run `make bench-env`")
    probe = subprocess.run(
        [str(BENCH_PYTHON), "-c", "import onnxruntime, torch, transformers"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        pytest.skip(
            f"the peer venv lacks a package ({probe.stderr.strip()[-200:]}): run `make bench-env`"
        )
    root = tmp_path_factory.mktemp("peer")
    data = root / "data"
    data.mkdir()
    corpus = tiny_corpus()
    for name, sentences in (("train", corpus[:48]), ("devel", corpus[48:]), ("test", corpus)):
        write_bio(sentences, data / f"{name}.tsv")
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(tiny_vocabulary()) + "\n", encoding="utf-8")
    encoder = root / "tiny-bert"
    run_bench("-c", MAKE_TINY_HF_BERT, encoder, vocab)
    return {"root": root, "data": data, "encoder": encoder}


def serve_sweep(tiny_peer: dict[str, Path], out: Path, *options: str | Path) -> dict[str, Any]:
    run_bench(
        PEER_SCRIPT,
        "--mode",
        "serve-sweep",
        "--data-dir",
        tiny_peer["data"],
        "--encoder-dir",
        tiny_peer["encoder"],
        "--threads",
        "1",
        "--out",
        out,
        *options,
    )
    return json.loads(out.read_text())


@pytest.mark.slow
def test_the_serve_sweep_times_every_config_at_every_batch_size(
    tiny_peer: dict[str, Path], tmp_path: Path
) -> None:
    """All four configurations at three batch sizes; the best is the fastest; the ONNX graph
    (same weights, BERT fusions applied) tags as torch does; the untrained head has no F1."""
    result = serve_sweep(
        tiny_peer,
        tmp_path / "sweep.json",
        "--batch-sizes",
        "1",
        "4",
        "16",
        "--max-test-sentences",
        "20",
    )
    assert result["recipe"]["mode"] == "serve-sweep"
    assert set(result["configs"]) == set(SERVE_CONFIGS)
    for name, config in result["configs"].items():
        speeds = config["words_per_s_by_batch_size"]
        assert set(speeds) == {"1", "4", "16"}, name
        assert all(speed > 0 for speed in speeds.values()), (name, speeds)
        assert config["words_per_s_best"] == max(speeds.values())
        assert speeds[str(config["best_batch_size"])] == config["words_per_s_best"]
        assert config["latency_ms_median"] > 0
        assert config["latency_batch_size"] == config["best_batch_size"]
        assert config["f1"] is None and config["test"] is None
    configs = result["configs"]
    assert configs["torch-fp32"]["label_agreement_with_torch_fp32"] == 1.0
    assert configs["ort-fp32-fused"]["label_agreement_with_torch_fp32"] >= 0.99
    assert configs["ort-fp32-fused"]["build"]["max_abs_logit_diff_vs_torch_fp32"] < 1e-3
    fusion = configs["ort-fp32-fused"]["build"]["fusion"]
    assert fusion["all_attention_fused"], fusion
    assert "num_heads=4, hidden_size=32" in fusion["call"]
    quantization = configs["ort-int8-fused"]["build"]["quantization"]
    assert quantization["per_channel"] is False
    assert quantization["quantized_node_types"].get("QAttention") == 2  # one per layer
    assert configs["torch-int8"]["build"]["n_linear_quantized"] > 0
    assert result["best_config"] == max(configs, key=lambda n: configs[n]["words_per_s_best"])
    assert result["threads"] == {
        "torch_intra_op": 1,
        "torch_inter_op": 1,
        "ort_intra_op": 1,
        "ort_inter_op": 1,
    }
    assert result["recipe"]["threads"] == 1
    assert result["head"] == "untrained" and result["f1_note"] == "untrained head: speed only"
    assert result["data"]["n_test"] == result["sweep"]["n_sentences"] == 20
    assert isinstance(result["cpu"]["avx2"], bool) and "avx512_vnni" in result["cpu"]
    assert result["versions"]["onnxruntime"] == pinned_versions()["onnxruntime"]


@pytest.mark.slow
def test_the_serve_sweep_scores_the_head_that_train_mode_saved(
    tiny_peer: dict[str, Path], tmp_path: Path
) -> None:
    """`--mode train --save-model DIR` writes a folder that `--weights DIR` serves: each
    configuration then has a strict seqeval F1 on the test split, from the trained head."""
    saved = tmp_path / "trained"
    run_bench(
        PEER_SCRIPT,
        "--data-dir",
        tiny_peer["data"],
        "--encoder-dir",
        tiny_peer["encoder"],
        "--epochs",
        "1",
        "--threads",
        "1",
        "--sorted-batch-sizes",
        "16",
        "--save-model",
        saved,
        "--out",
        tmp_path / "train.json",
    )
    trained = json.loads((tmp_path / "train.json").read_text())
    assert trained["saved_model"] == str(saved) and (saved / "config.json").is_file()
    result = serve_sweep(
        tiny_peer,
        tmp_path / "sweep.json",
        "--weights",
        saved,
        "--configs",
        "torch-fp32",
        "ort-fp32-fused",
        "--batch-sizes",
        "8",
    )
    assert set(result["configs"]) == {"torch-fp32", "ort-fp32-fused"}
    assert result["head"] == "trained" and result["f1_note"] is None
    assert result["weights"] == str(saved)
    assert result["labels"] == trained["labels"]
    torch_fp32, ort_fp32 = result["configs"]["torch-fp32"], result["configs"]["ort-fp32-fused"]
    for config in (torch_fp32, ort_fp32):
        assert isinstance(config["f1"], float) and config["f1"] == config["test"]["f1"]
        assert config["test"]["n_gold"] == trained["test"]["n_gold"] > 0
    # Train mode scored the same weights on the same test split (at batch 64, not 8).
    assert torch_fp32["f1"] == pytest.approx(trained["test"]["f1"], abs=0.5)
    assert ort_fp32["label_agreement_with_torch_fp32"] >= 0.99


# ---------------------------------------------------------------- the spaCy baseline's wiring


def test_the_spacy_baseline_is_a_step_whose_result_reaches_benchmarks_md(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--steps spacy` runs benchmarks/spacy_cnn.py with the shared thread cap, stores what
    it wrote with the command, and the report gives it a row in each table."""
    import argparse

    from benchmarks import run_all
    from benchmarks.report import render_markdown

    assert "spacy" in run_all.STEPS
    monkeypatch.setattr(run_all, "RESULTS", tmp_path)
    ran: list[list[str]] = []
    epoch = {"epoch": 1, "seconds": 50.0, "dev": {"f1": 70.0}}
    raw = {
        "recipe": {
            "config": "spacy init config",
            "max_epochs": 2,
            "patience_epochs": 3,
            "threads": 2,
        },
        "epochs": [epoch, {**epoch, "epoch": 2, "dev": {"f1": 71.5}}],
        "best_epoch": 2,
        "test": {"precision": 70.0, "recall": 60.0, "f1": 64.62, "n_gold": 10, "n_pred": 9},
        "inference": {
            "words_per_s_file_order": 1234.5,
            "pipe_batch_size": 1000,
            "latency_ms_250_words_median": 12.3,
            "latency_text_words": 250,
            "cores_busy": 1.0,
        },
    }

    def fake_run(command: list[str]) -> float:
        ran.append(command)
        Path(command[command.index("--out") + 1]).write_text(json.dumps(raw))
        return 99.0

    monkeypatch.setattr(run_all, "run_logged", fake_run)
    args = argparse.Namespace(data_dir=tmp_path, threads=2, spacy_max_epochs=2)
    run_all.STEPS["spacy"](args)
    (command,) = ran
    assert command[1] == "benchmarks/spacy_cnn.py"
    assert command[command.index("--threads") + 1] == "2"
    assert command[command.index("--max-epochs") + 1] == "2"
    stored = json.loads((tmp_path / "spacy.json").read_text())
    assert stored["command"].startswith("python benchmarks/spacy_cnn.py --data-dir")
    assert stored["test"]["f1"] == 64.62 and stored["wall_seconds"] == 99.0

    results = {step: run_all.load(step) for step in run_all.STEPS}
    peer = {
        "test": raw["test"],
        "command": "peer",
        "epochs": [epoch],
        "measured": "then",
        "inference": {
            "words_per_s_sorted": 2000.0,
            "sorted_batch_size": 32,
            "latency_ms_250_words_median": 1.0,
            "file_order_batch_size": 32,
            "words_per_s_file_order": 1000.0,
        },
    }
    windows = {"context_tokens": 0, "cross_sentence": False, "max_words": 30}
    training = {"learning_rate": 1e-4, "epochs": 1, "batch_size": 32, "windows": windows}
    parity = {
        "test": {"argmax": raw["test"], "viterbi": raw["test"]},
        "command": "parity",
        "epoch_seconds": [1.0],
        "measured": "then",
        "training": training,
    }
    page = render_markdown({**results, "peer": peer, "parity": parity}, "m")
    rows = [line for line in page.splitlines() if "spaCy CNN" in line and "|" in line]
    assert len(rows) == 2  # accuracy and training time
    assert "| 70.00 | 60.00 | 64.62 | 10 | 9 | `python benchmarks/spacy_cnn.py" in rows[0]
    assert "best devel epoch 2 of 2 run" in rows[0]
    assert "devel F1 by epoch 70.00, 71.50" in page
    missing = render_markdown({**results, "spacy": None, "peer": peer, "parity": parity}, "m")
    assert "run `python -m benchmarks.run_all --steps spacy`" in missing
