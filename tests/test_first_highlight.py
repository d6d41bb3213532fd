"""benchmarks.first_highlight without a clone or a browser: its arguments, environment,
registry reading and polling, goals, report and process clean-up."""

from __future__ import annotations

import doctest
import http.server
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import first_highlight as fh
from tests.e2e.streamlit_server import free_port


def test_the_docstring_examples_run() -> None:
    result = doctest.testmod(fh, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 10 and result.failed == 0


# ---- arguments -------------------------------------------------------------------------


def test_arguments_have_defaults_for_a_fresh_clone_of_this_repository() -> None:
    options = fh.parse_args(["--out", "results/first.json"])
    assert options.repo == str(fh.REPO_ROOT)
    assert options.clone_dir is None and options.port is None and options.data_dir is None
    assert options.timeout_s == fh.DEFAULT_TIMEOUT_MINUTES * 60
    assert not options.keep and not options.no_pip_cache
    assert options.screenshot == Path("results/first.png")
    assert options.log_copy == Path("results/first.log")
    assert options.command == "python -m benchmarks.first_highlight --out results/first.json"


def test_every_flag_is_read() -> None:
    argv = ["--out", "o.json", "--clone-dir", "/tmp/c d", "--repo", "https://example.org/r.git",
            "--port", "8601", "--timeout-minutes", "2.5", "--keep", "--data-dir", "/d",
            "--no-pip-cache"]  # fmt: skip
    options = fh.parse_args(argv)
    assert options.clone_dir == Path("/tmp/c d") and options.repo == "https://example.org/r.git"
    assert options.port == 8601 and options.timeout_s == 150.0
    assert options.keep and options.no_pip_cache and options.data_dir == Path("/d")
    assert "--clone-dir '/tmp/c d'" in options.command  # quoted as a shell would need it


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--out", "o.txt"], "does not end in .json"),
        (["--out", "o.json", "--timeout-minutes", "0"], "is not positive"),
        (["--out", "o.json", "--port", "70000"], "is not a TCP port"),
    ],
)
def test_bad_arguments_are_one_line_and_status_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fh.main(argv) == 2
    error = capsys.readouterr().err
    assert message in error and "Fix:" in error and error.count("\n") == 1


def test_out_is_required() -> None:
    with pytest.raises(SystemExit):
        fh.parse_args([])


# ---- environment, pip cache, data ------------------------------------------------------


def test_the_clone_gets_its_own_defaults_and_the_port() -> None:
    base = {
        "PATH": "/srv/project/.venv/bin:/opt/venv/bin:/usr/bin",
        "VIRTUAL_ENV": "/opt/venv",
        "HOME": "/home/curator",
        "TAGGER_REGISTRY_DIR": "/elsewhere/models",
        "STREAMLIT_SERVER_PORT": "1",
        "BC5CDR_DIR": "/old",
        "PYTHONPATH": "/srv/project",
        "MAKEFLAGS": "-j8",
    }
    env = fh.make_environment(
        base, port=8700, cache_dir=Path("/t/cache"), data_dir=None, no_pip_cache=True
    )
    assert env["PATH"] == "/usr/bin"  # no virtualenv's python3.11 stands in for the system's
    assert env["HOME"] == "/home/curator"
    for name in ("VIRTUAL_ENV", "TAGGER_REGISTRY_DIR", "BC5CDR_DIR", "PYTHONPATH", "MAKEFLAGS"):
        assert name not in env
    assert env["STREAMLIT_SERVER_PORT"] == "8700"
    assert env["STREAMLIT_SERVER_HEADLESS"] == "true"
    assert env["STREAMLIT_SERVER_ADDRESS"] == "127.0.0.1"
    assert env["TAGGER_CACHE_DIR"] == "/t/cache"
    assert env["PIP_NO_CACHE_DIR"] == "1"


def test_pip_cache_state_says_whether_the_cache_existed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert fh.pip_cache_state({}, home, disabled=False) == {
        "dir": str(home / ".cache" / "pip"),
        "existed": False,
        "used": True,
    }
    (home / ".cache" / "pip").mkdir(parents=True)
    assert fh.pip_cache_state({}, home, disabled=False)["existed"] is False  # empty
    (home / ".cache" / "pip" / "http-v2").mkdir()
    assert fh.pip_cache_state({}, home, disabled=False)["existed"] is True
    xdg = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert fh.pip_cache_state(xdg, home, disabled=False)["dir"] == str(tmp_path / "xdg" / "pip")
    assert fh.pip_cache_state({}, home, disabled=True)["used"] is False
    assert fh.pip_cache_state({"PIP_NO_CACHE_DIR": "1"}, home, disabled=False)["used"] is False


