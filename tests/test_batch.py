"""Batch tagging in-process: formats, Parquet output, bad records, resumption, the CLI."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tagger.batch.__main__ import main as batch_main
from tagger.batch.output import ERRORS_FILE, MANIFESTS_DIR
from tagger.batch.run import run_batch
from tagger.documents import passages
from tagger.tagger import Tagger
from tests.batch_faults import assert_same_spans_as_one_clean_run, kill_after_first_input_then_rerun
from tests.batch_inputs import write_mixed_inputs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_mixed_inputs(tmp_path_factory.mktemp("batch-in"))


@pytest.fixture(scope="module")
def tagged(
    inputs: list[Path], tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("batch-out")
    run_batch(inputs, out, model=tiny_model_dir, progress=False, batch_size=5)
    return out


def test_every_input_gets_its_own_parquet_with_the_columns_asked_for(tagged: Path) -> None:
    names = sorted(path.name for path in tagged.glob("*.parquet"))
    assert names == [
        "abstracts.parquet",
        "export.jsonl.parquet",
        "pubmed26n0001.xml.parquet",
        "pubmed26n0002.xml.gz.parquet",
        "sentences.txt.parquet",
    ]
    frame = pd.read_parquet(tagged)
    assert list(frame.columns) == [
        "input", "document_id", "start", "end", "text", "label", "score", "model_version",
    ]  # fmt: skip
    assert len(frame) > 0
    assert frame["score"].between(0, 1).all()


def test_spans_are_those_the_tagger_gives_each_passage_with_offsets_into_the_document(
    tagged: Path, inputs: list[Path], tiny_model_dir: Path
) -> None:
    tagger = Tagger.load(tiny_model_dir)
    records = [json.loads(line) for line in inputs[0].read_text().splitlines()[:2]]
    frame = pd.read_parquet(tagged / "export.jsonl.parquet")
    for record in records:
        document = f"{record['title']}\n\n{record['text']}"
        expected = [
            (span.start + offset, span.end + offset, span.label)
            for passage, offset in passages(record["title"], record["text"])
            for span in tagger.tag(passage)
        ]
        rows = frame[frame["document_id"] == record["id"]]
        assert list(zip(rows["start"], rows["end"], rows["label"], strict=True)) == expected
        for start, end, text in zip(rows["start"], rows["end"], rows["text"], strict=True):
            assert document[start:end] == text
    assert set(frame["model_version"]) == {tagger.version}


def test_bad_records_are_listed_with_file_and_line_and_the_rest_is_tagged(tagged: Path) -> None:
    problems = [json.loads(line) for line in (tagged / ERRORS_FILE).read_text().splitlines()]
    where = sorted((p["file"], p["line"]) for p in problems)
    assert where == [
        ("export.jsonl", 3),
        ("export.jsonl", 5),
        ("pubmed26n0001.xml", 12),
        ("pubmed26n0002.xml.gz", 12),
        ("sentences.txt", 14),
    ]
    assert all(p["message"] and p["fix"] for p in problems)
    manifests = {p.stem: json.loads(p.read_text()) for p in (tagged / MANIFESTS_DIR).glob("*.json")}
    assert manifests["export.jsonl"]["documents"] == 12
    assert manifests["pubmed26n0001.xml"]["documents"] == 12
    assert manifests["pubmed26n0002.xml.gz"]["documents"] == 4
    assert manifests["sentences.txt"]["documents"] == 12
    assert manifests["abstracts"]["documents"] == 4


def test_a_rerun_skips_complete_inputs_and_redoes_a_changed_one(
    inputs: list[Path], tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = run_batch(inputs[:2], out, model=tiny_model_dir, progress=False)
    assert sorted(first.skipped) == [] and len(first.tagged) == 2
    second = run_batch(inputs[:2], out, model=tiny_model_dir, progress=False)
    assert sorted(second.skipped) == ["export.jsonl", "pubmed26n0001.xml"]
    assert second.tagged == []
    os.utime(inputs[0], ns=(time.time_ns(), time.time_ns()))
    third = run_batch(inputs[:2], out, model=tiny_model_dir, progress=False)
    assert third.skipped == ["pubmed26n0001.xml"]
    assert [result.name for result in third.tagged] == ["export.jsonl"]


def test_a_killed_run_loses_only_the_input_in_flight_and_a_rerun_completes_it(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    inputs = write_mixed_inputs(tmp_path / "in", documents=60)
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "tagger.batch", *map(str, inputs), "--out", str(out),
        "--model", str(tiny_model_dir), "--batch-size", "4", "--quiet",
    ]  # fmt: skip
    done, rerun = kill_after_first_input_then_rerun(command, out, ROOT)
    assert 1 <= len(done) < len(inputs)
    assert rerun.returncode == 0, rerun.stderr
    assert f"skipped {len(done)} complete input(s)" in rerun.stderr
    assert_same_spans_as_one_clean_run(out, inputs, tiny_model_dir)


def test_the_command_line_reports_a_bad_input_in_one_line(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.docx").write_bytes(b"PK")
    status = batch_main(
        [str(tmp_path / "notes.docx"), "--out", str(tmp_path / "o"), "--model", str(tiny_model_dir)]
    )
    error = capsys.readouterr().err.strip()
    assert status == 2
    assert error.count("\n") == 0
    assert "notes.docx is not a format batch tagging reads" in error and "Fix: give .jsonl" in error
    status = batch_main([str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o")])
    assert status == 2
    assert "missing.jsonl: the input does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--workers", "--batch-size", "--threads"])
def test_a_count_below_one_is_one_error_line_naming_the_flag(
    tmp_path: Path, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = batch_main([str(tmp_path), "--out", str(tmp_path / "o"), flag, "0"])
    error = capsys.readouterr().err.strip()
    assert status == 2 and error.count("\n") == 0
    assert f"argument {flag}: expected a whole number of 1 or more, not '0'" in error
    assert not (tmp_path / "o").exists()

def test_two_inputs_with_one_name_are_refused_before_anything_is_tagged(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.jsonl").write_text('{"text": "Fever."}\n')
    with pytest.raises(Exception, match=r"two inputs are named x\.jsonl"):
        run_batch(
            [tmp_path / "a" / "x.jsonl", tmp_path / "b" / "x.jsonl"],
            tmp_path / "o",
            model=tiny_model_dir,
        )
    assert not (tmp_path / "o").exists()


def test_the_ray_engine_without_ray_says_how_to_install_it(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "x.jsonl").write_text('{"text": "Fever."}\n')
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(Exception, match=r"requirements-ray\.txt"):
        run_batch(
            [tmp_path / "x.jsonl"],
            tmp_path / "o",
            model=tiny_model_dir,
            engine="ray",
            progress=False,
        )
