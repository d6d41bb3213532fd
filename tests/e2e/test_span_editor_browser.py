"""The span editor in a real browser: keyboard, mouse, undo, drafts, focus, speed.

One Streamlit server runs ``tests/e2e/span_editor_harness.py`` for the module (headless,
on a free 127.0.0.1 port) and one Debian Chromium (Playwright, ``tests/e2e/chromium.py``)
opens a fresh context per test, so ``sessionStorage`` starts empty each time. The
harness appends each editor event to ``<events>/<run>.jsonl``; the tests read them back.
Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.chromium import CHROMIUM, CHROMIUM_ARGS, missing_chromium
from tests.e2e.span_editor_items import MARKUP_WORDS
from tests.e2e.streamlit_server import free_port, wait_until_healthy

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
HARNESS = REPO_ROOT / "tests" / "e2e" / "span_editor_harness.py"
EXPECT_TIMEOUT_MS = 60_000
LATENCY_BUDGET_MS = 100.0

pytestmark = pytest.mark.slow

# The editor's root lives in the component's (open) shadow root; Playwright's CSS
# locators pierce it, page scripts go through the host.
EDITOR_JS = (
    "document.querySelector('[data-testid^=stBidiComponent]')"
    "?.shadowRoot?.querySelector('.span-editor')"
)
IS_FOCUSED_JS = (
    f"() => {{ const e = {EDITOR_JS}; return !!e && e.getRootNode().activeElement === e; }}"
)

FIRST_SAVED = [
    ["O", "O", "B-Disease", "I-Disease", "O", "B-Disease", "I-Disease", "O", "O", "O", "O"],
    ["O", "B-Disease", "I-Disease", "O", "O", "O"],
]
FIRST_PREDICTED = [
    ["O", "O", "B-Disease", "I-Disease", "O", "O", "O", "O", "O", "B-Disease", "O"],
    ["B-Disease", "I-Disease", "I-Disease", "O", "O", "O"],
]


@pytest.fixture(autouse=True)
def patient_expectations() -> None:
    """Playwright's 5 s default fails on a loaded 2-core machine, not on a broken page."""
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)


@pytest.fixture(scope="module")
def events_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("span-editor-events")


@pytest.fixture(scope="module")
def server_url(events_dir: Path) -> Iterator[str]:
    missing = missing_chromium()
    if missing:
        pytest.skip(missing)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SPAN_EDITOR_EVENTS": str(events_dir)}
    log = events_dir / "streamlit.log"
    command = [sys.executable, "-m", "streamlit", "run", str(HARNESS)]
    command += ["--server.address=127.0.0.1", f"--server.port={port}"]
    command += ["--server.headless=true", "--server.fileWatcherType=none"]
    command += ["--browser.gatherUsageStats=false", "--global.developmentMode=false"]
    with log.open("wb") as output:
        server = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
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
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab (its own sessionStorage); any alert() or page error fails the test."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("dialog", lambda dialog: (problems.append(f"dialog {dialog.message}"), dialog.dismiss()))
    tab.on("pageerror", lambda error: problems.append(f"page error {error}"))
    try:
        yield tab
    finally:
        context.close()
    assert problems == []


