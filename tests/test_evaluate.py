"""Strict entity-level scores, by-length buckets, and the `training.evaluate` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tagger.bio import Sentence, write_bio
from tests.conftest import REPO_ROOT
from tests.tiny import tiny_corpus
from training.evaluate import (
    entity_scores,
    evaluate_predictions,
    format_report,
    main,
    scores_by_length,
)

B, I, O = "B-Disease", "I-Disease", "O"  # noqa: E741


def test_exact_match_is_perfect() -> None:
    gold = [[B, I, O, B], [O, O]]
    assert entity_scores(gold, gold) == {
        "precision": 100.0,
        "recall": 100.0,
        "f1": 100.0,
        "n_gold": 2,
        "n_pred": 2,
        "n_correct": 2,
    }


def test_a_boundary_error_is_both_a_false_positive_and_a_false_negative() -> None:
    gold = [[B, I, I, O, B, O]]
    predicted = [[B, I, O, O, B, O]]  # first entity one word short
    assert entity_scores(gold, predicted) == {
        "precision": 50.0,
        "recall": 50.0,
        "f1": 50.0,
        "n_gold": 2,
        "n_pred": 2,
        "n_correct": 1,
    }


def test_type_and_split_errors_count_as_misses() -> None:
    gold = [[B, I, O], [B, O, O]]
    predicted = [[B, B, O], [O, O, O]]  # one entity split in two; one missed
    scores = entity_scores(gold, predicted)
    assert (scores["n_gold"], scores["n_pred"]) == (2, 2)
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.0, 0.0, 0.0)


def test_scores_are_percent_rounded_to_two_decimals() -> None:
    gold = [[B, O, B, O, B]]
    predicted = [[B, O, B, O, O]]
    scores = entity_scores(gold, predicted)
    assert scores["precision"] == 100.0
    assert scores["recall"] == 66.67
    assert scores["f1"] == 80.0


def test_no_entities_anywhere_is_undefined_not_perfect() -> None:
    scores = entity_scores([[O, O], []], [[O, O], []])
    assert (scores["precision"], scores["recall"], scores["f1"]) == (None, None, None)
    assert (scores["n_gold"], scores["n_pred"], scores["n_correct"]) == (0, 0, 0)


def test_predictions_without_gold_entities_have_no_recall() -> None:
    scores = entity_scores([[O, O]], [[B, O]])
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.0, None, 0.0)
    assert (scores["n_gold"], scores["n_pred"]) == (0, 1)


def test_no_predictions_have_no_precision() -> None:
    scores = entity_scores([[B, O]], [[O, O]])
    assert (scores["precision"], scores["recall"], scores["f1"]) == (None, 0.0, 0.0)


def test_strict_mode_ignores_a_stray_inside_label() -> None:
    # Arg-max taggers emit I- after O; strict IOB2 reads it as no entity at all, and the
    # counts must agree with the precision's denominator rather than raise.
    gold = [[O, B, I], [B, O, O]]
    predicted = [[O, I, I], [B, O, O]]
    assert entity_scores(gold, predicted) == {
        "precision": 100.0,
        "recall": 50.0,
        "f1": 66.67,
        "n_gold": 2,
        "n_pred": 1,
        "n_correct": 1,
    }


def test_scores_by_sentence_length_buckets() -> None:
    short = [B] + [O] * 4  # 5 words
    medium = [O] * 14 + [B]  # 15 words
    long = [B, I] + [O] * 58  # 60 words
    gold = [short, medium, long, short]
    predicted = [short, [O] * 15, long, [O] * 5]
    buckets = scores_by_length(gold, predicted)
    assert list(buckets) == ["1-10", "11-20", "51+"]
    assert buckets["1-10"]["sentences"] == 2
    assert buckets["1-10"]["recall"] == 50.0 and buckets["1-10"]["precision"] == 100.0
    assert buckets["11-20"]["n_gold"] == 1 and buckets["11-20"]["n_pred"] == 0
    assert buckets["11-20"]["f1"] == 0.0
    assert buckets["51+"]["f1"] == 100.0 and buckets["51+"]["sentences"] == 1


def test_bucket_edges() -> None:
    gold = [[O] * n for n in (1, 10, 11, 20, 21, 30, 31, 50, 51)]
    buckets = scores_by_length(gold, gold)
    assert {name: bucket["sentences"] for name, bucket in buckets.items()} == {
        "1-10": 2,
        "11-20": 2,
        "21-30": 2,
        "31-50": 2,
        "51+": 1,
    }


def test_evaluate_predictions_and_report() -> None:
    sentences = [Sentence(["Heart", "failure", "."], [B, I, O]), Sentence(["Fever"], [B])]
    metrics = evaluate_predictions(sentences, [[B, I, O], [O]])
    assert metrics["sentences"] == 2
    assert (metrics["precision"], metrics["recall"], metrics["f1"]) == (100.0, 50.0, 66.67)
    assert set(metrics["by_length"]) == {"1-10"}
    report = format_report(metrics)
    assert report.splitlines()[0] == "strict entity-level (seqeval, IOB2)"
    assert "F1  66.67" in report and "gold 2" in report and "1-10" in report


def test_report_prints_undefined_scores_as_not_applicable() -> None:
    # A bucket of sentences without mentions has no recall; nothing at all, no scores.
    sentences = [Sentence(["Fever"], [B]), Sentence(["No", "fever", "here", "."] * 3, [O] * 12)]
    metrics = evaluate_predictions(sentences, [[B], [O] * 12])
    assert metrics["by_length"]["11-20"]["f1"] is None
    report = format_report(metrics)
    assert "11-20: F1    n/a  P    n/a  R    n/a  sentences 1" in report
    empty = format_report(evaluate_predictions([Sentence(["No"], [O])], [[O]]))
    assert "precision    n/a  recall    n/a  F1    n/a  gold 0  predicted 0" in empty


# ---------------------------------------------------------------- the command


def write_fixture(folder: Path) -> Path:
    path = folder / "gold.tsv"
    write_bio(tiny_corpus()[48:], path)
    return path


def test_json_command_prints_one_object(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_fixture(tmp_path)
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-m", "training.evaluate", "--model", str(tiny_model_dir)]
    completed = subprocess.run(
        [*command, "--data", str(data), "--json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.strip().splitlines()
    assert len(lines) == 1
    metrics = json.loads(lines[0])
    assert {"precision", "recall", "f1", "n_gold", "n_pred", "by_length"} <= set(metrics)
    assert metrics["n_gold"] == 12 and metrics["sentences"] == 12
    assert 0.0 <= metrics["f1"] <= 100.0


def test_text_report(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--model", str(tiny_model_dir), "--data", str(write_fixture(tmp_path))]) == 0
    assert capsys.readouterr().out.startswith("strict entity-level (seqeval, IOB2)\n")


def test_missing_model_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--model", str(tmp_path / "none"), "--data", str(write_fixture(tmp_path))])
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith("python -m training.evaluate: error: ") and error.count("\n") == 1
    assert str(tmp_path / "none") in error


def test_bad_data_names_the_file(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "bad.tsv"
    data.write_text("Fever\tB-Disease\nrash\tX-Thing\n\n", encoding="utf-8")
    assert main(["--model", str(tiny_model_dir), "--data", str(data)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("python -m training.evaluate: error: ") and "bad.tsv:2" in error
