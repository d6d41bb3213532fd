"""Batch tagging on a local Ray instance (loopback only): the same Parquet as in-process,
a worker actor killed mid-run, and a run killed and rerun."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tagger.batch.run import run_batch
from tests.batch_faults import (
    KILL_MARKER_ENV,
    TaggerKilledOnce,
    assert_same_spans_as_one_clean_run,
    kill_after_first_input_then_rerun,
)
from tests.batch_inputs import write_mixed_inputs

ray = pytest.importorskip("ray", reason="needs Ray: pip install -r requirements-ray.txt")

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One local Ray instance for the module, on 127.0.0.1, with the project importable."""
    marker = tmp_path_factory.mktemp("ray-faults") / "kill-next-batch"
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
        runtime_env={"env_vars": {"PYTHONPATH": path, KILL_MARKER_ENV: str(marker)}},
    )
    yield marker
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_mixed_inputs(tmp_path_factory.mktemp("ray-in"))


def _parquet_tables(out: Path) -> dict[str, object]:
    return {path.name: pq.read_table(path) for path in sorted(out.glob("*.parquet"))}


def test_ray_and_local_write_identical_parquet(
    local_ray: Path, inputs: list[Path], tiny_model_dir: Path, tmp_path: Path
) -> None:
    local = run_batch(inputs, tmp_path / "local", model=tiny_model_dir, progress=False)
    on_ray = run_batch(
        inputs, tmp_path / "ray", model=tiny_model_dir, engine="ray", workers=2,
        batch_size=3, progress=False,
    )  # fmt: skip
    assert on_ray.documents == local.documents > 0
    local_tables = _parquet_tables(tmp_path / "local")
    ray_tables = _parquet_tables(tmp_path / "ray")
    assert sorted(ray_tables) == sorted(local_tables) and len(local_tables) == len(inputs)
    for name, table in local_tables.items():
        assert ray_tables[name].equals(table), name
    assert (tmp_path / "ray" / "_errors.jsonl").read_text() == (
        tmp_path / "local" / "_errors.jsonl"
    ).read_text()


def test_an_actor_killed_mid_run_is_retried_without_duplicate_rows(
    local_ray: Path, inputs: list[Path], tiny_model_dir: Path, tmp_path: Path
) -> None:
    run_batch(inputs, tmp_path / "local", model=tiny_model_dir, progress=False)
    local_ray.write_text("kill")
    report = run_batch(
        inputs, tmp_path / "ray", model=tiny_model_dir, engine="ray", workers=1,
        batch_size=4, progress=False, tagger_class=TaggerKilledOnce,
    )  # fmt: skip
    assert not local_ray.exists() and local_ray.with_suffix(".killed").exists()
    assert len(report.tagged) == len(inputs)
    killed = pd.read_parquet(tmp_path / "ray")
    clean = pd.read_parquet(tmp_path / "local")
    assert not killed.duplicated(["input", "document_id", "start", "end"]).any()
    key = ["input", "document_id", "start"]
    pd.testing.assert_frame_equal(
        killed.sort_values(key).reset_index(drop=True),
        clean.sort_values(key).reset_index(drop=True),
    )


def test_a_ray_run_killed_and_run_again_loses_and_duplicates_nothing(
    local_ray: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    inputs = write_mixed_inputs(tmp_path / "in", documents=40)
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "tagger.batch", *map(str, inputs), "--out", str(out),
        "--model", str(tiny_model_dir), "--engine", "ray", "--batch-size", "4", "--quiet",
    ]  # fmt: skip
    done, rerun = kill_after_first_input_then_rerun(command, out, ROOT)
    assert 1 <= len(done) < len(inputs)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"skipped {len(done)} complete input(s)" in rerun.stderr
    assert_same_spans_as_one_clean_run(out, inputs, tiny_model_dir)