def open_editor(page: Any, url: str, item_set: str, run: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{url}/?set={item_set}&run={run}", wait_until="domcontentloaded")
    expect(page.locator(".span-editor .w").first).to_be_visible()
    wait_for_focus(page)


def wait_for_focus(page: Any) -> None:
    page.wait_for_function(IS_FOCUSED_JS, timeout=EXPECT_TIMEOUT_MS)


def press(page: Any, *keys: str) -> None:
    for key in keys:
        page.keyboard.press(key)


def events(folder: Path, run: str, count: int, timeout_s: float = 60) -> list[dict[str, Any]]:
    """The first ``count`` events the harness recorded for ``run`` (waits for them)."""
    path = folder / f"{run}.jsonl"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()
            if len(lines) >= count:
                return [json.loads(line) for line in lines[:count]]
        time.sleep(0.1)
    recorded = path.read_text(encoding="utf-8") if path.exists() else "nothing"
    pytest.fail(f"expected {count} events for {run}, got: {recorded}")


def status(page: Any) -> Any:
    return page.locator(".span-editor .se-status")


def word(page: Any, index: int) -> Any:
    return page.locator(".span-editor .w").nth(index)


def centre(locator: Any) -> tuple[float, float]:
    box = locator.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def drag(page: Any, start: Any, end: Any) -> None:
    page.mouse.move(*centre(start))
    page.mouse.down()
    page.mouse.move(*centre(end), steps=6)
    page.mouse.up()


def test_keyboard_only_edit_then_save_skip_and_flag(
    page: Any, server_url: str, events_dir: Path
) -> None:
    from playwright.sync_api import expect

    open_editor(page, server_url, "basic", "keys")
    expect(status(page)).to_contain_text("3 spans · 1 low-confidence")
    expect(status(page)).to_contain_text("? for keys")
    press(page, *["ArrowRight"] * 5, "Shift+ArrowRight", "d")  # add the missed "acute seizures"
    expect(status(page)).to_contain_text("4 spans")
    press(page, *["ArrowRight"] * 4, "Backspace")  # remove the false "patients"
    expect(status(page)).to_contain_text("3 spans · 0 low-confidence")
    press(page, "ArrowDown", "]")  # "No liver hepatitis" starts one word later
    press(page, "}", "{")  # its end one word right, then back
    expect(word(page, 12)).to_have_class("w in own s0 cur")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "span-editor-keyboard.png"), full_page=True)
    press(page, "s")
    saved = events(events_dir, "keys", 1)[0]
    assert saved["action"] == "save"
    assert saved["item_key"] == "doc-1@v1"
    assert saved["labels"] == FIRST_SAVED
    assert saved["actions"] == 17  # 16 editing keys and S

    expect(page.get_by_text("Item 2 of 3")).to_be_visible()
    wait_for_focus(page)  # the next item has the focus: no click needed
    press(page, "k")
    skipped = events(events_dir, "keys", 2)[1]
    assert (skipped["action"], skipped["item_key"]) == ("skip", "doc-2@v1")

    expect(page.get_by_text("Item 3 of 3")).to_be_visible()
    wait_for_focus(page)
    press(page, "f")
    note = page.locator(".span-editor input.se-note")
    expect(note).to_be_focused()
    note.type("Unclear: is this a disease?")
    press(page, "Enter")
    flagged = events(events_dir, "keys", 3)[2]
    assert (flagged["action"], flagged["note"]) == ("flag", "Unclear: is this a disease?")
    expect(page.get_by_text("All items done")).to_be_visible()


def test_mouse_drag_shift_click_click_to_remove_and_edge_drag(
    page: Any, server_url: str, events_dir: Path
) -> None:
    from playwright.sync_api import expect

    open_editor(page, server_url, "basic", "mouse")
    word(page, 9).click()  # the false "patients" span goes
    expect(status(page)).to_contain_text("2 spans")
    drag(page, word(page, 5), word(page, 6))  # "acute seizures"
    expect(status(page)).to_contain_text("3 spans")
    word(page, 0).click()
    word(page, 1).click(modifiers=["Shift"])  # "Cocaine induced", first word then last
    expect(status(page)).to_contain_text("4 spans")
    handle = word(page, 11).locator(".hl")  # the start edge of "No liver hepatitis"
    expect(handle).to_be_visible()
    drag(page, handle, word(page, 12))
    expect(word(page, 11)).to_have_class("w")
    page.screenshot(path=str(ARTIFACTS / "span-editor-mouse.png"), full_page=True)
    press(page, "s")
    saved = events(events_dir, "mouse", 1)[0]
    expected = [["B-Disease", "I-Disease", *FIRST_SAVED[0][2:]], FIRST_SAVED[1]]
    assert saved["labels"] == expected
    assert saved["actions"] == 6  # five gestures and S


