"""Tests for training.data: folder resolution, sha256 checks, download with a fake opener, CLI."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest

from training import data
from training.data import (
    BASE_URL,
    SHA256,
    SPLITS,
    DataError,
    download,
    file_sha256,
    load_split,
    resolve_data_dir,
    split_path,
    verify,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
FILE_NAMES = ("train.tsv", "devel.tsv", "test.tsv")
SMALL_BIO = b"Fever\tB-Disease\n.\tO\n\n"


class FakeOpener:
    """Stands in for urlopen: serves bytes per file name, or raises, and records URLs."""

    def __init__(self, payloads: dict[str, bytes] | None = None, error: Exception | None = None):
        self.payloads = payloads or {}
        self.error = error
        self.requests: list[tuple[str, float]] = []

    def __call__(self, url: str, timeout: float) -> io.BytesIO:
        self.requests.append((url, timeout))
        if self.error is not None:
            raise self.error
        return io.BytesIO(self.payloads[url.rsplit("/", 1)[-1]])


@pytest.fixture
def fake_hashes(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """Small stand-in files whose hashes replace the real ones."""
    payloads = {name: SMALL_BIO.replace(b"Fever", name.encode()) for name in FILE_NAMES}
    hashes = {name: hashlib.sha256(body).hexdigest() for name, body in payloads.items()}
    monkeypatch.setattr(data, "SHA256", hashes)
    return payloads


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BC5CDR_DIR", raising=False)


def _make_data_dir(folder: Path, payloads: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in payloads.items():
        (folder / name).write_bytes(body)
    return folder


# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------


def test_constants_match_the_brief() -> None:
    assert SPLITS == ("train", "devel", "test")
    assert set(SHA256) == set(FILE_NAMES)
    assert all(len(digest) == 64 for digest in SHA256.values())
    assert BASE_URL.endswith("/BC5CDR-disease-IOB/")


def test_data_error_is_always_one_line() -> None:
    assert str(DataError("first\nsecond  third")) == "first second third"
    assert isinstance(DataError("x"), RuntimeError)


# ---------------------------------------------------------------------------
# resolve_data_dir / split_path / load_split
# ---------------------------------------------------------------------------


def test_explicit_dir_beats_env(
    tmp_path: Path, fake_hashes: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = _make_data_dir(tmp_path / "explicit", fake_hashes)
    from_env = _make_data_dir(tmp_path / "env", fake_hashes)
    monkeypatch.setenv("BC5CDR_DIR", str(from_env))
    assert resolve_data_dir(explicit) == explicit
    assert resolve_data_dir(str(explicit)) == explicit


def test_env_beats_default(
    tmp_path: Path, fake_hashes: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    from_env = _make_data_dir(tmp_path / "env", fake_hashes)
    _make_data_dir(tmp_path / "cwd" / "data" / "bc5cdr-disease", fake_hashes)
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("BC5CDR_DIR", str(from_env))
    assert resolve_data_dir() == from_env


def test_default_is_relative_to_the_working_directory(
    tmp_path: Path, fake_hashes: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    _make_data_dir(tmp_path / "data" / "bc5cdr-disease", fake_hashes)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BC5CDR_DIR", "")  # empty counts as unset
    assert resolve_data_dir() == Path("data/bc5cdr-disease")
    assert split_path("devel") == Path("data/bc5cdr-disease/devel.tsv")


def test_missing_default_folder_says_how_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_env: None
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as caught:
        resolve_data_dir()
    message = str(caught.value)
    assert "data/bc5cdr-disease (from the default folder) does not exist" in message
    assert "set BC5CDR_DIR to a folder with train.tsv, devel.tsv, test.tsv" in message
    assert "pass --data-dir" in message
    assert "`make data`" in message
    assert "\n" not in message


def test_missing_files_are_named_with_their_folder(
    tmp_path: Path, fake_hashes: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _make_data_dir(tmp_path / "partial", {"devel.tsv": fake_hashes["devel.tsv"]})
    monkeypatch.setenv("BC5CDR_DIR", str(folder))
    with pytest.raises(
        DataError, match=rf"train\.tsv, test\.tsv missing in {folder} \(from BC5CDR_DIR\)"
    ):
        resolve_data_dir()
    with pytest.raises(DataError, match=r"from --data-dir"):
        resolve_data_dir(folder)


def test_split_path_rejects_unknown_split(tmp_path: Path, fake_hashes: dict[str, bytes]) -> None:
    folder = _make_data_dir(tmp_path, fake_hashes)
    assert split_path("test", folder) == folder / "test.tsv"
    with pytest.raises(ValueError, match="unknown split 'dev'; choose one of train, devel, test"):
        split_path("dev", folder)


def test_load_split_reads_sentences(tmp_path: Path, fake_hashes: dict[str, bytes]) -> None:
    folder = _make_data_dir(tmp_path, fake_hashes)
    sentences = load_split("train", folder)
    assert len(sentences) == 1
    assert sentences[0].words == ("train.tsv", ".")
    assert sentences[0].labels == ("B-Disease", "O")


# ---------------------------------------------------------------------------
# file_sha256 / verify
# ---------------------------------------------------------------------------


def test_file_sha256(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc" * 1_000_000)
    assert file_sha256(path) == hashlib.sha256(b"abc" * 1_000_000).hexdigest()


def test_verify_returns_the_hashes(tmp_path: Path, fake_hashes: dict[str, bytes]) -> None:
    folder = _make_data_dir(tmp_path, fake_hashes)
    assert verify(folder) == data.SHA256


def test_verify_names_file_expected_and_actual_hash(
    tmp_path: Path, fake_hashes: dict[str, bytes]
) -> None:
    folder = _make_data_dir(tmp_path, fake_hashes)
    (folder / "devel.tsv").write_bytes(b"tampered\tO\n\n")
    got = hashlib.sha256(b"tampered\tO\n\n").hexdigest()
    with pytest.raises(DataError) as caught:
        verify(folder)
    message = str(caught.value)
    assert (
        f"{folder / 'devel.tsv'} has sha256 {got}, expected {data.SHA256['devel.tsv']}" in message
    )
    assert "train.tsv" not in message.split(";")[0]
    assert "make data" in message


def test_verify_real_files(bc5cdr_dir: Path) -> None:
    assert verify(bc5cdr_dir) == SHA256


def test_load_real_devel_split(bc5cdr_dir: Path) -> None:
    sentences = load_split("devel", bc5cdr_dir)
    assert len(sentences) > 4000
    assert {label for s in sentences for label in s.labels} == {"O", "B-Disease", "I-Disease"}


# ---------------------------------------------------------------------------
# download
# ---------------------------------------------------------------------------


def test_download_fetches_all_three_and_writes_them(
    tmp_path: Path, fake_hashes: dict[str, bytes]
) -> None:
    opener = FakeOpener(fake_hashes)
    dest = tmp_path / "new" / "folder"
    assert download(dest, base_url="https://mirror.test/bc5cdr", opener=opener, timeout=7) == dest
    assert opener.requests == [(f"https://mirror.test/bc5cdr/{name}", 7) for name in FILE_NAMES]
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == fake_hashes
    assert verify(dest) == data.SHA256


def test_download_uses_the_real_base_url_by_default(
    tmp_path: Path, fake_hashes: dict[str, bytes]
) -> None:
    opener = FakeOpener(fake_hashes)
    download(tmp_path, opener=opener)
    assert [url for url, _ in opener.requests] == [BASE_URL + name for name in FILE_NAMES]


def test_download_skips_files_with_the_right_hash(
    tmp_path: Path, fake_hashes: dict[str, bytes]
) -> None:
    _make_data_dir(tmp_path, {"train.tsv": fake_hashes["train.tsv"]})
    (tmp_path / "test.tsv").write_bytes(b"stale")
    opener = FakeOpener(fake_hashes)
    download(tmp_path, base_url="https://mirror.test/", opener=opener)
    assert [url for url, _ in opener.requests] == [
        "https://mirror.test/devel.tsv",
        "https://mirror.test/test.tsv",
    ]
    assert (tmp_path / "test.tsv").read_bytes() == fake_hashes["test.tsv"]


def test_download_with_everything_present_makes_no_request(
    tmp_path: Path, fake_hashes: dict[str, bytes]
) -> None:
    _make_data_dir(tmp_path, fake_hashes)
    opener = FakeOpener(error=AssertionError("must not be called"))
    download(tmp_path, opener=opener)
    assert opener.requests == []


def test_download_wrong_bytes_are_not_written(
    tmp_path: Path, fake_hashes: dict[str, bytes]
) -> None:
    corrupted = {**fake_hashes, "devel.tsv": b"<html>rate limited</html>"}
    with pytest.raises(DataError) as caught:
        download(tmp_path, base_url="https://mirror.test/", opener=FakeOpener(corrupted))
    message = str(caught.value)
    got = hashlib.sha256(corrupted["devel.tsv"]).hexdigest()
    assert message.startswith("downloaded devel.tsv from https://mirror.test/devel.tsv")
    assert f"has sha256 {got}, expected {data.SHA256['devel.tsv']}" in message
    assert "BC5CDR_DIR" in message
    assert not (tmp_path / "devel.tsv").exists()
    # The file before it was good and stays; no temp files are left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.tsv"]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")), "refused"),
        (urllib.error.URLError("temporary failure\nin name resolution"), "temporary failure in"),
        (
            urllib.error.HTTPError("https://x.test/train.tsv", 404, "Not Found", {}, None),  # type: ignore[arg-type]
            "HTTP Error 404: Not Found",
        ),
        (TimeoutError("timed out"), "TimeoutError: timed out"),
    ],
)
def test_download_network_failure_is_one_line_with_the_fix(
    tmp_path: Path, error: Exception, reason: str
) -> None:
    with pytest.raises(DataError) as caught:
        download(tmp_path / "dest", base_url="https://x.test/", opener=FakeOpener(error=error))
    message = str(caught.value)
    assert message.startswith("download of https://x.test/train.tsv failed (")
    assert reason in message
    assert "set BC5CDR_DIR to its folder or pass --data-dir" in message
    assert "\n" not in message
    assert list((tmp_path / "dest").iterdir()) == []


def test_download_into_unwritable_place_names_the_folder(
    tmp_path: Path, fake_hashes: dict[str, bytes]
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder", encoding="utf-8")
    with pytest.raises(DataError, match=r"cannot write to .*a_file/dest .*pass --dest"):
        download(blocker / "dest", opener=FakeOpener(fake_hashes))


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _run_cli(*args: str, env_dir: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "BC5CDR_DIR"}
    if env_dir is not None:
        env["BC5CDR_DIR"] = env_dir
    return subprocess.run(
        [sys.executable, "-m", "training.data", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=60,
    )


def test_cli_download_offline_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    result = _run_cli(
        "download", "--dest", str(dest), "--base-url", "http://127.0.0.1:9/", "--timeout", "5"
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        "python -m training.data: error: download of http://127.0.0.1:9/train.tsv failed ("
    )
    assert "BC5CDR_DIR" in lines[0]
    assert "--data-dir" in lines[0]
    assert "Traceback" not in result.stderr
    assert not any(dest.iterdir())


def test_cli_verify_missing_folder_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    result = _run_cli("verify", "--data-dir", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "python -m training.data: error: "
        f"BC5CDR-disease folder {tmp_path / 'nowhere'} (from --data-dir) does not exist; "
        "set BC5CDR_DIR to a folder with train.tsv, devel.tsv, test.tsv, pass --data-dir, "
        "or run `make data` to download them."
    ]


def test_cli_verify_real_files_via_env(bc5cdr_dir: Path) -> None:
    result = _run_cli("verify", env_dir=str(bc5cdr_dir))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"ok  {name}  {SHA256[name]}" for name in FILE_NAMES]


def test_main_in_process_download_and_verify(
    tmp_path: Path,
    fake_hashes: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    opener = FakeOpener(fake_hashes)
    monkeypatch.setattr(data, "download", functools.partial(data.download, opener=opener))
    assert data.main(["download", "--dest", str(tmp_path)]) == 0
    assert len(opener.requests) == 3
    assert data.main(["verify", "--data-dir", str(tmp_path)]) == 0
    output = capsys.readouterr().out
    assert f"BC5CDR-disease is ready in {tmp_path}" in output
    assert f"ok  test.tsv  {data.SHA256['test.tsv']}" in output


def test_main_requires_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert data.main([]) == 2
    assert capsys.readouterr().err == (
        "python -m training.data: error: the following arguments are required: command. "
        "Fix: see `python -m training.data --help`.\n"
    )


def test_main_names_a_bad_subcommand_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert data.main(["verify", "--dest", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m training.data: error: unrecognized arguments: --dest x. ")
    assert err.count("\n") == 1


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        data.main(["--help"])
    assert caught.value.code == 0
    assert "download" in capsys.readouterr().out
