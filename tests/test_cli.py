"""The command lines: `python -m tagger` (JSON spans with offsets into the input, BIO in and
out), and one-line errors with exit status 2 from every CLI; models by folder, version or
the one in service; serving fallbacks said once."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tagger.__main__ import main
from tagger.bio import parse_bio, write_bio
from tests.conftest import REPO_ROOT
from tests.helpers import is_valid_iob2
from tests.tiny import tiny_corpus

PROG = "python -m tagger"
# TensorFlow's C++ logging writes to stderr on import, whatever TF_CPP_MIN_LOG_LEVEL says.
NATIVE_LOG = re.compile(r"^(WARNING: All log messages before absl|[IWEF]\d{4} )")

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "bio"
TEXT = (
    "\ufeffPatients developed renal failure after cocaine.\r\n"
    "  No seizures\twere seen — with “lithium” treatment…\n\n"
    "Cisplatin-induced nephrotoxicity and hypotension (naïve café).\n"
)


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
        assert is_valid_iob2(sentence.labels)
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
    assert code == 2 and out == ""
    assert err.startswith(f"{PROG}: error: ") and err.count("\n") == 1
    assert str(path) in err


def test_missing_model_is_a_one_line_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "text.txt"
    path.write_text("Fever.", encoding="utf-8")
    missing = tmp_path / "no-model"
    code, out, err = run_main(["--model", str(missing), str(path)], capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"{PROG}: error: no model folder {missing}. Fix: ")
    assert err.count("\n") == 1
    assert f"python -m training.train --out {missing}" in err and "--model" in err


def test_missing_input_is_a_one_line_error_naming_it(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nothing.txt"
    code, _, err = run_main(["--model", str(tiny_model_dir), str(missing)], capsys)
    assert code == 2
    assert err.startswith(f"{PROG}: error: cannot read {missing} (No such file or directory)")
    assert err.count("\n") == 1 and "Fix: pass a readable" in err


def test_malformed_bio_names_file_and_line(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("Fever\tB-Disease\nrash\n\n", encoding="utf-8")
    code, _, err = run_main(["--model", str(tiny_model_dir), "--format", "bio", str(path)], capsys)
    assert code == 2
    assert err.startswith(f"{PROG}: error: {path}:2: expected a token and a label")
    assert err.count("\n") == 1 and "token<TAB>label" in err


def test_unknown_format_is_one_line_naming_the_choices(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(["--model", str(tiny_model_dir), "--format", "xml", "-"], capsys)
    assert code == 2 and not out
    assert err == (
        f"{PROG}: error: argument --format: invalid choice: 'xml' (choose from bio, json). "
        f"Fix: see `{PROG} --help`.\n"
    )


def test_runtime_and_precision_flags_choose_how_the_model_is_served(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check_bio_output_matches_tag_words(
        tiny_model_dir, tmp_path, capsys, runtime="keras", precision="float32"
    )


@pytest.mark.parametrize(
    ("runtime", "precision", "fix"),
    [
        ("keras", "int8", "use --runtime onnx --precision int8, or --runtime keras with"),
        ("onnx", "bfloat16", "use --runtime keras --precision bfloat16, or --runtime onnx"),
    ],
)
def test_a_precision_the_runtime_lacks_is_a_one_line_error(
    tiny_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
    runtime: str,
    precision: str,
    fix: str,
) -> None:
    argv = ["--model", str(tiny_model_dir), "--runtime", runtime, "--precision", precision]
    code, out, err = run_main([*argv, str(FIXTURES / "canonical.tsv")], capsys)
    assert code == 2 and not out
    assert err.startswith(f"{PROG}: error: --runtime {runtime} has no {precision} precision. ")
    assert err.count("\n") == 1 and f"Fix: {fix}" in err


# ---------------------------------------------------------------- the model in service


def registry_with(tiny_model_dir: Path, root: Path) -> str:
    """`root` as a registry whose version in service is a copy of the tiny model."""
    version = json.loads((tiny_model_dir / "model.json").read_text(encoding="utf-8"))["version"]
    shutil.copytree(tiny_model_dir, root / "versions" / version)
    (root / "current").write_text(version + "\n", encoding="utf-8")
    return version


def test_without_model_the_version_in_service_tags(
    tiny_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    version = registry_with(tiny_model_dir, tmp_path / "models")
    monkeypatch.delenv("TAGGER_REGISTRY_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # the default registry folder is ./models
    source = tmp_path / "abstract.txt"
    source.write_text("Lithium induced hepatitis in two patients.", encoding="utf-8")
    code, out, err = run_main([str(source)], capsys)
    assert code == 0, err
    assert json.loads(out)["model"] == version
    # a version id and `current` name the same model, here through $TAGGER_REGISTRY_DIR
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setenv("TAGGER_REGISTRY_DIR", str(tmp_path / "models"))
    for reference in (version, "current"):
        code, out, err = run_main(["--model", reference, str(source)], capsys)
        assert code == 0, err
        assert json.loads(out)["model"] == version


def test_nothing_in_service_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAGGER_REGISTRY_DIR", str(tmp_path / "empty"))
    code, out, err = run_main([str(FIXTURES / "canonical.tsv")], capsys)
    assert code == 2 and not out and err.count("\n") == 1
    assert err.startswith(f"{PROG}: error: no model is in service: ")
    assert "Fix: pass --model with a model folder" in err and "TAGGER_REGISTRY_DIR" in err


def test_an_unknown_version_lists_those_there_are(
    tiny_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    version = registry_with(tiny_model_dir, tmp_path / "models")
    monkeypatch.setenv("TAGGER_REGISTRY_DIR", str(tmp_path / "models"))
    code, _, err = run_main(["--model", "20000101-000000-nope00", "-"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "no version '20000101-000000-nope00'" in err and version in err


def test_help_says_where_the_registry_is() -> None:
    from tagger.__main__ import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "a model folder, a version id in the registry, or `current`" in text
    assert "$TAGGER_REGISTRY_DIR, default models/" in text


# ---------------------------------------------------------------- serving fallbacks


def test_a_serving_fallback_is_one_note_on_stderr(tiny_model_dir: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the graph cache should be")
    code = (
        "import sys, tagger.runtimes\n"
        "tagger.runtimes.default_runtime = lambda: 'onnx'  # as on a CPU-only machine\n"
        "from tagger.__main__ import main\n"
        "raise SystemExit(main(sys.argv[1:]))\n"
    )
    env = {**os.environ, "TAGGER_CACHE_DIR": str(blocked), "TF_CPP_MIN_LOG_LEVEL": "2"}
    argv = ["--model", str(tiny_model_dir), "--format", "bio", str(FIXTURES / "canonical.tsv")]
    completed = subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    lines = [line for line in completed.stderr.splitlines() if not NATIVE_LOG.match(line)]
    assert lines == [
        f"{PROG}: note: serving with Keras float32 instead of ONNX Runtime int8: the ONNX "
        f"graph cache {blocked} is not writable (writing "
        f"{blocked / 'onnx'}/{json.loads((tiny_model_dir / 'model.json').read_text())['version']}"
        f"/classifier.float32.onnx: Not a directory) (set TAGGER_CACHE_DIR to a writable "
        "folder to serve with ONNX Runtime)"
    ]
    assert parse_bio(completed.stdout, "stdout")


# ---------------------------------------------------------------- every command line


def run_module(module: str, *args: str, **env: str) -> tuple[int, str, list[str]]:
    """Exit status, stdout and stderr lines of `python -m module args` (no native TF logs)."""
    completed = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "Traceback" not in completed.stderr, completed.stderr
    lines = [line for line in completed.stderr.splitlines() if not NATIVE_LOG.match(line)]
    return completed.returncode, completed.stdout, lines


def test_every_cli_reports_a_mistake_in_one_line_with_exit_2(tmp_path: Path) -> None:
    registry = str(tmp_path / "empty-registry")
    bad = tmp_path / "bad.tsv"
    bad.write_text("Fever\tB-Disease\nrash\n", encoding="utf-8")
    cases = [
        (("tagger", str(bad)), "no model is in service", "Fix: pass --model"),
        (
            ("training.data", "verify", "--data-dir", str(tmp_path / "none")),
            "does not exist",
            "--data-dir",
        ),
        (
            ("training.evaluate", "--data", str(bad)),
            f"{bad}:2: expected a token",
            "token<TAB>label",
        ),
    ]
    for args, what, fix in cases:
        code, _, lines = run_module(*args, TAGGER_REGISTRY_DIR=registry)
        assert code == 2, lines
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"python -m {args[0]}: error: ") and what in lines[0]
        assert fix in lines[0]


def test_train_help_lists_every_recipe_with_its_learning_rate() -> None:
    code, out, lines = run_module("training.train", "--help")
    assert code == 0 and not lines
    recipes = out.split("recipes (--recipe NAME", 1)[1]
    assert re.search(
        r"^default: learning_rate=0\.0001, .*, 64 context across sentences$", recipes, re.MULTILINE
    )
    assert re.search(r"^no-context: .*, 0 context$", recipes, re.MULTILINE)
    assert re.search(r"^peer: learning_rate=5e-05, ", recipes, re.MULTILINE)
    assert re.search(r"^first-model: .*batch_size=16, ", recipes, re.MULTILINE)
    assert "--recipe {default,first-model,no-context,peer}" in out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--out", "m", "--recipe", "fast"],
            "argument --recipe: invalid choice: 'fast' (choose from default, "
            "first-model, no-context, peer). Fix: see `python -m training.train --help`.",
        ),
        (
            ["--out", "m", "--decoder", "beam"],
            "argument --decoder: invalid choice: 'beam' (choose from argmax, argmax-drop, "
            "viterbi). Fix: see `python -m training.train --help`.",
        ),
        (
            ["--out", "m", "--max-tokens", "4"],
            "max_tokens=4: a BERT window holds 8 to 512 tokens. Fix: pass --max-tokens "
            "between 8 and 512 to python -m training.train.",
        ),
        (
            ["--out", "m", "--epochs", "0"],
            "argument --epochs: 0 is too small: use 1 or more. "
            "Fix: see `python -m training.train --help`.",
        ),
        (
            ["--recipe", "peer"],
            "the following arguments are required: --out. "
            "Fix: see `python -m training.train --help`.",
        ),
    ],
)
def test_train_flag_mistakes_are_one_line(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from training.train import main as train_main

    assert train_main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err == f"python -m training.train: error: {expected}\n"


def test_train_checks_its_data_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from training.train import main as train_main

    out = tmp_path / "model"
    assert train_main(["--out", str(out), "--data-dir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m training.train: error: BC5CDR-disease folder ")
    assert err.count("\n") == 1 and "--data-dir" in err
    assert not out.exists()


def test_evaluate_mistakes_are_one_line(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from training.evaluate import main as evaluate_main

    prog = "python -m training.evaluate"
    data = FIXTURES / "canonical.tsv"
    assert evaluate_main(["--model", str(tmp_path / "none"), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{prog}: error: no model folder {tmp_path / 'none'}. Fix: ")
    argv = ["--model", str(tiny_model_dir), "--runtime", "keras", "--precision", "int8"]
    assert evaluate_main([*argv, "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{prog}: error: --runtime keras has no int8 precision. Fix: ")
    assert evaluate_main(["--model", str(tiny_model_dir), "--data", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{prog}: error: --data: cannot read {tmp_path / 'x'} ")
    assert err.count("\n") == 1


@pytest.mark.parametrize("character", ["\u00a0", "\u2028", "\x0c", "\x85", "\x1f", " "])
def test_bio_token_with_whitespace_is_a_one_line_error_naming_file_and_line(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], character: str
) -> None:
    path = tmp_path / "cases.tsv"
    path.write_text(f"Acute\tB-Disease\nrenal{character}failure\tI-Disease\n", encoding="utf-8")
    argv = ["--model", str(tiny_model_dir), "--format", "bio", str(path)]
    code, out, err = run_main(argv, capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"{PROG}: error: {path}:2: the token ") and err.count("\n") == 1
    assert f"U+{ord(character):04X}" in err and "re-save the file as UTF-8" in err


def test_bio_file_in_utf16_says_so_and_how_to_resave_it(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cases.tsv"
    path.write_bytes("fever\tB-Disease\n".encode("utf-16"))
    code, _, err = run_main(["--model", str(tiny_model_dir), "--format", "bio", str(path)], capsys)
    assert code == 2 and f"{path}: the file is UTF-16" in err and "CSV UTF-8" in err


def test_text_file_in_utf16_says_so_and_how_to_resave_it(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "abstract.txt"
    path.write_bytes("Seizures after cocaine.\n".encode("utf-16"))
    code, _, err = run_main(["--model", str(tiny_model_dir), "--format", "json", str(path)], capsys)
    assert code == 2 and f"{path}: the file is UTF-16" in err and "CSV UTF-8" in err
    assert "Traceback" not in err
