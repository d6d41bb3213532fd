"""The README's examples, run verbatim where ``make run`` leaves an installation.

The installation is laid out as after ``make run``: the BC5CDR-disease splits in
``data/bc5cdr-disease/`` (here the tiny corpus, so that training takes seconds), and a
registry in ``models/`` whose ``current`` names the version in service (here the tiny
model). Every command of the README block marked ``readme-commands`` runs in a shell
there, and the Python block marked ``readme-python`` runs as a script; each must exit 0.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.worker_helpers import write_tiny_data

README = REPO_ROOT / "README.md"


def readme_block(marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\n```\w*\n(.*?)\n```", README.read_text(), re.S)
    assert match, f"README.md has no block marked <!-- {marker} -->"
    return match.group(1)


@pytest.fixture
def installation(tmp_path: Path, tiny_model_dir: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "install"
    write_tiny_data(root / "data" / "bc5cdr-disease")
    version = json.loads((tiny_model_dir / "model.json").read_text())["version"]
    shutil.copytree(tiny_model_dir, root / "models" / "versions" / version)
    (root / "models" / "current").write_text(version + "\n")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TAGGER_") and key != "BC5CDR_DIR"
    }
    env["TAGGER_CACHE_DIR"] = str(tmp_path / "cache")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO_ROOT)
    return root, env


def test_readme_commands_run_verbatim(installation: tuple[Path, dict[str, str]]) -> None:
    root, env = installation
    commands = [line for line in readme_block("readme-commands").splitlines() if line.strip()]
    assert len(commands) >= 4
    for command in commands:
        result = subprocess.run(
            ["bash", "-c", f"set -o pipefail; {command}"],
            cwd=root,
            stdin=subprocess.DEVNULL,  # a command reading `-` reads nothing more
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
    tagged = (root / "tagged.tsv").read_text().split("\n\n")
    assert len([block for block in tagged if block.strip()]) == 6  # the tiny test split
    assert (root / "models" / "mine" / "model.json").is_file()
    assert (root / "tagged" / "abstracts.jsonl.parquet").is_file()


def test_readme_python_example_runs(installation: tuple[Path, dict[str, str]]) -> None:
    root, env = installation
    result = subprocess.run(
        [sys.executable, "-c", readme_block("readme-python")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ONNX Runtime int8" in result.stdout
