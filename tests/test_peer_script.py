"""The peer benchmark's install contract: every package pinned, torch at the CPU build.

`benchmarks/peer_hf.py` itself needs torch, which the project's .venv does not have, so
only its requirements file is checked here. An unpinned line or another torch version makes
`make bench-env` resolve a multi-GB CUDA build of torch instead of the CPU wheel on disk.
"""

from __future__ import annotations

import re
from pathlib import Path

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
