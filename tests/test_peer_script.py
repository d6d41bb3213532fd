"""The peer benchmark's install contract: every package pinned, torch at the CPU build.

`benchmarks/peer_hf.py` itself needs torch, which the project's .venv does not have, so
only its requirements file is checked here. An unpinned line or another torch version makes
`make bench-env` resolve a multi-GB CUDA build of torch instead of the CPU wheel on disk.
The spaCy CNN baseline runs in the project's .venv; its wiring into `benchmarks.run_all`
and the report is checked at the end, without training anything.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PEER_REQUIREMENTS = REPO_ROOT / "benchmarks" / "requirements-peer.txt"
CPU_TORCH_VERSION = "2.13.0"
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
        "recipe": {"config": "spacy init config", "max_epochs": 2, "patience_epochs": 3,
                   "threads": 2},
        "epochs": [epoch, {**epoch, "epoch": 2, "dev": {"f1": 71.5}}],
        "best_epoch": 2,
        "test": {"precision": 70.0, "recall": 60.0, "f1": 64.62, "n_gold": 10, "n_pred": 9},
        "inference": {"words_per_s_file_order": 1234.5, "pipe_batch_size": 1000,
                      "latency_ms_250_words_median": 12.3, "latency_text_words": 250,
                      "cores_busy": 1.0},
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
    peer = {"test": raw["test"], "command": "peer", "epochs": [epoch], "measured": "then",
            "inference": {"words_per_s_sorted": 2000.0, "sorted_batch_size": 32,
                          "latency_ms_250_words_median": 1.0, "file_order_batch_size": 32,
                          "words_per_s_file_order": 1000.0}}
    windows = {"context_tokens": 0, "cross_sentence": False, "max_words": 30}
    training = {"learning_rate": 1e-4, "epochs": 1, "batch_size": 32, "windows": windows}
    parity = {"test": {"argmax": raw["test"], "viterbi": raw["test"]}, "command": "parity",
              "epoch_seconds": [1.0], "measured": "then", "training": training}
    speed = {"ours": [], "peer": peer, "peer_command": "peer speed"}
    page = render_markdown({**results, "peer": peer, "parity": parity, "speed": speed}, "m")
    rows = [line for line in page.splitlines() if "spaCy CNN" in line and "|" in line]
    assert len(rows) == 3  # accuracy, speed and training time
    assert "| 70.00 | 60.00 | 64.62 | 10 | 9 | `python benchmarks/spacy_cnn.py" in rows[0]
    assert "best devel epoch 2 of 2 run" in rows[0]
    assert "| 1234 |" in rows[1] or "| 1235 |" in rows[1]
    assert "devel F1 by epoch 70.00, 71.50" in page
    missing = render_markdown({**results, "spacy": None, "peer": peer, "parity": parity}, "m")
    assert "run `python -m benchmarks.run_all --steps spacy`" in missing