def write_data(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in fh.DATA_FILES:
        (folder / name).write_text("Fever\tB-Disease\n", encoding="utf-8")
    return folder


def test_the_data_folder_comes_from_the_flag_the_environment_or_beside_the_repo(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "main"
    repo.mkdir()
    assert fh.resolve_data_dir(None, {}, str(repo)) == (None, "downloaded by make run (data-ready)")
    beside = write_data(tmp_path / "shared" / "data" / "bc5cdr-disease")
    assert fh.resolve_data_dir(None, {}, str(repo)) == (
        beside,
        "shared/data beside the repository",
    )
    other = write_data(tmp_path / "other")
    assert fh.resolve_data_dir(None, {"BC5CDR_DIR": str(other)}, str(repo)) == (
        other,
        "$BC5CDR_DIR",
    )
    flag = write_data(tmp_path / "flag")
    assert fh.resolve_data_dir(flag, {"BC5CDR_DIR": str(other)}, str(repo))[1] == "--data-dir"


def test_a_data_folder_without_its_files_is_refused_before_anything_starts(tmp_path: Path) -> None:
    folder = tmp_path / "partial"
    folder.mkdir()
    (folder / "train.tsv").write_text("", encoding="utf-8")
    with pytest.raises(fh.BenchmarkError, match=r"lacks devel\.tsv, test\.tsv") as caught:
        fh.resolve_data_dir(folder, {}, str(tmp_path))
    assert caught.value.fix is not None and "--data-dir" in caught.value.fix


def test_the_clone_folder_must_be_new_and_the_default_sits_beside_shared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "file").write_text("x", encoding="utf-8")
    with pytest.raises(fh.BenchmarkError, match="exists and is not empty"):
        fh.prepare_folder(fh.parse_args(["--out", "o.json", "--clone-dir", str(used)]))
    empty = tmp_path / "empty"
    empty.mkdir()
    options = fh.parse_args(["--out", "o.json", "--clone-dir", str(empty)])
    assert fh.prepare_folder(options) == (empty, None) and not empty.exists()

    repo = tmp_path / "work" / "main"
    repo.mkdir(parents=True)
    (tmp_path / "work" / "shared").mkdir()
    monkeypatch.setattr(fh.tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    clone, work = fh.prepare_folder(fh.parse_args(["--out", "o.json", "--repo", str(repo)]))
    assert work is not None and clone == work / "main" and not clone.exists()
    assert work.parent == tmp_path / "tmp" and work.name.startswith("first-highlight-")
    assert (work / "shared").resolve() == (tmp_path / "work" / "shared").resolve()


# ---- the registry ------------------------------------------------------------------------


def write_version(registry: Path, version: str, *, f1: float, step: int | None) -> None:
    folder = registry / "versions" / version
    folder.mkdir(parents=True)
    training: dict[str, Any] = {"epochs": 8}
    if step is not None:
        training["preliminary"] = {"epoch": 1, "step": step, "epoch_end": False}
    metadata = {"version": version, "metrics": {"dev": {"f1": f1}}, "training": training}
    (folder / "model.json").write_text(json.dumps(metadata), encoding="utf-8")


def write_registry_row(database: Path, version: str, summary: dict[str, Any]) -> None:
    database.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(database) as connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS model_versions (version TEXT PRIMARY KEY, summary JSON)"
        )
        connection.execute(
            "INSERT INTO model_versions VALUES (?, ?)", (version, json.dumps(summary))
        )
    connection.close()


def test_nothing_is_in_service_until_current_names_a_complete_folder(tmp_path: Path) -> None:
    registry = tmp_path / "models"
    assert fh.served_version(registry, None) is None
    registry.mkdir()
    (registry / "current").write_text("v1\n", encoding="utf-8")
    assert fh.served_version(registry, None) is None  # the folder is not there yet
    write_version(registry, "v1", f1=61.25, step=120)
    record = fh.served_version(registry, tmp_path / "no-database.sqlite3")
    assert record == fh.ModelRecord(
        version="v1",
        preliminary=True,
        devel_f1=61.25,
        steps=120,
        epoch=1,
        epoch_end=False,
        job_id=None,
        preliminary_from="model.json",
    )


def test_the_registry_row_decides_whether_a_version_is_preliminary(tmp_path: Path) -> None:
    registry, database = tmp_path / "models", tmp_path / "data" / "tagger.sqlite3"
    write_version(registry, "v1", f1=70.5, step=120)
    point = {"job_id": 4, "epoch": 1, "step": 120, "epoch_end": False, "dev_f1": 70.5}
    write_registry_row(database, "v1", {"preliminary": True, "preliminary_point": point})
    write_version(registry, "v2", f1=80.0, step=None)
    write_registry_row(database, "v2", {"corrections_used": 0})
    (registry / "current").write_text("v1\n", encoding="utf-8")
    first = fh.served_version(registry, database)
    assert first is not None and first.preliminary and first.job_id == 4 and first.steps == 120
    assert first.preliminary_from == "registry database"
    final = fh.read_version(registry, "v2", database)
    assert final is not None and not final.preliminary and final.steps is None
    assert final.devel_f1 == 80.0


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/_stcore/health" else 404)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def health_url() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", free_port()), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