def test_undo_redo_many_steps_and_accept(page: Any, server_url: str, events_dir: Path) -> None:
    from playwright.sync_api import expect

    open_editor(page, server_url, "basic", "undo")
    press(page, *["ArrowRight"] * 5, "d")
    expect(status(page)).to_contain_text("4 spans")
    press(page, "Control+z")
    expect(status(page)).to_contain_text("3 spans")
    press(page, "Control+Shift+z")
    expect(status(page)).to_contain_text("4 spans")
    press(page, "Control+z", "Control+y")
    expect(status(page)).to_contain_text("4 spans")
    press(page, "Backspace", *["ArrowRight"] * 4, "Delete", "Home", "Delete")
    expect(status(page)).to_contain_text("2 spans")  # "acute", "patients" gone; nothing at 0
    press(page, "Control+z", "Control+z")
    expect(status(page)).to_contain_text("4 spans")
    press(page, "Control+z", "Control+z")  # back past the marking: the prediction
    expect(status(page)).to_contain_text("3 spans")
    press(page, "Control+z")  # nothing left to undo: no change
    expect(status(page)).to_contain_text("3 spans")
    press(page, "Control+Shift+z")
    expect(status(page)).to_contain_text("4 spans")
    press(page, "a")  # edited: accepting asks first
    prompt = page.locator(".span-editor .se-prompt")
    expect(prompt).to_contain_text("Press A again to accept")
    press(page, "a")
    accepted = events(events_dir, "undo", 1)[0]
    assert accepted["action"] == "accept"
    assert accepted["labels"] == FIRST_PREDICTED


def test_the_key_overlay_lists_every_key(page: Any, server_url: str) -> None:
    from playwright.sync_api import expect

    open_editor(page, server_url, "basic", "help")
    overlay = page.locator(".span-editor .se-help")
    expect(overlay).to_be_hidden()
    press(page, "?")
    expect(overlay).to_be_visible()
    for keys in (
        "D or Enter",
        "[ / ]",
        "{ / }",
        "Tab / Shift + Tab",
        "Ctrl + Z",
        "S or Ctrl + Enter",
    ):
        expect(overlay).to_contain_text(keys)
    page.screenshot(path=str(ARTIFACTS / "span-editor-keys.png"), full_page=True)
    press(page, "Escape")
    expect(overlay).to_be_hidden()
    press(page, "?", "?")
    expect(overlay).to_be_hidden()


def test_tab_visits_low_confidence_spans(page: Any, server_url: str) -> None:
    from playwright.sync_api import expect

    open_editor(page, server_url, "basic", "tab")
    press(page, "Tab")
    expect(word(page, 9)).to_have_class("w in low s0 s1 cur")  # "patients", 0.41
    press(page, "Tab")  # the only one: wraps to itself
    expect(word(page, 9)).to_have_class("w in low s0 s1 cur")
    wait_for_focus(page)
    assert word(page, 9).get_attribute("data-badge") == "Disease 0.41"
    assert "confidence 0.41" in (word(page, 9).get_attribute("title") or "")


def test_mark_every_occurrence(page: Any, server_url: str, events_dir: Path) -> None:
    from playwright.sync_api import expect

    open_editor(page, server_url, "repeated", "everywhere")
    press(page, "ArrowRight", "ArrowRight", "Shift+ArrowRight", "Enter")
    prompt = page.locator(".span-editor .se-prompt")
    expect(prompt).to_have_text(
        "Also mark 1 more here and in the collection's unreviewed items? (Y / N)"
    )
    page.screenshot(path=str(ARTIFACTS / "span-editor-everywhere.png"), full_page=True)
    press(page, "y")
    expect(status(page)).to_contain_text("2 spans")
    expect(status(page)).to_contain_text("1 sequence to mark everywhere")
    press(page, "s")
    saved = events(events_dir, "everywhere", 1)[0]
    assert saved["mark_everywhere"] == [["renal", "failure"]]
    assert saved["labels"] == [
        ["O", "O", "B-Disease", "I-Disease", "O"],
        ["O", "B-Disease", "I-Disease", "O", "O"],
    ]


