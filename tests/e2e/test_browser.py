"""End to end in a real browser: Streamlit server + Debian's headless Chromium (Playwright).

The test starts the app on a free localhost port with the fake tagger, pastes a sample
abstract, waits for a highlighted mention, checks that pasted markup stays text, and
saves screenshots under ``test-artifacts/``. Nothing downloads a browser: it drives
the system Chromium (``CHROMIUM_PATH``, default ``/usr/bin/chromium``;
``tests/e2e/install_chromium.sh`` installs it) and skips only where there is none.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.samples import load_samples
from tests.app_fakes import write_fake_model_folder

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SAMPLE = "Cardiotoxicity"
STARTUP_TIMEOUT_S = 90

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_healthy(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the Streamlit server exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(
        f"the Streamlit server did not answer within {STARTUP_TIMEOUT_S} s:\n{log.read_text()}"
    )


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not CHROMIUM.is_file():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: run tests/e2e/install_chromium.sh "
            "(apt-get install chromium) or set CHROMIUM_PATH"
        )
    folder = tmp_path_factory.mktemp("e2e")
    port = free_port()
    env = {
        **os.environ,
        "TAGGER_MODEL_DIR": str(write_fake_model_folder(folder / "model")),
        "TAGGER_DATA_DIR": str(folder / "data"),
        "TAGGER_REGISTRY_DIR": str(folder / "models"),
        "TAGGER_START_WORKER": "0",  # the browser test needs no training worker
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
