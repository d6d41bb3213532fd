"""Load test: browser sessions tag and save corrections on one store while a worker retrains.

Everything runs on 127.0.0.1: the app's Streamlit server (``tests/e2e/serve_fake.py``:
the real app on the fake tagger, so the figures measure the app and the store, not
the model), a real training worker (``python -m worker``) that retrains the tiny model
(``--max-steps 2 --epochs 1``) on every job, while a driver queues a new job whenever
none is active, so versions are registered, promoted and hot-swapped throughout, and
``--sessions`` Chromium pages (Playwright, Debian's Chromium) that each, until
``--seconds`` have passed (and at most ``--max-iterations`` times): tag a unique
sentence, open it in Correct, save it (`S` in the span editor) and go back to Tag.

Afterwards the database is counted against what every session saw: each save's
"Saved correction #N" must be one row of that session's annotator, and every row of
that annotator one such save (none lost, none duplicated). Any exception or error
box shown, and any wait past its bound, counts as an error.

    python -m benchmarks.load_test --sessions 8 --seconds 120

writes ``benchmarks/results/load.json`` (with the command) for ``BENCHMARKS.md``;
``tests/e2e/test_load.py`` runs a short version.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.e2e.chromium import CHROMIUM, CHROMIUM_ARGS, missing_chromium

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "benchmarks" / "results" / "load.json"
HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 240.0
WAIT_MS = 60_000  # the bound on each wait of a session (a loaded 2-core machine is slow)
MAX_ITERATIONS = 500  # per session, whatever --seconds says
MAX_JOBS = 200  # retrain jobs the driver queues at most
SAVED = re.compile(r"Saved correction #(\d+)")
# The span editor's root, inside its component's open shadow root.
EDITOR_FOCUSED_JS = (
    "() => { const e = document.querySelector('[data-testid^=stBidiComponent]')"
    "?.shadowRoot?.querySelector('.span-editor'); "
    "return !!e && e.getRootNode().activeElement === e; }"
)
ERROR_BOXES = '[data-testid="stException"], [data-testid="stAlertContentError"]'


class LoadTestError(RuntimeError):
    """The set-up failed (a server or the worker did not start)."""


@dataclass
class SessionLog:
    annotator: str
    tag_latency_s: list[float] = field(default_factory=list)
    save_latency_s: list[float] = field(default_factory=list)
    saved_ids: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "HF_HUB_OFFLINE": "1",
        **extra,
    }


@contextlib.contextmanager
def process(
    command: list[str], log: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as output:
        child = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        yield child
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def wait_for(check: Any, timeout_s: float, what: str, child: subprocess.Popen[bytes], log: Path):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise LoadTestError(
                f"{what}: the process exited with {child.returncode}:\n"
                f"{log.read_text(errors='replace')[-3000:]}"
            )
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise LoadTestError(
        f"{what} within {timeout_s:.0f} s:\n{log.read_text(errors='replace')[-3000:]}"
    )


def healthy(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
        return response.status == 200


def train_adoptable_model(folder: Path, log: Path) -> Path:
    """The tiny model (tests/tiny.py) in a subprocess: this process stays Keras-free."""
    target = folder / "tiny"
    code = (
        f"from pathlib import Path; from tests.tiny import train_tiny_model; "
        f"train_tiny_model(Path({str(target)!r}))"
    )
    with log.open("ab") as output:
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO_ROOT,
            env=_env(),
            check=True,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=900,
        )
    return target


# ---------------------------------------------------------------------------
# The retrain driver
# ---------------------------------------------------------------------------


def keep_retraining(curation: Any, stop: threading.Event, counts: dict[str, int]) -> None:
    """Queue a retrain whenever none is active, until ``stop`` (at most MAX_JOBS)."""
    while not stop.is_set() and counts["queued"] < MAX_JOBS:
        try:
            if curation.queue.active_job() is None:
                result = curation.request_retrain(requested_by="load-test", override=True)
                counts["queued"] += int(result.created)
        except Exception as error:  # counted: the store must stay usable under load
            counts["driver_errors"] += 1
            counts.setdefault("first_driver_error", repr(error))  # type: ignore[arg-type]
        stop.wait(0.5)


# ---------------------------------------------------------------------------
# One browser session
# ---------------------------------------------------------------------------


async def _errors_shown(page: Any) -> list[str]:
    boxes = page.locator(ERROR_BOXES)
    return [text[:300] for text in await boxes.all_inner_texts()]


async def _new_saved_id(page: Any, known: set[int], deadline: float) -> int | None:
    while time.monotonic() < deadline:
        for text in await page.locator('[data-testid="stAlertContentSuccess"]').all_inner_texts():
            match = SAVED.search(text)
            if match and int(match.group(1)) not in known:
                return int(match.group(1))
        await asyncio.sleep(0.1)
    return None


async def open_session(browser: Any, url: str, log: SessionLog) -> tuple[Any, Any]:
    """A fresh browser context on the Tag page, the annotator's name entered."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1200})
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    await page.goto(url, wait_until="domcontentloaded")
    annotator = page.get_by_role("textbox", name="Annotator")
    await annotator.fill(log.annotator)
    await annotator.press("Enter")
    await page.get_by_role("textbox", name="Abstract", exact=True).wait_for(state="visible")
    return context, page


