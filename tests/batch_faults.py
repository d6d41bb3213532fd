"""Faults for the batch tests: a tagger whose Ray actor dies once, a run killed and rerun.

Ray workers import the tagger by name, so it lives in a module of its own (not in a test
file).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tagger.batch.output import MANIFESTS_DIR
from tagger.batch.run import run_batch
from tagger.batch.tagging import DocumentTagger

KILL_MARKER_ENV = "TAGGER_TEST_KILL_MARKER"


class TaggerKilledOnce(DocumentTagger):
    """Kills its own worker process on the first batch while the marker file exists.

    The marker is removed first, so the restarted actor tags the retried batch normally;
    a second marker file records that the kill happened.
    """

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        marker = Path(os.environ[KILL_MARKER_ENV])
        try:
            marker.unlink()
        except FileNotFoundError:
            return super().__call__(batch)
        marker.with_suffix(".killed").write_text(str(os.getpid()))
        os._exit(1)


def kill_after_first_input_then_rerun(
    command: list[str], out: Path, cwd: Path, *, timeout_s: float = 300
) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """Run a batch command, SIGKILL it once its first input is complete, and run it again.

    Returns the inputs complete at the kill and the rerun (its status is the caller's to
    check). Fails when the first run ends on its own before it could be killed.
    """
    process = subprocess.Popen(command, cwd=cwd, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout_s
    while not list((out / MANIFESTS_DIR).glob("*.json")) and time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the run ended before it was killed: {process.stderr.read()}")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = {path.stem for path in (out / MANIFESTS_DIR).glob("*.json")}
    rerun = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    return done, rerun


def assert_same_spans_as_one_clean_run(out: Path, inputs: list[Path], model: Path) -> None:
    """``out`` holds exactly the rows one uninterrupted local run writes: none lost, none twice."""
    whole = out.with_name(out.name + "-clean")
    run_batch(inputs, whole, model=model, progress=False)
    key = ["input", "document_id", "start"]
    resumed = pd.read_parquet(out).sort_values(key).reset_index(drop=True)
    clean = pd.read_parquet(whole).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(resumed, clean)
    assert not resumed.duplicated(["input", "document_id", "start", "end"]).any()
