"""Replay the actions benchmark's span-editor plans in the real editor, in Chromium.

:func:`replay_plans` takes the plans of :mod:`benchmarks.actions_per_correction`
(``editor_keyboard`` and ``editor_mouse``, each ``{"actions", "steps", "labels"}``),
picks a fixed sample of them (every k-th plan), and plays each plan's steps, key by key
and gesture by gesture, in the span editor of ``tests/e2e/span_editor_harness.py``
(its ``replay`` set: one sentence per item, the model's labels as the prediction) in
headless Debian Chromium through Playwright. A plan *matches* when the labels the editor
sent on save are the plan's gold labels and both the editor's own action count and the
number of key presses / mouse gestures played equal the plan's action count.

Mouse steps: ``click span A-B`` clicks a word of the span ``[A, B)``; ``click word A``
and ``shift-click word A`` click word ``A`` (with Shift held); ``drag start P->G``
drags the left edge handle of the span starting at word ``P`` onto word ``G``;
``drag end P->G`` drags the right edge handle of the span ending before word ``P`` onto
word ``G - 1``; ``drag A-B`` presses on word ``A`` and releases on word ``B - 1``; ``S``
is the save key. Presses land where the editor's hit test finds the intended element
(a word's body, not its edge handle; or the handle itself).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.e2e.chromium import CHROMIUM, CHROMIUM_ARGS, missing_chromium
from tests.e2e.streamlit_server import free_port, wait_until_healthy

REPO_ROOT = Path(__file__).resolve().parents[1]
HARNESS = REPO_ROOT / "tests" / "e2e" / "span_editor_harness.py"
STARTUP_TIMEOUT_S = 240  # a loaded 2-core machine starts Streamlit slowly
ITEM_TIMEOUT_MS = 90_000
EVENT_TIMEOUT_S = 90.0
MODES = (("keyboard", "editor_keyboard"), ("mouse", "editor_mouse"))
MISMATCH_EXAMPLES = 5
PREDICTED_SCORE, OTHER_SCORE = 0.9, 0.99

# The editor's root is in the component's open shadow root (tests/e2e/test_span_editor_browser.py).
EDITOR_JS = (
    "document.querySelector('[data-testid^=stBidiComponent]')"
    "?.shadowRoot?.querySelector('.span-editor')"
)
# The item is on screen: its words, no "Saving…" left from the last one, the focus.
READY_JS = f"""(words) => {{
    const root = {EDITOR_JS};
    if (!root) return false;
    const shown = [...root.querySelectorAll('.se-text .w')].map((w) => w.textContent);
    const prompt = root.querySelector('.se-prompt');
    return JSON.stringify(shown) === JSON.stringify(words) && !prompt.classList.contains('sent')
        && root.getRootNode().activeElement === root;
}}"""
# A point over word i where the editor's own hit test (elementFromPoint in the shadow
# root) finds `part`: "body" (the word, not an edge handle), "hl"/"hr" (that handle),
# "any" (anything inside the word).
POINT_JS = f"""([index, part]) => {{
    const root = {EDITOR_JS};
    const host = root.getRootNode();
    const word = root.querySelectorAll('.se-text .w')[index];
    if (!word) return null;
    const target = part === 'hl' || part === 'hr' ? word.querySelector('.' + part) : word;
    const box = target.getBoundingClientRect();
    if (box.width === 0) return null;
    const y = box.top + box.height / 2;
    const centre = box.left + box.width / 2;
    for (let d = 0; d <= box.width / 2; d += 0.5) {{
        for (const x of [centre - d, centre + d]) {{
            const hit = host.elementFromPoint(x, y);
            if (!hit) continue;
            if (part === 'any' ? hit.closest('.w') === word : hit === target) return {{ x, y }};
        }}
    }}
    return null;
}}"""


def sample(count: int, total: int) -> list[int]:
    """Every k-th plan index, k = total // count: a fixed, spread-out sample."""
    if count <= 0 or total == 0:
        return []
    step = max(1, total // count)
    return list(range(0, total, step))[:count]


def scores_for(plan: dict[str, Any]) -> list[float]:
    if "scores" in plan:
        return [float(score) for score in plan["scores"]]
    return [OTHER_SCORE if label == "O" else PREDICTED_SCORE for label in plan["predicted"]]


@contextmanager
def harness_server(items_file: Path, events_dir: Path) -> Iterator[str]:
    """The span editor harness on a free 127.0.0.1 port, serving the ``replay`` set."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "SPAN_EDITOR_EVENTS": str(events_dir),
        "SPAN_EDITOR_REPLAY": str(items_file),
    }
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
        wait_until_healthy(url, server, log, STARTUP_TIMEOUT_S)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wait_for_event(path: Path, position: int) -> dict[str, Any]:
    """The event the harness recorded for the item at ``position`` (0-based)."""
    deadline = time.monotonic() + EVENT_TIMEOUT_S
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()
            if len(lines) > position:
                return dict(json.loads(lines[position]))
        time.sleep(0.05)
    raise TimeoutError(f"no event for item {position + 1} within {EVENT_TIMEOUT_S} s")


STATE_JS = f"""() => {{
    const root = {EDITOR_JS};
    if (!root) return document.body.innerText.slice(0, 500);
    return JSON.stringify({{
        words: [...root.querySelectorAll('.se-text .w')].map((w) => w.textContent),
        prompt: root.querySelector('.se-prompt').className,
        focused: root.getRootNode().activeElement === root,
    }});
}}"""


def wait_until_shown(page: Any, item: dict[str, Any], position: int) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(READY_JS, arg=item["words"], timeout=ITEM_TIMEOUT_MS)
    except PlaywrightTimeout:
        shown = page.evaluate(STATE_JS)
        raise TimeoutError(
            f"item {position + 1} ({item['key']}) not shown; the page: {shown}"
        ) from None


class Player:
    """Plays plan steps on the open editor page; counts the presses and gestures."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.operations = 0

    def point(self, index: int, part: str) -> tuple[float, float]:
        found = self.page.evaluate(POINT_JS, [index, part])
        if not found:
            raise LookupError(f"no point on word {index} hits its {part}")
        return float(found["x"]), float(found["y"])

    def key(self, name: str) -> None:
        self.page.keyboard.press(name)
        self.operations += 1

    def click(self, index: int, shift: bool = False) -> None:
        x, y = self.point(index, "body")
        if shift:
            self.page.keyboard.down("Shift")
        self.page.mouse.click(x, y)
        if shift:
            self.page.keyboard.up("Shift")
        self.operations += 1

    def drag(self, press: tuple[float, float], release: tuple[float, float]) -> None:
        mouse = self.page.mouse
        mouse.move(*press)
        mouse.down()
        mouse.move(*release, steps=6)
        mouse.up()
        self.operations += 1

    def gesture(self, step: str, words: Sequence[str]) -> None:
        parts = step.split()
        if step == "S":
            self.key("s")
        elif parts[:2] == ["click", "span"]:
            start, end = (int(x) for x in parts[2].split("-"))
            widest = max(range(start, end), key=lambda i: (len(words[i]), -i))
            self.click(widest)
        elif parts[0] in ("click", "shift-click"):
            self.click(int(parts[2]), shift=parts[0] == "shift-click")
        elif parts[:2] == ["drag", "start"]:
            old, new = (int(x) for x in parts[2].split("->"))
            self.drag(self.point(old, "hl"), self.point(new, "any"))
        elif parts[:2] == ["drag", "end"]:
            old, new = (int(x) for x in parts[2].split("->"))
            self.drag(self.point(old - 1, "hr"), self.point(new - 1, "any"))
        elif parts[0] == "drag":
            start, end = (int(x) for x in parts[1].split("-"))
            self.drag(self.point(start, "body"), self.point(end - 1, "any"))
        else:
            raise ValueError(f"no such mouse step: {step!r}")


def replay_plans(plans: Sequence[dict[str, Any]], count: int) -> dict[str, Any]:
    """Replay ``count`` keyboard and ``count`` mouse plans (every k-th) in the real editor.

    Returns ``{"keyboard": {"replayed", "matched"}, "mouse": {...}, "sample": {...},
    "mismatches": [a few examples]}``.
    """
    missing = missing_chromium()
    if missing:
        raise RuntimeError(missing)
    chosen = sample(count, len(plans))
    jobs = [(mode, field, index) for mode, field in MODES for index in chosen]
    items = [
        {
            "key": f"{mode}-{index}",
            "words": list(plans[index]["words"]),
            "labels": list(plans[index]["predicted"]),
            "scores": scores_for(plans[index]),
        }
        for mode, _, index in jobs
    ]
    result: dict[str, Any] = {mode: {"replayed": 0, "matched": 0} for mode, _ in MODES}
    result["sample"] = {"plans": len(plans), "every": max(1, len(plans) // max(count, 1))}
    mismatches: list[dict[str, Any]] = []
    if not jobs:
        return result | {"mismatches": mismatches}
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="editor-replay-") as folder:
        work = Path(folder)
        items_file = work / "items.json"
        items_file.write_text(json.dumps(items), encoding="utf-8")
        events_file = work / "replay.jsonl"
        with harness_server(items_file, work) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                context = browser.new_context(viewport={"width": 1280, "height": 2400})
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.goto(f"{url}/?set=replay&run=replay", wait_until="domcontentloaded")
                for position, ((mode, field, index), item) in enumerate(
                    zip(jobs, items, strict=True)
                ):
                    plan = plans[index]
                    steps = list(plan[field]["steps"])
                    wait_until_shown(page, item, position)
                    player = Player(page)
                    problem = ""
                    try:
                        for step in steps:
                            if mode == "keyboard":
                                player.key(step)
                            else:
                                player.gesture(step, item["words"])
                    except Exception as error:  # any failure is this plan's mismatch
                        problem = f"{type(error).__name__}: {error}"
                        if player.operations < len(steps):  # not saved: skip, move on
                            page.keyboard.press("Escape")
                            page.keyboard.press("k")
                    event = wait_for_event(events_file, position)
                    saved = [list(row) for row in event["labels"]]
                    matched = (
                        not problem
                        and event["item_key"] == item["key"]
                        and event["action"] == "save"
                        and saved == [list(plan["gold"])]
                        and event["actions"] == plan[field]["actions"] == player.operations
                    )
                    result[mode]["replayed"] += 1
                    result[mode]["matched"] += int(matched)
                    if not matched and len(mismatches) < MISMATCH_EXAMPLES:
                        mismatches.append(
                            {
                                "mode": mode,
                                "plan": index,
                                "steps": steps,
                                "predicted": list(plan["predicted"]),
                                "gold": list(plan["gold"]),
                                "saved": saved,
                                "planned_actions": plan[field]["actions"],
                                "editor_actions": event["actions"],
                                "played": player.operations,
                                "problem": problem,
                            }
                        )
                if errors:
                    result["page_errors"] = errors[:MISMATCH_EXAMPLES]
                context.close()
            finally:
                browser.close()
    return result | {"mismatches": mismatches}
