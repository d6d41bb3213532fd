"""From ``make run`` on a fresh clone to the first highlighted abstract, timed in a browser.

The goal (a fresh machine, 2 CPU cores): the first highlighted abstract on the Tag page
at most 10 minutes after ``make run`` starts, install included, with the model that drew
it (the first training's preliminary version) at least 68 strict devel F1.

What it does, in this order:

1. ``git clone`` the repository (``--repo``, default this checkout: its committed state
   at HEAD only) into a new folder (``--clone-dir``, default ``<tmp>/first-highlight-*/main``
   with a ``shared`` link beside it to the ``shared/`` folder beside the repository, as on
   this workplace). Nothing of an earlier run is reused: no ``.venv``, no data folder, no
   registry, an empty ONNX cache (``TAGGER_CACHE_DIR``). Only pip's own download cache
   may be warm (the JSON says whether it existed; ``--no-pip-cache`` turns it off).
2. ``make run`` there, in its own process group, its output in a log; ``t0`` is the
   moment make starts. ``BC5CDR_DIR`` is ``--data-dir``, else ``$BC5CDR_DIR``, else
   ``shared/data/bc5cdr-disease`` beside the repository; with none of them, ``make run``
   downloads the data itself (its ``data-ready`` target). Streamlit gets its port and
   headless mode through ``STREAMLIT_SERVER_*`` variables; every ``TAGGER_*`` variable
   of the calling shell is dropped, so the clone's defaults apply (``data/``, ``models/``).
3. Every half second: the ``.venv/.installed`` marker (install done), ``/_stcore/health``
   (the app answers), and the clone's registry (``models/current`` naming a complete
   ``models/versions/<id>/``: the first version in service), read from files and from
   the registry's SQLite row (``summary["preliminary"]``, where the worker marks a
   preliminary version) without importing the clone's code.
4. Debian's headless Chromium (Playwright, as ``tests/e2e`` drives it) opens the Tag
   page, reloading until its Tag button is enabled (a model is in service), pastes
   :data:`ABSTRACT`, presses Tag and waits for a highlighted mention
   (``.tagged-text mark.mention``): ``first_highlight``. A full-page screenshot goes
   next to the JSON (``.png``), the make log too (``.log``).
5. The make process group is stopped (the worker with it), then any process still
   running inside the clone (a worker the app started in a session of its own); the
   whole folder is deleted. ``--keep`` keeps both running and the folder.

The JSON gives each stage in seconds since ``t0`` (``null`` if not reached), the version
that drew the highlight and the first one in service (preliminary or not, devel F1,
the training step it was taken at), the two goals, the machine (cores, load average at
start), pip's cache and the command. Exit status 0 when the highlight was seen (goals
met or not), 1 when the timeout came first or a stage failed (the JSON says which), 2
on a mistake in the arguments.

    python -m benchmarks.first_highlight --out benchmarks/results/first_highlight.json

It installs TensorFlow and trains for minutes: run it on a machine that does nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tagger.errors import TaggerError, run_cli

REPO_ROOT = Path(__file__).resolve().parent.parent
PROG = "python -m benchmarks.first_highlight"
GOAL_SECONDS = 600.0  # 10 minutes from `make run` to the first highlight
GOAL_DEVEL_F1 = 68.0  # strict (seqeval) devel F1 of the model that drew it
DEFAULT_TIMEOUT_MINUTES = 30.0
POLL_S = 0.5
HOST = "127.0.0.1"
DATA_FILES = ("train.tsv", "devel.tsv", "test.tsv")
# What the clone's Makefile and code lay out (Makefile, tagger/references.py, app/settings.py).
INSTALLED_MARKER = Path(".venv") / ".installed"
REGISTRY = Path("models")
POINTER_FILE = "current"
VERSIONS_DIR = "versions"
METADATA_FILE = "model.json"
DATABASE = Path("data") / "tagger.sqlite3"
# Inherited settings that would point the clone elsewhere than a fresh `make run` does.
DROPPED_PREFIXES = ("TAGGER_", "STREAMLIT_", "BC5CDR_")
DROPPED_NAMES = frozenset(
    {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "KERAS_BACKEND", "PYTHON", "MODEL_DIR",
     "MAKEFLAGS", "MFLAGS", "MAKELEVEL"}
)  # fmt: skip
STAGES = (
    "venv_installed",
    "app_healthy",
    "first_model_in_service",
    "page_ready",
    "tag_clicked",
    "first_highlight",
)
HIGHLIGHT = ".tagged-text mark.mention"
ERROR_BOXES = '[data-testid="stException"], [data-testid="stAlertContentError"]'
CAPTION_MODEL = re.compile(r"Model (\S+) on ")
STOP_GRACE_S = 20.0
PAGE_WAIT_MS = 60_000.0  # the bound on one browser wait (a loaded 2-core machine is slow)

# A PubMed-style abstract written for this benchmark (190 words, common disease names).
ABSTRACT = (
    "Background: Type 2 diabetes and hypertension are major risk factors for chronic kidney "
    "disease, heart failure and stroke. We studied adverse events in patients with rheumatoid "
    "arthritis who received long-term methotrexate. Methods: In a cohort of 412 adults, we "
    "recorded hepatotoxicity, interstitial lung disease, anemia and neutropenia over five "
    "years. Results: Liver fibrosis developed in 23 patients and acute hepatitis in 9. "
    "Pneumonia was the most frequent infection, followed by herpes zoster and urinary tract "
    "infection. Eleven patients developed lymphoma, and two of them died of sepsis. Patients "
    "with obesity or diabetic nephropathy had a higher risk of renal failure, and those with "
    "coronary artery disease more often had myocardial infarction or atrial fibrillation. "
    "Depression and chronic fatigue were reported by a third of the cohort. Seizures occurred "
    "in three patients with hyponatremia, and one patient developed a drug-induced skin rash "
    "with fever. Conclusions: Methotrexate-induced liver injury and lung toxicity remain the "
    "main safety concerns in rheumatoid arthritis, whereas cardiovascular disease and cancer "
    "dominate mortality. Regular screening for hepatotoxicity, cytopenia and infection is "
    "advised, in particular in elderly patients with impaired renal function or a history of "
    "alcoholic liver disease."
)


class BenchmarkError(TaggerError):
    """A setting or a machine that this benchmark cannot run with; the message says why."""


class StageFailed(RuntimeError):
    """A stage that did not come: the timeout passed, or make or the page failed first."""

    def __init__(self, stage: str, problem: str, *, timed_out: bool) -> None:
        super().__init__(problem)
        self.stage = stage
        self.problem = problem
        self.timed_out = timed_out


# ---------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """The command line, checked."""

    out: Path
    clone_dir: Path | None
    repo: str
    port: int | None
    timeout_minutes: float
    keep: bool
    data_dir: Path | None
    no_pip_cache: bool
    argv: tuple[str, ...] = ()

    @property
    def timeout_s(self) -> float:
        return self.timeout_minutes * 60.0

    @property
    def screenshot(self) -> Path:
        return self.out.with_suffix(".png")

    @property
    def log_copy(self) -> Path:
        return self.out.with_suffix(".log")

    @property
    def command(self) -> str:
        return " ".join([PROG, *(shlex.quote(arg) for arg in self.argv)])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=(__doc__ or "").split("\n\n", 1)[0].replace("``", "")
    )
    parser.add_argument("--out", type=Path, required=True, help="the JSON to write")
    parser.add_argument(
        "--clone-dir", type=Path, help="a new (or empty) folder to clone into; default: a temp one"
    )
    parser.add_argument(
        "--repo",
        default=str(REPO_ROOT),
        help="repository to clone (path or URL; default: this one)",
    )
    parser.add_argument("--port", type=int, help="the app's port (default: a free one)")
    parser.add_argument(
        "--timeout-minutes",
        type=float,
        default=DEFAULT_TIMEOUT_MINUTES,
        help=f"give up this long after make starts (default {DEFAULT_TIMEOUT_MINUTES:g})",
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave the app running and the clone in place"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="BC5CDR-disease folder (default $BC5CDR_DIR, else shared/data beside the repo)",
    )
    parser.add_argument(
        "--no-pip-cache", action="store_true", help="install without pip's download cache"
    )
    return parser


def parse_args(argv: Sequence[str]) -> Options:
    """The checked options of ``argv``; :class:`BenchmarkError` names a bad one.

    >>> options = parse_args(["--out", "r.json", "--port", "8600", "--timeout-minutes", "12"])
    >>> options.port, options.timeout_s, options.screenshot.name, options.keep
    (8600, 720.0, 'r.png', False)
    >>> options.command
    'python -m benchmarks.first_highlight --out r.json --port 8600 --timeout-minutes 12'
    """
    args = build_parser().parse_args(list(argv))
    if args.out.suffix != ".json":
        raise BenchmarkError(
            f"--out {args.out} does not end in .json",
            fix="name a .json file (the screenshot and the log go beside it as .png and .log)",
        )
    if args.timeout_minutes <= 0:
        raise BenchmarkError(
            f"--timeout-minutes {args.timeout_minutes:g} is not positive", fix="give minutes > 0"
        )
    if args.port is not None and not 1 <= args.port <= 65535:
        raise BenchmarkError(f"--port {args.port} is not a TCP port", fix="give 1 to 65535")
    return Options(
        out=args.out,
        clone_dir=args.clone_dir,
        repo=str(args.repo),
        port=args.port,
        timeout_minutes=float(args.timeout_minutes),
        keep=bool(args.keep),
        data_dir=args.data_dir,
        no_pip_cache=bool(args.no_pip_cache),
        argv=tuple(argv),
    )


# ---------------------------------------------------------------------------
# The pure parts: timeline, environment, registry, goals, report
# ---------------------------------------------------------------------------


@dataclass
class Timeline:
    """Stages in seconds since ``t0`` (the moment make started), on a monotonic clock.

    >>> clock = iter([100.0, 103.25, 190.0]).__next__
    >>> timeline = Timeline(clock=clock)
    >>> timeline.start()
    >>> timeline.mark("venv_installed")
    3.2
    >>> timeline.mark("venv_installed")  # the first time counts
    3.2
    >>> timeline.seconds()["venv_installed"], timeline.seconds()["first_highlight"]
    (3.2, None)
    >>> timeline.elapsed()
    90.0
    """

    clock: Callable[[], float] = time.monotonic
    t0: float | None = None
    marks: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self.t0 = self.clock()

    def elapsed(self) -> float:
        if self.t0 is None:
            raise RuntimeError("Timeline.start() was not called")
        return self.clock() - self.t0

    def mark(self, stage: str) -> float:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; one of {', '.join(STAGES)}")
        if stage not in self.marks:
            self.marks[stage] = round(self.elapsed(), 1)
        return self.marks[stage]

    def reached(self, stage: str) -> bool:
        return stage in self.marks

    def seconds(self) -> dict[str, float | None]:
        return {stage: self.marks.get(stage) for stage in STAGES}

    def next_stage(self) -> str | None:
        return next((stage for stage in STAGES if stage not in self.marks), None)


def make_environment(
    base: Mapping[str, str],
    *,
    port: int,
    cache_dir: Path,
    data_dir: Path | None,
    no_pip_cache: bool = False,
) -> dict[str, str]:
    """The environment ``make run`` gets: ``base`` without settings that would point the
    clone elsewhere (``TAGGER_*``, ``STREAMLIT_*``, an active virtualenv), plus the port.

    >>> env = make_environment(
    ...     {"PATH": "/w/.venv/bin:/usr/bin", "VIRTUAL_ENV": "/w/.venv", "TAGGER_DATA_DIR": "x",
    ...      "HOME": "/home/curator"}, port=8600, cache_dir=Path("/tmp/c"), data_dir=Path("/d"))
    >>> env["PATH"], env["BC5CDR_DIR"], env["STREAMLIT_SERVER_PORT"], "TAGGER_DATA_DIR" in env
    ('/usr/bin', '/d', '8600', False)
    """
    venv_bins = {str(Path(base["VIRTUAL_ENV"]) / "bin")} if base.get("VIRTUAL_ENV") else set()
    env = {
        name: value
        for name, value in base.items()
        if name not in DROPPED_NAMES and not name.startswith(DROPPED_PREFIXES)
    }
    path = [
        entry
        for entry in base.get("PATH", "").split(os.pathsep)
        if entry and entry not in venv_bins and not entry.rstrip("/").endswith("/.venv/bin")
    ]
    env["PATH"] = os.pathsep.join(path)
    env.update(
        {
            "STREAMLIT_SERVER_PORT": str(port),
            "STREAMLIT_SERVER_ADDRESS": HOST,
            "STREAMLIT_SERVER_HEADLESS": "true",
            "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
            "TAGGER_CACHE_DIR": str(cache_dir),  # a fresh machine has no derived ONNX graphs
        }
    )
    if data_dir is not None:
        env["BC5CDR_DIR"] = str(data_dir)
    if no_pip_cache:
        env["PIP_NO_CACHE_DIR"] = "1"
    return env


def pip_cache_state(environ: Mapping[str, str], home: Path, *, disabled: bool) -> dict[str, Any]:
    """Where pip's download cache is, whether it existed (non-empty) before the run, and
    whether the install may use it.

    >>> pip_cache_state({"PIP_CACHE_DIR": "/nonexistent/pip"}, Path("/home/c"), disabled=False)
    {'dir': '/nonexistent/pip', 'existed': False, 'used': True}
    """
    if environ.get("PIP_CACHE_DIR"):
        folder = Path(environ["PIP_CACHE_DIR"])
    else:
        folder = Path(environ.get("XDG_CACHE_HOME") or home / ".cache") / "pip"
    existed = folder.is_dir() and any(folder.iterdir())
    no_cache = str(environ.get("PIP_NO_CACHE_DIR", "")).lower() in {"1", "true", "yes", "on"}
    return {"dir": str(folder), "existed": existed, "used": not (disabled or no_cache)}


def resolve_data_dir(
    option: Path | None, environ: Mapping[str, str], repo: str
) -> tuple[Path | None, str]:
    """The BC5CDR-disease folder the clone gets, and where that choice came from.

    ``None`` leaves ``make run`` to download the data (its ``data-ready`` target).
    """
    if option is not None:
        chosen, source = option, "--data-dir"
    elif environ.get("BC5CDR_DIR", "").strip():
        chosen, source = Path(environ["BC5CDR_DIR"].strip()), "$BC5CDR_DIR"
    else:
        beside = Path(repo).resolve().parent / "shared" / "data" / "bc5cdr-disease"
        if not Path(repo).is_dir() or not beside.is_dir():
            return None, "downloaded by make run (data-ready)"
        chosen, source = beside, "shared/data beside the repository"
    chosen = chosen.resolve()
    missing = [name for name in DATA_FILES if not (chosen / name).is_file()]
    if missing:
        raise BenchmarkError(
            f"the BC5CDR-disease folder lacks {', '.join(missing)}",
            where=f"{chosen} ({source})",
            fix="point --data-dir at a folder with train.tsv, devel.tsv and test.tsv",
        )
    return chosen, source


@dataclass(frozen=True)
class ModelRecord:
    """One registered version as the benchmark reports it."""

    version: str
    preliminary: bool
    devel_f1: float | None
    steps: int | None  # the training step a preliminary version was taken at
    epoch: int | None
    epoch_end: bool | None
    job_id: int | None
    preliminary_from: str  # "registry database" or "model.json"
    stage: str | None = None  # "first-model": the quick first model; None: the job's recipe


def _database_summary(database: Path | None, version: str) -> dict[str, Any] | None:
    """The registry row's ``summary`` of ``version``, read-only; None when unreadable."""
    if database is None or not database.is_file():
        return None
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
        try:
            row = connection.execute(
                "SELECT summary FROM model_versions WHERE version = ?", (version,)
            ).fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        return None
    if row is None or row[0] is None:
        return None
    summary = json.loads(row[0]) if isinstance(row[0], str | bytes) else row[0]
    return summary if isinstance(summary, dict) else None