class FakeMake:
    """A ``make run`` that is still running (or exited with ``returncode``)."""

    def __init__(self, returncode: int | None = None) -> None:
        self.returncode = returncode

    def poll(self) -> int | None:
        return self.returncode


def facts() -> fh.RunFacts:
    return fh.RunFacts(
        started_at="2026-01-01T00:00:00+00:00",
        command="python -m benchmarks.first_highlight --out o.json",
        repo="/srv/project",
        machine=fh.machine_facts(load_average=(0.5, 0.4, 0.3), cpu_count=2, usable=2),
        pip_cache={"dir": "/home/curator/.cache/pip", "existed": True, "used": True},
        data={"dir": "/d", "source": "--data-dir"},
    )


def test_polling_marks_install_health_and_the_first_version_in_service(
    tmp_path: Path, health_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fh, "POLL_S", 0.01)
    clone = tmp_path / "clone"
    (clone / ".venv").mkdir(parents=True)
    (clone / ".venv" / ".installed").touch()

    def publish() -> None:
        time.sleep(0.3)
        write_version(clone / "models", "v1", f1=68.4, step=120)
        (clone / "models" / "current").write_text("v1\n", encoding="utf-8")

    publisher = threading.Thread(target=publish)
    publisher.start()
    timeline, run = fh.Timeline(), facts()
    timeline.start()
    fh.wait_for_service(FakeMake(), clone, health_url, timeline, 30.0, run)  # type: ignore[arg-type]
    publisher.join()
    seconds = timeline.seconds()
    assert seconds["venv_installed"] is not None and seconds["app_healthy"] is not None
    assert seconds["first_model_in_service"] is not None
    assert seconds["first_model_in_service"] >= seconds["venv_installed"]
    assert run.first_in_service is not None and run.first_in_service.devel_f1 == 68.4


def test_polling_stops_at_the_timeout_or_when_make_exits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fh, "POLL_S", 0.01)
    url = f"http://127.0.0.1:{free_port()}"  # nothing answers there
    timeline, run = fh.Timeline(), facts()
    timeline.start()
    with pytest.raises(fh.StageFailed) as late:
        fh.wait_for_service(FakeMake(), tmp_path, url, timeline, 0.05, run)  # type: ignore[arg-type]
    assert late.value.timed_out and late.value.stage == "venv_installed"
    with pytest.raises(fh.StageFailed) as exited:
        fh.wait_for_service(FakeMake(2), tmp_path, url, timeline, 30.0, run)  # type: ignore[arg-type]
    assert not exited.value.timed_out and "status 2" in exited.value.problem
    assert run.make_exit == 2


# ---- goals and the report ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "f1", "preliminary", "in_time", "good_enough"),
    [
        (600.0, 68.0, True, True, True),  # both bounds are inclusive
        (600.1, 75.0, True, False, True),
        (300.0, 67.99, True, True, False),
        (None, None, None, False, False),
    ],
)
def test_goals(
    seconds: float | None, f1: float | None, preliminary: bool | None, in_time: bool,
    good_enough: bool,
) -> None:  # fmt: skip
    record = None
    if preliminary is not None:
        record = fh.ModelRecord("v1", preliminary, f1, 120, 1, False, 1, "registry database")
    goals = fh.evaluate_goals(seconds, record)
    assert goals["first_highlight_within_10_minutes"]["met"] is in_time
    assert goals["devel_f1_at_least_68"]["met"] is good_enough
    assert goals["all_met"] is (in_time and good_enough)
    assert goals["devel_f1_at_least_68"]["preliminary"] is preliminary


