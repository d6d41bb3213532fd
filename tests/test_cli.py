"""`python -m tagger`: JSON spans with offsets into the input, BIO in and out, one-line errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tagger.__main__ import main
from tagger.bio import parse_bio, write_bio
from tests.conftest import REPO_ROOT
from tests.tiny import tiny_corpus

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "bio"
TEXT = (
    "\ufeffPatients developed renal failure after cocaine.\r\n"
    "  No seizures\twere seen — with “lithium” treatment…\n\n"
    "Cisplatin-induced nephrotoxicity and hypotension (naïve café).\n"
)


def valid_iob2(labels: tuple[str, ...]) -> bool:
    previous = "O"
    for label in labels:
        if label.startswith("I-") and previous not in (f"B-{label[2:]}", label):
            return False
        previous = label
    return True


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check_json_output(output: str, text: str) -> list[dict[str, object]]:
    assert output.endswith("\n") and output.count("\n") == 1
    result = json.loads(output)
    assert set(result) == {"model", "spans"} and result["model"]
    for span in result["spans"]:
        assert set(span) == {"start", "end", "text", "label", "score", "sentence"}
        assert text[span["start"] : span["end"]] == span["text"]
        assert span["label"] == "Disease" and 0.0 <= span["score"] <= 1.0
    return result["spans"]


def test_json_spans_index_the_file_text(tiny_model_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "abstract.txt"
    path.write_bytes(TEXT.encode("utf-8"))
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    completed = subprocess.run(
        [sys.executable, "-m", "tagger", "--model", str(tiny_model_dir), str(path)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()
    # Offsets count characters of the file's text (after its BOM), CRLF kept as two.
    spans = check_json_output(completed.stdout.decode("utf-8"), TEXT.removeprefix("\ufeff"))
    assert spans, "the tiny model should find a disease in this text"


def test_json_is_the_default_and_reads_stdin(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "Lithium induced hepatitis in two patients."
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode("utf-8"))))
    code, out, err = run_main(["--model", str(tiny_model_dir)], capsys)
    assert code == 0, err
    check_json_output(out, text)


def test_empty_text_gives_no_spans(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "empty.txt"
    path.write_text(" \n\n", encoding="utf-8")
    code, out, _ = run_main(["--model", str(tiny_model_dir), str(path)], capsys)
    assert code == 0
    assert check_json_output(out, " \n\n") == []


@pytest.mark.parametrize("name", ["canonical.tsv", "biobert_bare.tsv", "conll_multicolumn.txt"])
def test_bio_in_bio_out(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    source = FIXTURES / name
    code, out, err = run_main(
        ["--model", str(tiny_model_dir), "--format", "bio", str(source)], capsys
    )
    assert code == 0, err
    predicted = parse_bio(out, "stdout")
    gold = parse_bio(source.read_bytes(), name)
    assert [s.words for s in predicted] == [s.words for s in gold]
    for sentence in predicted:
        assert set(sentence.labels) <= {"O", "B-Disease", "I-Disease"}
        assert valid_iob2(sentence.labels)
    # Canonical BIO, like the corpus files: a blank line after every sentence, the last too.
    assert out.endswith("\n\n") and not out.endswith("\n\n\n") and "\r" not in out


def check_bio_output_matches_tag_words(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], **serving: str
) -> None:
    """`--format bio` on a corpus labels it as `Tagger.load(model, **serving)` does."""
    from tagger.tagger import Tagger

    corpus = tiny_corpus()[48:]
    path = tmp_path / "dev.tsv"
    write_bio(corpus, path)
    flags = [item for name, value in serving.items() for item in (f"--{name}", value)]
    code, out, _ = run_main(["--model", str(model), "--format", "bio", *flags, str(path)], capsys)
    assert code == 0
    expected = Tagger.load(model, **serving).tag_words([s.words for s in corpus])
    assert [s.labels for s in parse_bio(out, "stdout")] == [labels for labels, _ in expected]


def test_bio_output_of_a_corpus_matches_tag_words(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check_bio_output_matches_tag_words(tiny_model_dir, tmp_path, capsys)


@pytest.mark.parametrize("kind", ["json", "bio"])
def test_binary_file_is_a_one_line_error_naming_it(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    path = tmp_path / "picture.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    code, out, err = run_main(["--model", str(tiny_model_dir), "--format", kind, str(path)], capsys)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1
    assert str(path) in err


def test_missing_model_is_a_one_line_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "text.txt"
    path.write_text("Fever.", encoding="utf-8")
    missing = tmp_path / "no-model"
    code, out, err = run_main(["--model", str(missing), str(path)], capsys)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1
    assert str(missing) in err and "training.train" in err


def test_missing_input_is_a_one_line_error_naming_it(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nothing.txt"
    code, _, err = run_main(["--model", str(tiny_model_dir), str(missing)], capsys)
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1 and str(missing) in err


def test_malformed_bio_names_file_and_line(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("Fever\tB-Disease\nrash\n\n", encoding="utf-8")
    code, _, err = run_main(["--model", str(tiny_model_dir), "--format", "bio", str(path)], capsys)
    assert code == 1
    assert err.startswith(f"error: {path}:2:") and err.count("\n") == 1


def test_unknown_format_is_rejected_by_argparse(tiny_model_dir: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--model", str(tiny_model_dir), "--format", "xml", "-"])
    assert exit_info.value.code == 2


def test_runtime_and_precision_flags_choose_how_the_model_is_served(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check_bio_output_matches_tag_words(
        tiny_model_dir, tmp_path, capsys, runtime="keras", precision="float32"
    )


def test_a_precision_the_runtime_lacks_is_a_one_line_error(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--model", str(tiny_model_dir), "--runtime", "onnx", "--precision", "bfloat16"]
    code, out, err = run_main([*argv, str(FIXTURES / "canonical.tsv")], capsys)
    assert code == 1 and not out
    assert err.count("\n") == 1 and "bfloat16" in err and "runtime='keras'" in err