async def run_session(
    page: Any, index: int, stop_at: float, max_iterations: int, log: SessionLog
) -> None:
    """Tag, correct, save, back to Tag: until ``stop_at``, at most ``max_iterations`` times."""
    text_box = page.get_by_role("textbox", name="Abstract", exact=True)
    try:
        for iteration in range(max_iterations):
            if time.monotonic() >= stop_at:
                break
            marker = f"Case{index}x{iteration}"
            await text_box.fill(f"{marker} presented with fever and renal failure.")
            started = time.monotonic()
            await page.get_by_role("button", name="Tag", exact=True).click()
            await page.locator(".tagged-text", has_text=marker).first.wait_for(state="visible")
            log.tag_latency_s.append(time.monotonic() - started)

            await page.get_by_role("button", name="Correct this sentence").click()
            # The Correct page is the span editor: it takes focus when the sentence is
            # mounted, and `S` saves (and opens the next sentence, here none).
            await page.locator(".span-editor", has_text=marker).first.wait_for(state="visible")
            await page.wait_for_function(EDITOR_FOCUSED_JS)
            started = time.monotonic()
            await page.keyboard.press("s")
            deadline = time.monotonic() + WAIT_MS / 1000
            saved = await _new_saved_id(page, set(log.saved_ids), deadline)
            if saved is None:
                log.errors.append(f"{marker}: no 'Saved correction' within {WAIT_MS / 1000:.0f} s")
            else:
                log.saved_ids.append(saved)
                log.save_latency_s.append(time.monotonic() - started)
            log.errors.extend(f"{marker}: {text}" for text in await _errors_shown(page))

            await page.locator('[data-testid="stSidebarNavLink"]', has_text="Tag text").click()
            await text_box.wait_for(state="visible")
    except Exception as error:  # a wait past its bound, a crashed page: an error, not a stop
        log.errors.append(f"session {index}: {type(error).__name__}: {str(error)[:300]}")
        with contextlib.suppress(Exception):
            log.errors.extend(await _errors_shown(page))


async def run_sessions(
    url: str, sessions: int, seconds: float, max_iterations: int
) -> tuple[list[SessionLog], float]:
    """Open every session, then run them all for ``seconds``; the logs and the time run."""
    from playwright.async_api import async_playwright

    logs = [SessionLog(f"load-{index}") for index in range(sessions)]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            opened = await asyncio.gather(
                *(open_session(browser, url, log) for log in logs), return_exceptions=True
            )
            started = time.monotonic()  # the clock starts once every session is open
            runs = []
            for index, (log, session) in enumerate(zip(logs, opened, strict=True)):
                if isinstance(session, BaseException):
                    log.errors.append(f"session {index} did not open: {session!r}"[:400])
                    continue
                runs.append(run_session(session[1], index, started + seconds, max_iterations, log))
            await asyncio.gather(*runs)
            elapsed = time.monotonic() - started
        finally:
            await browser.close()
    return logs, elapsed