def timeline_at(marks: dict[str, float]) -> fh.Timeline:
    timeline = fh.Timeline(clock=lambda: 1000.0)
    timeline.start()
    timeline.marks.update(marks)
    return timeline


def test_a_completed_run_reports_each_stage_the_model_and_the_goals() -> None:
    run = facts()
    run.first_in_service = fh.ModelRecord("v1", True, 66.0, 120, 1, False, 3, "registry database")
    run.tagged_by = fh.ModelRecord("v2", True, 69.0, 378, 1, True, 3, "registry database")
    run.mentions = ["Type 2 diabetes", "hypertension"]
    marks = dict(zip(fh.STAGES, [250.0, 262.5, 540.2, 548.0, 549.1, 551.9], strict=True))
    report = fh.build_report(run, timeline_at(marks))
    assert json.loads(json.dumps(report)) == report  # plain JSON
    assert report["outcome"] == "completed" and report["problem"] is None
    assert report["seconds_since_make_start"] == marks
    assert report["first_model_in_service"]["version"] == "v1"
    assert report["model_that_tagged"]["steps"] == 378
    goals = report["goals"]
    assert goals["first_highlight_within_10_minutes"]["measured_s"] == 551.9
    assert goals["devel_f1_at_least_68"]["version"] == "v2"  # the one that drew the highlight
    assert goals["all_met"] is True
    assert report["mentions_shown"] == 2 and report["abstract_words"] == len(fh.ABSTRACT.split())
    assert report["machine"]["cpu_count"] == 2
    assert report["machine"]["load_average_at_start"] == [0.5, 0.4, 0.3]
    assert report["pip_cache"]["existed"] is True
    assert report["command"] == "python -m benchmarks.first_highlight --out o.json"


def test_a_timed_out_run_reports_what_was_reached_and_the_log() -> None:
    run = facts()
    failure = fh.StageFailed(
        "first_model_in_service", "not reached within 30 minutes", timed_out=True
    )
    report = fh.build_report(
        run, timeline_at({"venv_installed": 251.0, "app_healthy": 270.0}), failure=failure,
        log_tail=["Epoch 1/8"],
    )  # fmt: skip
    assert report["outcome"] == "timed out"
    assert report["waiting_for"] == "first_model_in_service"
    assert report["seconds_since_make_start"]["app_healthy"] == 270.0
    assert report["seconds_since_make_start"]["first_highlight"] is None
    assert report["first_model_in_service"] is None and report["make_log_tail"] == ["Epoch 1/8"]
    assert report["goals"]["all_met"] is False


def test_the_abstract_is_about_200_words_of_disease_names() -> None:
    words = len(fh.ABSTRACT.split())
    assert 180 <= words <= 220
    for disease in ("hypertension", "heart failure", "pneumonia", "lymphoma", "sepsis"):
        assert disease in fh.ABSTRACT.lower()


# ---- stopping what the run started ---------------------------------------------------------


def test_processes_are_found_by_their_working_directory(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    (clone / "sub").mkdir(parents=True)
    proc = tmp_path / "proc"
    own = str(os.getpid())  # the benchmark itself is never stopped
    for pid, cwd in (
        ("101", clone),
        ("102", clone / "sub"),
        ("103", tmp_path / "clone-2"),
        (own, clone),
    ):
        (proc / pid).mkdir(parents=True)
        (proc / pid / "cwd").symlink_to(cwd)
    (proc / "104").mkdir()  # no cwd link to read (another user's, or gone)
    (proc / "self").mkdir()
    assert fh.processes_inside(clone, proc=proc) == [101, 102]


def test_a_process_left_inside_the_clone_is_stopped(tmp_path: Path) -> None:
    stray = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], cwd=tmp_path,
        start_new_session=True,  # as a worker the app starts is
    )  # fmt: skip
    try:
        assert stray.pid in fh.processes_inside(tmp_path)
        assert fh.stop_strays(tmp_path) == [stray.pid]
        assert stray.wait(timeout=10) != 0
    finally:
        if stray.poll() is None:
            stray.kill()
            stray.wait()
