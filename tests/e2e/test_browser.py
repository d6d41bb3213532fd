"""End to end in a real browser: Streamlit server + Debian's headless Chromium (Playwright).

The test starts the app on a free localhost port with the fake tagger, pastes a sample
abstract, waits for a highlighted mention, checks that pasted markup stays text, and
saves screenshots under ``test-artifacts/``. A second test opens the Training page on
a job that a stand-in worker advances and checks that the page follows it unprompted.
Nothing downloads a browser: it drives the system Chromium (``CHROMIUM_PATH``, default
``/usr/bin/chromium``; ``tests/e2e/install_chromium.sh`` installs it) and skips only
where there is none.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.samples import load_samples
from tests.app_fakes import write_fake_model_folder
from tests.e2e.chromium import CHROMIUM, CHROMIUM_ARGS, missing_chromium
from tests.e2e.streamlit_server import free_port, wait_until_healthy

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
SAMPLE = "Cardiotoxicity"

pytestmark = pytest.mark.slow
EXPECT_TIMEOUT_MS = 60_000  # an upper bound for each wait; a quiet machine answers in under 1 s


@pytest.fixture(autouse=True)
def patient_expectations() -> None:
    """Playwright's 5 s default fails on a loaded 2-core machine, not on a broken page."""
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)


@contextlib.contextmanager
def serve_app(folder: Path) -> Iterator[str]:
    """The app on the fake tagger, its data under ``folder``; yields its URL."""
    missing = missing_chromium()
    if missing:
        pytest.skip(missing)
    port = free_port()
    env = {
        **os.environ,
        "TAGGER_MODEL_DIR": str(write_fake_model_folder(folder / "model")),
        "TAGGER_DATA_DIR": str(folder / "data"),
        "TAGGER_REGISTRY_DIR": str(folder / "models"),
        "TAGGER_START_WORKER": "0",  # the browser tests need no training worker
        "TAGGER_DB_URL": "",
        "PYTHONPATH": str(REPO_ROOT),
    }
    log = folder / "streamlit.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "tests" / "e2e" / "serve_fake.py"), str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, server, log)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_app(tmp_path_factory.mktemp("e2e")) as url:
        yield url


@contextlib.contextmanager
def browser_page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1400})
        finally:
            browser.close()


def test_a_pasted_sample_is_highlighted_and_markup_stays_text(server_url: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(server_url, wait_until="domcontentloaded")

            text_box = page.get_by_role("textbox", name="Abstract", exact=True)
            expect(text_box).to_be_visible(timeout=60_000)
            text_box.fill(load_samples()[SAMPLE])
            page.get_by_role("button", name="Tag", exact=True).click()

            mention = page.locator(".tagged-text mark.mention", has_text="cardiomyopathy").first
            expect(mention).to_be_visible(timeout=60_000)
            assert "confidence" in (mention.get_attribute("title") or "")
            expect(page.get_by_text("Download mentions (JSON)")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "e2e-tag-sample.png"), full_page=True)

            markup = "<img src=x onerror=alert(1)> <script>alert(2)</script> with fever"
            text_box.fill(markup)
            page.get_by_role("button", name="Tag", exact=True).click()
            tagged = page.locator(".tagged-text").last
            expect(tagged).to_contain_text("<img src=x onerror=alert(1)>", timeout=60_000)
            expect(tagged).to_contain_text("<script>alert(2)</script>")
            assert page.locator(".tagged-text img, .tagged-text script").count() == 0
            page.screenshot(path=str(ARTIFACTS / "e2e-markup-as-text.png"), full_page=True)
        finally:
            browser.close()
    assert dialogs == []  # no alert() ran


def test_the_training_page_follows_a_running_job_without_a_click(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The progress fragment refreshes itself; when the job ends, the whole page does."""
    from playwright.sync_api import expect

    from curation.database import Database
    from curation.jobs import JobQueue, JobStatus, Progress

    folder = tmp_path_factory.mktemp("e2e-training")
    queue = JobQueue(Database.open(data_dir=folder / "data"))
    job = queue.enqueue(requested_by="ada").job
    queue.claim("gpu-box:1", device="GPU: test")

    def report(step: int) -> None:
        progress = Progress("training", 1, 1, step, 4, 1.0 / step, None, 4.0 - step)
        queue.heartbeat(job.id, "gpu-box:1", progress=progress, loss_point=(step, 1, 1.0 / step))

    report(1)
    ARTIFACTS.mkdir(exist_ok=True)
    with serve_app(folder) as url, browser_page() as page:
        page.goto(f"{url}/training", wait_until="domcontentloaded")
        bar = page.get_by_test_id("stProgress")
        expect(bar).to_contain_text("step 1/4", timeout=60_000)
        report(3)  # the worker moves on; nobody touches the page
        expect(bar).to_contain_text("step 3/4", timeout=20_000)
        page.screenshot(path=str(ARTIFACTS / "e2e-training-running.png"), full_page=True)
        queue.finish(job.id, JobStatus.SUCCEEDED, worker="gpu-box:1", message="Version v2 ready.")
        expect(page.get_by_text(f"Last job {job.id} succeeded")).to_be_visible(timeout=30_000)
        expect(bar).to_have_count(0)
        page.screenshot(path=str(ARTIFACTS / "e2e-training-done.png"), full_page=True)
