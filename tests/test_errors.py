"""One error type: every mistake a user can fix is a TaggerError, one line at the CLIs."""

from __future__ import annotations

import io
import pickle

import pytest

from tagger.bio import BioFormatError, parse_bio
from tagger.cli import ArgumentParser, UsageError
from tagger.decoding import DecoderError, get_decoder
from tagger.errors import EXIT_USER_ERROR, TaggerError, run_cli
from tagger.model_folder import ModelFolderError
from tagger.runtimes import RuntimeSetupError, choose_serving
from tagger.windows import WindowSettings, WindowSettingsError


def test_message_reads_where_what_and_fix() -> None:
    error = TaggerError("label 'X' is unknown", where="train.tsv:3", fix="use O or B-Disease")
    assert str(error) == "train.tsv:3: label 'X' is unknown. Fix: use O or B-Disease."
    assert (error.what, error.where) == ("label 'X' is unknown", "train.tsv:3")
    assert error.fix == "use O or B-Disease"


def test_run_cli_prints_one_line_and_exits_2() -> None:
    def broken() -> int:
        raise WindowSettingsError("max_tokens=4: too short", fix="pass --max-tokens 8 or more")

    stderr = io.StringIO()
    assert run_cli(broken, prog="demo", stderr=stderr) == EXIT_USER_ERROR == 2
    assert stderr.getvalue() == (
        "demo: error: max_tokens=4: too short. Fix: pass --max-tokens 8 or more.\n"
    )


def test_run_cli_keeps_the_traceback_of_a_bug() -> None:
    def buggy() -> int:
        raise KeyError("not the user's fault")

    with pytest.raises(KeyError):
        run_cli(buggy, prog="demo", stderr=io.StringIO())


@pytest.mark.parametrize(
    ("raise_it", "kind"),
    [
        (lambda: WindowSettings(max_tokens=4), WindowSettingsError),
        (lambda: WindowSettings(max_words=0), WindowSettingsError),
        (lambda: WindowSettings(context_tokens=-1), WindowSettingsError),
        (lambda: get_decoder("beam"), DecoderError),
        (lambda: choose_serving("keras", "int8"), RuntimeSetupError),
        (lambda: choose_serving("tflite", None), RuntimeSetupError),
        (lambda: parse_bio("Fever\tB-Disease\nrash\n", "bad.tsv"), BioFormatError),
    ],
)
def test_user_errors_are_tagger_errors_and_still_value_errors(raise_it, kind) -> None:
    with pytest.raises(kind) as caught:
        raise_it()
    assert isinstance(caught.value, TaggerError) and isinstance(caught.value, ValueError)
    assert "Fix: " in str(caught.value) or isinstance(caught.value, BioFormatError)
    assert "\n" not in str(caught.value)


def test_window_errors_name_the_training_flag() -> None:
    with pytest.raises(WindowSettingsError, match=r"Fix: pass --max-tokens between 8 and 512"):
        WindowSettings(max_tokens=513)
    with pytest.raises(WindowSettingsError, match=r"--max-words"):
        WindowSettings(max_words=0)
    with pytest.raises(WindowSettingsError, match=r"--context-tokens"):
        WindowSettings(context_tokens=-3)


def test_decoder_error_names_the_flag_and_the_choices() -> None:
    with pytest.raises(DecoderError, match=r"Fix: use --decoder argmax, argmax-drop or viterbi"):
        get_decoder("beam")


def test_bio_errors_keep_file_line_and_pickle() -> None:
    with pytest.raises(BioFormatError) as caught:
        parse_bio("Fever\tB-Disease\nrash\n", "bad.tsv")
    error = caught.value
    assert str(error).startswith("bad.tsv:2: expected a token and a label")
    assert (error.source, error.line, error.where) == ("bad.tsv", 2, "bad.tsv:2")
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) and copy.line == 2


def test_model_folder_errors_take_where_and_fix(tmp_path) -> None:
    from tagger.model_folder import read_metadata

    with pytest.raises(ModelFolderError) as caught:
        read_metadata(tmp_path / "none")
    assert caught.value.where == str(tmp_path / "none")
    assert "python -m training.train --out" in caught.value.fix


def test_parser_mistakes_are_one_line_usage_errors() -> None:
    parser = ArgumentParser(prog="demo")
    parser.add_argument("--recipe", choices=("default", "peer"))
    parser.add_argument("--epochs", type=int)
    for argv, expected in [
        (
            ["--recipe", "fast"],
            "argument --recipe: invalid choice: 'fast' (choose from default, peer)",
        ),
        (["--epochs", "many"], "argument --epochs: invalid int value: 'many'"),
        (["--colour"], "unrecognized arguments: --colour"),
    ]:
        with pytest.raises(UsageError) as caught:
            parser.parse_args(argv)
        assert str(caught.value) == f"{expected}. Fix: see `demo --help`."
    stderr = io.StringIO()
    code = run_cli(lambda: parser.parse_args(["--recipe", "x"]) and 0, prog="demo", stderr=stderr)
    assert code == 2
    assert stderr.getvalue().count("\n") == 1