def read_version(registry: Path, version: str, database: Path | None) -> ModelRecord | None:
    """``version``'s record from ``<registry>/versions/<version>/model.json`` and, where
    the database can be read, its registry row; None while the folder is incomplete."""
    metadata_file = registry / VERSIONS_DIR / version / METADATA_FILE
    try:
        metadata = json.loads(metadata_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    training = metadata.get("training") or {}
    taken = training.get("preliminary") or {}  # worker/preliminary.py's folder metadata
    dev_f1 = ((metadata.get("metrics") or {}).get("dev") or {}).get("f1")
    summary = _database_summary(database, version)
    point: dict[str, Any] = {}
    if summary is not None:
        preliminary = summary.get("preliminary") is True
        point = dict(summary.get("preliminary_point") or {}) if preliminary else {}
        source = "registry database"
    else:
        preliminary = bool(taken)
        source = "model.json"
    step = point.get("step", taken.get("step"))
    epoch = point.get("epoch", taken.get("epoch"))
    epoch_end = point.get("epoch_end", taken.get("epoch_end"))
    return ModelRecord(
        version=version,
        preliminary=preliminary,
        devel_f1=None if dev_f1 is None else float(dev_f1),
        steps=None if step is None else int(step),
        epoch=None if epoch is None else int(epoch),
        epoch_end=None if epoch_end is None else bool(epoch_end),
        job_id=None if point.get("job_id") is None else int(point["job_id"]),
        preliminary_from=source,
        stage=point.get("stage", taken.get("stage")),
    )


def served_version(registry: Path, database: Path | None) -> ModelRecord | None:
    """The version ``<registry>/current`` names, once its folder is complete; else None."""
    try:
        version = (registry / POINTER_FILE).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return read_version(registry, version, database) if version else None


def evaluate_goals(first_highlight_s: float | None, model: ModelRecord | None) -> dict[str, Any]:
    """The issue's two goals on what was measured; ``all_met`` only if both are met.

    >>> record = ModelRecord("v1", True, 69.4, 120, 1, False, 1, "model.json")
    >>> goals = evaluate_goals(512.3, record)
    >>> goals["first_highlight_within_10_minutes"]["met"], goals["devel_f1_at_least_68"]["met"]
    (True, True)
    >>> evaluate_goals(None, record)["all_met"]
    False
    """
    time_met = first_highlight_s is not None and first_highlight_s <= GOAL_SECONDS
    f1 = None if model is None else model.devel_f1
    f1_met = f1 is not None and f1 >= GOAL_DEVEL_F1
    return {
        "first_highlight_within_10_minutes": {
            "target_s": GOAL_SECONDS,
            "measured_s": first_highlight_s,
            "met": time_met,
        },
        "devel_f1_at_least_68": {
            "target": GOAL_DEVEL_F1,
            "measured": f1,
            "version": None if model is None else model.version,
            "preliminary": None if model is None else model.preliminary,
            "met": f1_met,
        },
        "all_met": time_met and f1_met,
    }


def machine_facts(
    *, load_average: tuple[float, float, float], cpu_count: int | None, usable: int
) -> dict[str, Any]:
    """The machine as the JSON records it.

    >>> facts = machine_facts(load_average=(1.234, 0.5, 0.25), cpu_count=2, usable=2)
    >>> facts["cpu_count"], facts["load_average_at_start"]
    (2, [1.23, 0.5, 0.25])
    """
    return {
        "cpu_count": cpu_count,
        "cpus_usable": usable,
        "load_average_at_start": [round(value, 2) for value in load_average],
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


@dataclass
class RunFacts:
    """What a run learned besides its timeline (all optional: a run may stop anywhere)."""

    started_at: str
    command: str
    repo: str
    machine: dict[str, Any]
    pip_cache: dict[str, Any]
    data: dict[str, Any]
    clone_dir: str | None = None
    commit: str | None = None
    clone_seconds: float | None = None
    port: int | None = None
    first_in_service: ModelRecord | None = None
    tagged_by: ModelRecord | None = None
    mentions: list[str] = field(default_factory=list)
    screenshot: str | None = None
    make_log: str | None = None
    make_exit: int | None = None
    kept: bool = False
    stopped_strays: list[int] = field(default_factory=list)


def build_report(
    facts: RunFacts,
    timeline: Timeline,
    *,
    failure: StageFailed | None = None,
    log_tail: Sequence[str] = (),
) -> dict[str, Any]:
    """The JSON: stages since ``t0``, the models, the goals, the machine, the outcome.

    The F1 goal is judged on the version that drew the highlight (the Tag page names
    it), else on the first version in service.
    """
    seconds = timeline.seconds()
    model = facts.tagged_by or facts.first_in_service
    outcome = "completed" if failure is None else "timed out" if failure.timed_out else "failed"
    return {
        "benchmark": "first_highlight",
        "command": facts.command,
        "started_at": facts.started_at,
        "outcome": outcome,
        "waiting_for": None if failure is None else failure.stage,
        "problem": None if failure is None else failure.problem,
        "seconds_since_make_start": seconds,
        "clone_seconds": facts.clone_seconds,
        "first_model_in_service": None
        if facts.first_in_service is None
        else asdict(facts.first_in_service),
        "model_that_tagged": None if facts.tagged_by is None else asdict(facts.tagged_by),
        "mentions_shown": len(facts.mentions),
        "mentions": facts.mentions,
        "abstract_words": len(ABSTRACT.split()),
        "goals": evaluate_goals(seconds["first_highlight"], model),
        "machine": facts.machine,
        "pip_cache": facts.pip_cache,
        "data": facts.data,
        "repo": facts.repo,
        "commit": facts.commit,
        "clone_dir": facts.clone_dir,
        "kept": facts.kept,
        "port": facts.port,
        "screenshot": facts.screenshot,
        "make_log": facts.make_log,
        "make_exit_status": facts.make_exit,
        "make_log_tail": list(log_tail),
        "stray_processes_stopped": facts.stopped_strays,
    }


def processes_inside(folder: Path, *, proc: Path = Path("/proc")) -> list[int]:
    """Pids (not this one) whose working directory is ``folder`` or inside it: what the
    run started there, the app's own worker included (it runs in a session of its own)."""
    root = str(folder.resolve())
    found: list[int] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:  # gone, or not ours to read
            continue
        if cwd == root or cwd.startswith(root + os.sep):
            found.append(int(entry.name))
    return sorted(found)


def tail(path: Path, lines: int = 40) -> list[str]:
    """The last ``lines`` lines of a text file (none if it cannot be read)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


# ---------------------------------------------------------------------------
# The run: clone, make run, poll, browser, stop
# ---------------------------------------------------------------------------


def free_port() -> int:
    from tests.e2e.streamlit_server import free_port as pick

    return pick()


def check_browser() -> None:
    from tests.e2e.chromium import missing_chromium

    missing = missing_chromium()
    if missing:
        raise BenchmarkError(missing)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise BenchmarkError(
            "Playwright is not installed in this Python",
            fix="run it with the project's .venv/bin/python after `make test` installed it",
        ) from None


def prepare_folder(options: Options) -> tuple[Path, Path | None]:
    """The clone's folder (not there yet) and the temp folder to delete after, if any."""
    if options.clone_dir is not None:
        clone = options.clone_dir.resolve()
        if clone.exists() and (not clone.is_dir() or any(clone.iterdir())):
            raise BenchmarkError(
                "the clone folder exists and is not empty",
                where=f"--clone-dir {clone}",
                fix="name a new folder (the point is a fresh clone)",
            )
        clone.parent.mkdir(parents=True, exist_ok=True)
        if clone.is_dir():
            clone.rmdir()  # git clone wants to create it
        return clone, None
    work = Path(tempfile.mkdtemp(prefix="first-highlight-"))
    shared = Path(options.repo).resolve().parent / "shared"
    if Path(options.repo).is_dir() and shared.is_dir():
        (work / "shared").symlink_to(shared, target_is_directory=True)
    return work / "main", work


def git_clone(repo: str, clone: Path) -> str:
    """Clone ``repo`` (its HEAD) into ``clone``; the commit checked out."""
    result = subprocess.run(
        ["git", "clone", "--quiet", repo, str(clone)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise BenchmarkError(
            f"git clone failed: {result.stderr.strip() or result.returncode}",
            where=repo,
            fix="give --repo a path or URL git can clone",
        )
    return subprocess.run(
        ["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def wait_for_service(
    make: subprocess.Popen[bytes],
    clone: Path,
    url: str,
    timeline: Timeline,
    timeout_s: float,
    facts: RunFacts,
) -> None:
    """Poll until the app answers and a version is in service, marking each stage."""
    registry, database = clone / REGISTRY, clone / DATABASE
    while not (timeline.reached("app_healthy") and timeline.reached("first_model_in_service")):
        if make.poll() is not None:
            facts.make_exit = make.returncode
            raise StageFailed(
                timeline.next_stage() or "app_healthy",
                f"make run exited with status {make.returncode}; see the make log",
                timed_out=False,
            )
        if not timeline.reached("venv_installed") and (clone / INSTALLED_MARKER).is_file():
            timeline.mark("venv_installed")
        if not timeline.reached("app_healthy") and healthy(url):
            timeline.mark("app_healthy")
        if not timeline.reached("first_model_in_service"):
            record = served_version(registry, database)
            if record is not None:
                timeline.mark("first_model_in_service")
                facts.first_in_service = record
        if timeline.elapsed() > timeout_s:
            stage = timeline.next_stage() or "first_model_in_service"
            raise StageFailed(
                stage, f"not reached within {timeout_s / 60:g} minutes", timed_out=True
            )
        time.sleep(POLL_S)


def _remaining_ms(timeline: Timeline, timeout_s: float, stage: str) -> float:
    left = timeout_s - timeline.elapsed()
    if left <= 0:
        raise StageFailed(stage, f"not reached within {timeout_s / 60:g} minutes", timed_out=True)
    return left * 1000.0


def _page_error(page: Any) -> str | None:
    boxes = page.locator(ERROR_BOXES)
    if boxes.count() == 0:
        return None
    return "the page shows an error: " + " ".join(boxes.first.inner_text().split())[:500]


def open_tag_page(page: Any, url: str, timeline: Timeline, timeout_s: float) -> None:
    """The Tag page with its Tag button enabled: reloaded until a model serves there, or
    until the page draws (a busy machine can take longer than one wait), up to the timeout."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    while True:
        wait = min(PAGE_WAIT_MS, _remaining_ms(timeline, timeout_s, "page_ready"))
        try:
            # The Tag page is the app's default page: it lives at the root, and /tag is
            # "Page not found" (a dialog over the page that blocks typing).
            page.goto(f"{url}/", wait_until="domcontentloaded", timeout=wait)
            page.get_by_role("textbox", name="Abstract", exact=True).wait_for(timeout=wait)
            button = page.get_by_role("button", name="Tag", exact=True)
            button.wait_for(timeout=wait)
            if button.is_enabled():
                return
        except PlaywrightTimeout:
            continue  # load it again while time is left
        time.sleep(2.0)


def wait_for_highlight(page: Any, timeline: Timeline, timeout_s: float) -> None:
    marks = page.locator(HIGHLIGHT)
    while not (marks.count() > 0 and marks.first.is_visible()):
        problem = _page_error(page)
        if problem:
            raise StageFailed("first_highlight", problem, timed_out=False)
        _remaining_ms(timeline, timeout_s, "first_highlight")
        time.sleep(0.2)


def model_in_caption(captions: Sequence[str]) -> str | None:
    """The version the Tag page's result caption names ("Model <version> on <device> · …").

    >>> model_in_caption(["Model v7 · CPU", "Model v7 on CPU (ONNX Runtime) · 9 sentences"])
    'v7'
    >>> model_in_caption(["3 corrections saved"]) is None
    True
    """
    for caption in captions:
        found = CAPTION_MODEL.search(caption)
        if found:
            return found.group(1)
    return None


def tag_in_browser(
    url: str, clone: Path, timeline: Timeline, timeout_s: float, facts: RunFacts, screenshot: Path
) -> None:
    """Paste :data:`ABSTRACT` on the Tag page, press Tag, wait for a highlighted mention."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.chromium import CHROMIUM, CHROMIUM_ARGS

    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.set_default_timeout(PAGE_WAIT_MS)
        try:
            open_tag_page(page, url, timeline, timeout_s)
            timeline.mark("page_ready")
            page.get_by_role("textbox", name="Abstract", exact=True).fill(ABSTRACT)
            page.get_by_role("button", name="Tag", exact=True).click()
            timeline.mark("tag_clicked")
            wait_for_highlight(page, timeline, timeout_s)
            timeline.mark("first_highlight")
            # A mention is its text, then a <span class="score"> (app/render.py).
            facts.mentions = page.locator(HIGHLIGHT).evaluate_all(
                "els => els.map(e => (e.firstChild ? e.firstChild.textContent : '').trim())"
            )
            version = model_in_caption(page.get_by_test_id("stCaptionContainer").all_inner_texts())
            if version is not None:
                facts.tagged_by = read_version(clone / REGISTRY, version, clone / DATABASE)
        except Exception as error:
            if not isinstance(error, StageFailed):  # a Playwright wait ran out, or worse
                stage = timeline.next_stage() or "first_highlight"
                timed_out = timeline.elapsed() >= timeout_s - 1.0
                error = StageFailed(stage, f"{type(error).__name__}: {error}", timed_out=timed_out)
            with contextlib.suppress(Exception):
                page.screenshot(path=str(screenshot), full_page=True)
                facts.screenshot = str(screenshot)
            raise error from None
        else:
            page.screenshot(path=str(screenshot), full_page=True)
            facts.screenshot = str(screenshot)
        finally:
            browser.close()


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie, exited but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:  # gone between the two calls
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def stop_group(make: subprocess.Popen[bytes]) -> None:
    """SIGTERM to make's process group (Streamlit, the worker), SIGKILL after a grace."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(make.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            make.wait(timeout=STOP_GRACE_S)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline:
            try:
                os.killpg(make.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def stop_strays(clone: Path) -> list[int]:
    """Stop each process still running inside ``clone``, by its pid; the pids."""
    pids = processes_inside(clone)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return pids


@contextlib.contextmanager
def make_run(clone: Path, env: Mapping[str, str], log: Path, keep: bool) -> Iterator[Any]:
    """``make run`` in ``clone`` in a new process group; stopped afterwards unless ``keep``."""
    with log.open("wb") as output:
        make = subprocess.Popen(
            ["make", "run"],
            cwd=clone,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield make
    finally:
        if not keep:
            stop_group(make)


def write_json(path: Path, report: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    os.replace(staging, path)


def run(options: Options) -> int:
    """The whole benchmark; the exit status (0: the highlight was seen)."""
    check_browser()
    data_dir, data_source = resolve_data_dir(options.data_dir, os.environ, options.repo)
    port = options.port or free_port()
    facts = RunFacts(
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        command=options.command,
        repo=options.repo,
        machine=machine_facts(
            load_average=os.getloadavg(),
            cpu_count=os.cpu_count(),
            usable=len(os.sched_getaffinity(0)),
        ),
        pip_cache=pip_cache_state(os.environ, Path.home(), disabled=options.no_pip_cache),
        data={"dir": None if data_dir is None else str(data_dir), "source": data_source},
        port=port,
        kept=options.keep,
    )
    timeline = Timeline()
    clone, work = prepare_folder(options)
    facts.clone_dir = str(clone)
    beside = work or clone.parent  # the log and the ONNX cache, outside the clone
    log = beside / f"{clone.name}-make-run.log"
    cache = beside / f"{clone.name}-onnx-cache"
    failure: StageFailed | None = None
    try:
        started = time.monotonic()
        facts.commit = git_clone(options.repo, clone)
        facts.clone_seconds = round(time.monotonic() - started, 1)
        env = make_environment(
            os.environ,
            port=port,
            cache_dir=cache,
            data_dir=data_dir,
            no_pip_cache=options.no_pip_cache,
        )
        url = f"http://{HOST}:{port}"
        timeline.start()
        with make_run(clone, env, log, options.keep) as make:
            try:
                wait_for_service(make, clone, url, timeline, options.timeout_s, facts)
                tag_in_browser(url, clone, timeline, options.timeout_s, facts, options.screenshot)
            except StageFailed as error:
                failure = error
            if make.poll() is not None:
                facts.make_exit = make.returncode
    except BaseException as error:  # a failed clone, Ctrl-C, a bug: still say what was reached
        stage = "git clone" if facts.commit is None else timeline.next_stage() or "stopping"
        if isinstance(error, KeyboardInterrupt):
            problem = "interrupted"
        elif isinstance(error, BenchmarkError):
            problem = str(error)
        else:
            problem = f"{type(error).__name__}: {error}"
        failure = StageFailed(stage, problem, timed_out=False)
        if not isinstance(error, BenchmarkError | KeyboardInterrupt):
            raise  # a bug keeps its traceback (the JSON is written first, below)
    finally:
        if not options.keep and timeline.t0 is not None:  # make's group is stopped by now
            facts.stopped_strays = stop_strays(clone)
        if log.is_file():
            options.log_copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, options.log_copy)
            facts.make_log = str(options.log_copy)
        report = build_report(
            facts, timeline, failure=failure, log_tail=tail(log) if failure else ()
        )
        write_json(options.out, report)
        if not options.keep:
            shutil.rmtree(clone, ignore_errors=True)
            log.unlink(missing_ok=True)
            shutil.rmtree(cache, ignore_errors=True)
            if work is not None:
                shutil.rmtree(work, ignore_errors=True)
    _print_summary(report, options.out)
    return 0 if failure is None else 1


def _print_summary(report: Mapping[str, Any], out: Path) -> None:
    seconds = report["seconds_since_make_start"]
    reached = ", ".join(f"{stage} {value:.0f} s" for stage, value in seconds.items() if value)
    in_time = report["goals"]["first_highlight_within_10_minutes"]
    f1 = report["goals"]["devel_f1_at_least_68"]
    print(
        f"{report['outcome']}: {reached or 'no stage reached'}; "
        f"10-minute goal {'met' if in_time['met'] else 'missed'}, "
        f"devel F1 goal {'met' if f1['met'] else 'missed'} (F1 {f1['measured']}); wrote {out}"
    )
    if report["problem"]:
        print(f"waiting for {report['waiting_for']}: {report['problem']}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    return run_cli(lambda: run(parse_args(arguments)), prog=PROG)


if __name__ == "__main__":
    raise SystemExit(main())
