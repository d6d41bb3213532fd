"""Checks and strategies several test modules share.

IOB2 validity (`is_valid_iob2`), valid IOB2 label sequences (`iob2_labels`), and which
heavy modules an import pulls in (`modules_loaded_after`). The tiny model, its corpus and
its recipe are in tests/tiny.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from hypothesis import strategies as st

REPO_ROOT = Path(__file__).resolve().parent.parent


def is_valid_iob2(labels: Sequence[str]) -> bool:
    """Whether every I-X follows a B-X or an I-X (so no I- opens a mention).

    >>> is_valid_iob2(["B-Disease", "I-Disease", "O"]), is_valid_iob2([])
    (True, True)
    >>> is_valid_iob2(["O", "I-Disease"]), is_valid_iob2(["B-Chemical", "I-Disease"])
    (False, False)
    """
    previous = "O"
    for label in labels:
        if label.startswith("I-") and previous not in (f"B-{label[2:]}", label):
            return False
        previous = label
    return True


@st.composite
def iob2_labels(
    draw: st.DrawFn,
    types: Sequence[str] = ("Disease",),
    max_segments: int = 40,
    max_entity: int = 45,
) -> list[str]:
    """A valid IOB2 sequence: O words and mentions of 1 to `max_entity` words, in any order."""
    mention = st.tuples(st.sampled_from(types), st.integers(1, max_entity))
    segment = st.one_of(st.just(None), mention)
    labels: list[str] = []
    for drawn in draw(st.lists(segment, max_size=max_segments)):
        if drawn is None:
            labels.append("O")
        else:
            kind, size = drawn
            labels += [f"B-{kind}"] + [f"I-{kind}"] * (size - 1)
    return labels


def modules_loaded_after(code: str, modules: Sequence[str], *argv: str) -> list[str]:
    """Which of `modules` a fresh Python process has imported after running `code`.

    The process runs in the repository root with `argv` as sys.argv[1:]; the answer is
    sorted, so [] when it imported none of them.

    >>> modules_loaded_after("import fractions", ["fractions", "keras"])
    ['fractions']
    """
    loaded = f"sorted(set({list(modules)!r}) & set(sys.modules))"
    report = f"import json, sys\nprint(json.dumps({loaded}))"
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}", *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])