# ---------------------------------------------------------------------------
# The whole run
# ---------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def run_load(
    *,
    sessions: int = 8,
    seconds: float = 120.0,
    retrain: bool = True,
    adopt_dir: Path | None = None,
    work_dir: Path | None = None,
    max_iterations: int = MAX_ITERATIONS,
) -> dict[str, Any]:
    """Run the load test; the result as ``load.json`` holds it (see the module docstring)."""
    missing = missing_chromium()
    if missing:
        raise LoadTestError(missing)
    from sqlalchemy import select

    from curation.schema import corrections_table
    from curation.service import Curation
    from tests.app_fakes import write_fake_model_folder
    from tests.worker_helpers import write_tiny_data

    folder = Path(work_dir or tempfile.mkdtemp(prefix="tagger-load-"))
    folder.mkdir(parents=True, exist_ok=True)
    data, models = folder / "data", folder / "models"
    log = folder / "load.log"
    curation = Curation.open(data_dir=data, registry_dir=models)
    counts: dict[str, Any] = {"queued": 0, "driver_errors": 0}
    with contextlib.ExitStack() as stack:
        if retrain:
            adopt = adopt_dir or train_adoptable_model(folder, log)
            worker = stack.enter_context(
                process(
                    [
                        sys.executable,
                        "-m",
                        "worker",
                        "--app-data-dir",
                        str(data),
                        "--registry",
                        str(models),
                        "--data-dir",
                        str(write_tiny_data(folder / "bio")),
                        "--max-steps",
                        "2",
                        "--epochs",
                        "1",
                        "--tolerance",
                        "100",
                        "--adopt",
                        str(adopt),
                        "--poll-s",
                        "0.5",
                        "--heartbeat-s",
                        "1",
                    ],
                    folder / "worker.log",
                    _env(),
                )
            )
            wait_for(
                lambda: curation.registry.serving_version() is not None,
                STARTUP_TIMEOUT_S,
                "the worker adopted no model",
                worker,
                folder / "worker.log",
            )
        port = free_port()
        url = f"http://{HOST}:{port}"
        server = stack.enter_context(
            process(
                [sys.executable, str(REPO_ROOT / "tests" / "e2e" / "serve_fake.py"), str(port)],
                folder / "streamlit.log",
                _env(
                    TAGGER_MODEL_DIR=str(write_fake_model_folder(folder / "model")),
                    TAGGER_DATA_DIR=str(data),
                    TAGGER_REGISTRY_DIR=str(models),
                    TAGGER_START_WORKER="0",
                    TAGGER_DB_URL="",
                ),
            )
        )
        wait_for(
            lambda: healthy(url),
            STARTUP_TIMEOUT_S,
            "the app did not answer",
            server,
            folder / "streamlit.log",
        )
        versions_before = {version.version for version in curation.registry.versions()}
        stop = threading.Event()
        driver = threading.Thread(target=keep_retraining, args=(curation, stop, counts))
        if retrain:
            driver.start()
        try:
            logs, elapsed = asyncio.run(run_sessions(url, sessions, seconds, max_iterations))
        finally:
            stop.set()
            if driver.is_alive():
                driver.join(timeout=30)
        if server.poll() is not None:
            raise LoadTestError(f"the app exited with {server.returncode} during the run")

    with curation.database.read() as connection:
        rows = connection.execute(
            select(corrections_table.c.id, corrections_table.c.annotator)
        ).all()
    per_annotator: dict[str, list[int]] = {}
    for row in rows:
        per_annotator.setdefault(row.annotator, []).append(row.id)
    lost = duplicated = 0
    for session in logs:
        stored = per_annotator.get(session.annotator, [])
        lost += len(set(session.saved_ids) - set(stored))
        duplicated += len(stored) - len(set(stored) & set(session.saved_ids))
    jobs = curation.queue.jobs(limit=MAX_JOBS + 10)
    new_versions = [v for v in curation.registry.versions() if v.version not in versions_before]
    tags = [value for session in logs for value in session.tag_latency_s]
    saves = [value for session in logs for value in session.save_latency_s]
    errors = [error for session in logs for error in session.errors]
    return {
        "sessions": sessions,
        "seconds": seconds,
        "elapsed_s": round(elapsed, 1),
        "retrain": retrain,
        "tags": len(tags),
        "saves": sum(len(session.saved_ids) for session in logs),
        "saves_per_session": [len(session.saved_ids) for session in logs],
        "corrections_in_database": len(rows),
        "lost": lost,
        "duplicated": duplicated,
        "errors": len(errors) + counts["driver_errors"],
        "error_samples": errors[:20]
        + ([counts["first_driver_error"]] if "first_driver_error" in counts else []),
        "tag_latency_ms": {
            "p50": _ms(percentile(tags, 0.5)),
            "p95": _ms(percentile(tags, 0.95)),
            "max": _ms(max(tags, default=None)),
        },
        "save_latency_ms": {
            "p50": _ms(percentile(saves, 0.5)),
            "p95": _ms(percentile(saves, 0.95)),
        },
        "tag_latency_mean_ms": _ms(statistics.fmean(tags)) if tags else None,
        "retrain_jobs": {
            "queued": counts["queued"],
            "succeeded": sum(1 for job in jobs if job.status == "succeeded"),
            "failed": sum(1 for job in jobs if job.status == "failed"),
            "failed_only_by_the_final_stop": sum(
                1 for job in jobs if "stopped during the job" in (job.error or "")
            ),
        },
        "versions_registered": len(new_versions),
        "serving_version_at_end": curation.registry.serving_version(),
        "work_dir": str(folder),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8, help="concurrent browser sessions")
    parser.add_argument("--seconds", type=float, default=120.0, help="how long they run")
    parser.add_argument("--no-retrain", action="store_true", help="no worker, no retraining")
    parser.add_argument(
        "--max-iterations",
        type=int,
        default=MAX_ITERATIONS,
        help="tag-and-save rounds per session at most",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON result")
    args = parser.parse_args(argv)
    result = run_load(
        sessions=args.sessions,
        seconds=args.seconds,
        retrain=not args.no_retrain,
        max_iterations=args.max_iterations,
    )
    shown = ["python", "-m", "benchmarks.load_test", *(argv if argv is not None else sys.argv[1:])]
    result = {
        "measured": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(shown),
        "niceness": os.nice(0),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        **result,
    }
    result.pop("work_dir")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        json.dumps(
            {
                key: result[key]
                for key in (
                    "sessions",
                    "tags",
                    "saves",
                    "errors",
                    "lost",
                    "duplicated",
                    "tag_latency_ms",
                )
            }
        )
    )
    return 0 if result["errors"] == 0 and result["lost"] == 0 and result["duplicated"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
