"""A short load test: 8 Chromium pages tag and save corrections for 20 s while a worker retrains.

The same run as ``python -m benchmarks.load_test`` (see its docstring), shorter: the
app's Streamlit server on 127.0.0.1 on the fake tagger, a real worker process
retraining the tiny model job after job, and 8 concurrent browser sessions. No error
may be shown, and the database must hold exactly the corrections the sessions saw
saved: none lost, none duplicated. It skips only where there is no Chromium.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import load_test
from tests.e2e.chromium import missing_chromium

pytestmark = pytest.mark.slow


def test_eight_sessions_lose_and_duplicate_nothing_while_a_retrain_runs(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    missing = missing_chromium()
    if missing:
        pytest.skip(missing)
    result = load_test.run_load(
        sessions=8, seconds=20, adopt_dir=tiny_model_dir, work_dir=tmp_path, max_iterations=20
    )
    assert result["errors"] == 0, result["error_samples"]
    assert result["saves"] >= 8, result  # every session saved at least once
    assert all(count >= 1 for count in result["saves_per_session"]), result
    assert result["lost"] == 0 and result["duplicated"] == 0, result
    assert result["corrections_in_database"] == result["saves"]
    assert result["retrain_jobs"]["queued"] >= 1  # a retrain ran meanwhile