def test_a_draft_survives_a_rerun_a_remount_and_a_reload(
    page: Any, server_url: str, events_dir: Path
) -> None:
    from playwright.sync_api import expect

    open_editor(page, server_url, "basic", "draft")
    press(page, *["ArrowRight"] * 5, "Shift+ArrowRight", "d")
    expect(status(page)).to_contain_text("4 spans")
    other = page.get_by_role("textbox", name="Other widget")
    other.fill("something else")
    other.press("Enter")  # the page reruns for another reason
    expect(page.get_by_text("Reruns: 2")).to_be_visible()
    expect(status(page)).to_contain_text("4 spans")
    hide = page.get_by_text("Hide editor")
    hide.click()  # the editor unmounts ...
    expect(page.locator(".span-editor")).to_have_count(0)
    hide.click()  # ... and mounts again: the draft comes back from sessionStorage
    expect(status(page)).to_contain_text("4 spans")
    page.reload(wait_until="domcontentloaded")  # a new Streamlit session, the same tab
    expect(status(page)).to_contain_text("4 spans")
    wait_for_focus(page)
    press(page, "Control+z")  # the undo history came back too
    expect(status(page)).to_contain_text("3 spans")
    press(page, "Control+y", "s")
    saved = events(events_dir, "draft", 1)[0]
    assert saved["labels"][0][5:7] == ["B-Disease", "I-Disease"]
    expect(page.get_by_text("Item 2 of 3")).to_be_visible()
    # saved, then the next item mounted: the saved item's draft is gone
    page.wait_for_function(
        "() => !Object.keys(sessionStorage).some((name) => name.includes('doc-1@v1'))"
    )


def test_words_that_look_like_html_stay_text(page: Any, server_url: str) -> None:
    from playwright.sync_api import expect

    open_editor(page, server_url, "markup", "markup")
    words = page.locator(".span-editor .w")
    expect(words).to_have_count(len(MARKUP_WORDS))
    assert words.all_text_contents() == list(MARKUP_WORDS)
    markup_elements = page.evaluate(
        f"() => {EDITOR_JS}.querySelectorAll('.se-text b, .se-text script, .se-text img').length"
    )
    assert markup_elements == 0
    page.screenshot(path=str(ARTIFACTS / "span-editor-markup.png"), full_page=True)
    # the page fixture fails the test on any alert() dialog


def test_single_sentence_mode(page: Any, server_url: str, events_dir: Path) -> None:
    from playwright.sync_api import expect

    open_editor(page, server_url, "single", "single")
    expect(page.locator(".span-editor .se-single")).to_be_visible()
    press(page, "ArrowRight", "ArrowRight", "Delete", "Control+Enter")
    saved = events(events_dir, "single", 1)[0]
    assert saved["labels"] == [["O", "O", "O", "O", "O"]]
    expect(page.get_by_text("Item 2 of 2")).to_be_visible()
    wait_for_focus(page)


LATENCY_PROBE = """() => {
    window.__latencies = [];
    document.addEventListener("keydown", (event) => {
        if (["Shift", "Control", "Alt", "Meta"].includes(event.key)) return;  // not a command
        const pressed = performance.now();
        // the frame after the handler ran, then the task after its paint
        requestAnimationFrame(() => setTimeout(() => {
            window.__latencies.push(performance.now() - pressed);
        }, 0));
    }, true);
}"""


def test_key_to_paint_latency_on_a_300_word_abstract(page: Any, server_url: str) -> None:
    from playwright.sync_api import expect

    open_editor(page, server_url, "long", "latency")
    expect(page.locator(".span-editor .w")).to_have_count(300)
    page.evaluate(LATENCY_PROBE)
    keys = ["ArrowRight", "Shift+ArrowRight", "d", "Backspace", "]", "}", "Control+z", "Tab"]
    presses = [keys[i % len(keys)] for i in range(24)]
    for count, key in enumerate(presses, start=1):
        press(page, key)
        page.wait_for_function(f"() => window.__latencies.length >= {count}")
    latencies = page.evaluate("() => window.__latencies")
    median = statistics.median(latencies)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "span-editor-latency.json").write_text(
        json.dumps({"median_ms": median, "max_ms": max(latencies), "samples_ms": latencies})
    )
    page.screenshot(path=str(ARTIFACTS / "span-editor-300-words.png"), full_page=True)
    assert median < LATENCY_BUDGET_MS, latencies
