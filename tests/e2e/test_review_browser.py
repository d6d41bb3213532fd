"""The Review flow of the whole app in a real browser: import, review by keys and by mouse,
resume after a restart, words that look like HTML.

One ``streamlit run streamlit_app.py`` (headless, a free 127.0.0.1 port, its data,
registry and model folders in a temporary folder, ``TAGGER_START_WORKER=0``) and one
Debian Chromium (Playwright, ``tests/e2e/chromium.py``) serve the module. The tests run
in file order on one review session, as a curator's day does:

1. the collection is imported through the Collections page (a JSONL file given to the
   uploader), tagged here as the worker would (``serve_version`` and a stand-in tagger on
   the app's database), and the Review page opened after the Annotator is set;
2. the most doubtful item is corrected with the keyboard only and saved with ``S``;
3. the next one with the mouse only (drag, click, edge handle), then saved;
4. the third shows words such as ``<script>alert(1)</script>`` as text, and no script runs;
5. the server is killed and started again on the same folders; the same curator gets the
   same item back, although a more doubtful item arrived meanwhile.

The stand-in tagger splits words at white space and ``.`` (``tag_everything``'s splits
``<script>`` into ``<``, ``script``, ``>``), so one word is a whole HTML-looking payload,
as a BIO import or another tokenizer can deliver it. Every dialog (``alert``) or page
error fails the module. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from curation.collections import CollectionStore, DocumentToTag, PredictedSentence
from curation.corrections import CorrectionsStore
from curation.database import Database
from tests.collection_helpers import DISEASE_WORDS, jsonl, serve_version
from tests.e2e.chromium import CHROMIUM, CHROMIUM_ARGS, missing_chromium
from tests.e2e.test_browser import wait_until_healthy
from tests.e2e.test_span_editor_browser import EDITOR_JS, IS_FOCUSED_JS, drag, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
EXPECT_TIMEOUT_MS = 60_000  # an upper bound per wait: a loaded 2-core machine is slow
COLLECTION = "review-e2e"
VERSION = "v-review-e2e"
ANNOTATOR = "browser curator"

pytestmark = pytest.mark.slow

MARKUP_TITLE = 'Markup & "quotes" in a <b>title</b> with *stars* and $5 to $10'
MARKUP_TEXT = (
    'Tom & Jerry\'s "fever" <b>bold</b> <script>alert(1)</script> <img/src/onerror=__xss=1> '
    "&amp; &lt;i&gt; a<b&c>d were 'typed'. Renal failure was seen."
)
RECORDS = [
    # k1, corrected by keys. Sentence 0: Fever clinic notes Acute hepatitis and
    # cardiomyopathy were seen . / sentence 1: Renal failure followed .
    {
        "id": "k1",
        "title": "Fever clinic notes",
        "text": "Acute hepatitis and cardiomyopathy were seen. Renal failure followed.",
    },
    # m1, corrected by mouse. Seizures in children Febrile seizures and kidney stones
    # were noted . / A renal biopsy was normal . / Chronic hepatitis was excluded .
    {
        "id": "m1",
        "title": "Seizures in children",
        "text": "Febrile seizures and kidney stones were noted. A renal biopsy was normal. "
        "Chronic hepatitis was excluded.",
    },
    {"id": "x1", "title": MARKUP_TITLE, "text": MARKUP_TEXT},
    {"id": "q1", "title": "A quiet case", "text": "Nothing was found. The patient went home."},
]
# The model's confidence in each word of a document (by title): k1 is the most doubtful.
CONFIDENCE = {
    "Fever clinic notes": 0.4,
    "Seizures in children": 0.7,
    MARKUP_TITLE: 0.8,
    "A quiet case": 0.99,
    "Arrived during the restart": 0.1,
}
LATE_RECORD = {
    "id": "n1",
    "title": "Arrived during the restart",
    "text": "Hepatitis and fever and seizures were seen in many patients of the ward.",
}

KEYBOARD_LABELS = [
    ["O", "O", "O", "B-Disease", "I-Disease", "O", "B-Disease", "O", "O", "O"],
    ["B-Disease", "I-Disease", "O", "O"],
]
MOUSE_LABELS = [
    ["B-Disease", "O", "O", "O", "B-Disease", "O", "B-Disease", "I-Disease", "O", "O", "O"],
    ["O"] * 6,
    ["B-Disease", "I-Disease", "O", "O", "O"],
]
MARKUP_WORDS = [
    *("Markup", "&", '"quotes"', "in", "a", "<b>title</b>", "with", "*stars*", "and"),
    *("$5", "to", "$10"),
    *("Tom", "&", "Jerry's", '"fever"', "<b>bold</b>", "<script>alert(1)</script>"),
    *("<img/src/onerror=__xss=1>", "&amp;", "&lt;i&gt;", "a<b&c>d", "were", "'typed'", "."),
    *("Renal", "failure", "was", "seen", "."),
]
# A page script that found its way into the DOM would set this or open a dialog.
XSS_PROBE = "window.__xss = 0;"


@pytest.fixture(autouse=True)
def patient_expectations() -> None:
    """Playwright's 5 s default fails on a loaded 2-core machine, not on a broken page."""
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)


# ---- the stand-in tagger ---------------------------------------------------------------


def whitespace_sentences(
    document: DocumentToTag, confidence: Callable[[DocumentToTag], float]
) -> list[PredictedSentence]:
    """Words are runs of anything but white space and ``.``; a sentence ends at ``.``;
    the words of ``DISEASE_WORDS`` are B-Disease. The title runs into the first sentence."""
    text = f"{document.title}\n\n{document.text}" if document.title else str(document.text)
    score = confidence(document)
    sentences: list[PredictedSentence] = []
    words: list[str] = []
    offsets: list[tuple[int, int]] = []

    def close() -> None:
        labels = tuple("B-Disease" if w.lower() in DISEASE_WORDS else "O" for w in words)
        sentences.append(
            PredictedSentence(tuple(words), tuple(offsets), labels, tuple(score for _ in words))
        )

    for match in re.finditer(r"[^\s.]+|\.", text):
        words.append(match.group())
        offsets.append((match.start(), match.end()))
        if match.group() == ".":
            close()
            words, offsets = [], []
    if words:
        close()
    return sentences


def tag_collection(data_dir: Path) -> int:
    """Tag every pending document with the version in service, as the worker would."""
    store = CollectionStore(Database.open(None, data_dir=data_dir))
    stored = 0
    while batch := store.documents_to_tag(VERSION, 100):
        done = store.store_tags_many(
            VERSION,
            [
                (doc.id, whitespace_sentences(doc, lambda d: CONFIDENCE[str(d.title)]))
                for doc in batch
            ],
        )
        if done == 0:
            break
        stored += done
    return stored


def saved_labels(data_dir: Path, external_id: str, sentences: int) -> list[list[str]]:
    """The current corrections of one item, sentence by sentence (waits for the save)."""
    source = f"collection:{COLLECTION}/{external_id}"
    deadline = time.monotonic() + EXPECT_TIMEOUT_MS / 1000
    while True:
        store = CorrectionsStore.open(data_dir=data_dir)
        rows = [c for c in store.corrections() if c.source == source]
        if len(rows) >= sentences or time.monotonic() > deadline:
            by_index = {c.sentence_index: list(c.labels) for c in rows}
            return [by_index[i] for i in sorted(by_index)]
        time.sleep(0.2)


# ---- the app server and the browser ----------------------------------------------------


@dataclass
class AppServer:
    """``streamlit run streamlit_app.py`` on isolated folders; start / kill / start again."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    def start(self) -> None:
        self.starts += 1
        env = {
            **os.environ,
            "TAGGER_MODEL_DIR": str(self.folder / "no-model"),  # none: tagging is done here
            "TAGGER_DATA_DIR": str(self.data_dir),
            "TAGGER_REGISTRY_DIR": str(self.folder / "models"),
            "TAGGER_START_WORKER": "0",  # no training worker, no collection tagging
            "TAGGER_DB_URL": "",
            "PYTHONPATH": str(REPO_ROOT),
        }
        command = [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "streamlit_app.py")]
        command += ["--server.headless=true", "--server.address=127.0.0.1"]
        command += [f"--server.port={self.port}", "--server.fileWatcherType=none"]
        command += ["--browser.gatherUsageStats=false", "--global.developmentMode=false"]
        log = self.folder / f"streamlit-{self.starts}.log"
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
            )
        wait_until_healthy(self.url, self.process, log)

    def stop(self, *, kill: bool = False) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Review:
    """What the module's tests share: the server, the open tab, what went wrong."""

    server: AppServer
    browser: Any
    context: Any = None
    page: Any = None
    problems: list[str] = field(default_factory=list)

    def open_tab(self) -> Any:
        if self.context is not None:
            self.context.close()
        self.context = self.browser.new_context(viewport={"width": 1300, "height": 950})
        self.context.add_init_script(XSS_PROBE)
        tab = self.context.new_page()
        tab.on("dialog", lambda d: (self.problems.append(f"dialog: {d.message}"), d.dismiss()))
        tab.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page = tab
        return tab


@pytest.fixture(scope="module")
def review(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Review]:
    missing = missing_chromium()
    if missing:
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    server = AppServer(tmp_path_factory.mktemp("review-e2e"))
    server.start()
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            shared = Review(server, chromium)
            try:
                yield shared
            finally:
                chromium.close()
            assert shared.problems == []  # no alert(), no script error, all module long
    finally:
        server.stop()


# ---- page helpers ----------------------------------------------------------------------


def set_annotator(page: Any, name: str) -> None:
    box = page.get_by_role("textbox", name="Annotator")
    box.fill(name)
    box.press("Enter")


def item_caption(page: Any) -> Any:
    return page.get_by_test_id("stCaptionContainer").filter(has_text="tagged by model")


def expect_item(page: Any, external_id: str, first_word: str) -> None:
    """The Review page shows ``external_id`` in the editor, and the editor has the focus."""
    from playwright.sync_api import expect

    expect(item_caption(page)).to_contain_text(f"{COLLECTION} · {external_id} · ")
    expect(word(page, 0)).to_have_text(first_word)
    page.wait_for_function(IS_FOCUSED_JS, timeout=EXPECT_TIMEOUT_MS)


def alert(page: Any, text: str) -> Any:
    """A message on the page itself (the sidebar has its own)."""
    main = page.get_by_test_id("stMainBlockContainer")
    return main.get_by_test_id("stAlertContainer").filter(has_text=text)


def word(page: Any, index: int) -> Any:
    return page.locator(".span-editor .w").nth(index)


def status(page: Any) -> Any:
    return page.locator(".span-editor .se-status")


def press(page: Any, *keys: str) -> None:
    for key in keys:
        page.keyboard.press(key)


# ---- the tests, in order ---------------------------------------------------------------


def test_import_on_the_collections_page_then_open_the_review_page(review: Review) -> None:
    from playwright.sync_api import expect

    page = review.open_tab()
    page.goto(f"{review.server.url}/collections", wait_until="domcontentloaded")
    expect(page.get_by_text("No collection yet")).to_be_visible()
    name = page.get_by_role("textbox", name="Collection")
    name.fill(COLLECTION)
    name.press("Enter")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
        {"name": "export.jsonl", "mimeType": "application/jsonl", "buffer": jsonl(RECORDS)}
    )
    expect(page.get_by_role("button", name="Remove export.jsonl")).to_be_visible()  # uploaded
    page.get_by_role("button", name="Import").click()
    expect(alert(page, f"4 documents imported into {COLLECTION}")).to_be_visible()
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()

    serve_version(Database.open(None, data_dir=review.server.data_dir), VERSION)
    assert tag_collection(review.server.data_dir) == 4

    set_annotator(page, ANNOTATOR)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Review").click()
    expect_item(page, "k1", "Fever")
    expect(page.get_by_role("heading", name="Fever clinic notes")).to_be_visible()
    expect(item_caption(page)).to_contain_text(f"tagged by model {VERSION}")
    expect(item_caption(page)).to_contain_text("expected word errors")
    expect(page.get_by_test_id("stProgress")).to_contain_text("0 of 4 reviewed")
    expect(status(page)).to_contain_text("4 spans · 4 low-confidence")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-page.png"), full_page=True)


def test_the_first_item_corrected_with_the_keyboard_only(review: Review) -> None:
    from playwright.sync_api import expect

    page = review.page
    expect_item(page, "k1", "Fever")
    press(page, "Backspace")  # the false "Fever" (of "Fever clinic") goes
    expect(status(page)).to_contain_text("3 spans")
    press(page, *["ArrowRight"] * 4, "[")  # "hepatitis" starts at "Acute"
    expect(word(page, 3)).to_have_class(re.compile(r"\bs0\b"))
    press(page, "ArrowRight", "ArrowRight", "d")  # the missed "cardiomyopathy"
    expect(status(page)).to_contain_text("4 spans")
    press(page, "ArrowDown", "ArrowRight", "Backspace", "ArrowLeft", "}")  # "Renal failure"
    expect(status(page)).to_contain_text("3 spans")
    expect(word(page, 11)).to_have_class(re.compile(r"\bs1\b"))
    press(page, "s")

    expect_item(page, "m1", "Seizures")  # the next item, the focus in the editor
    expect(alert(page, "Saved your labels for “Fever clinic notes”")).to_be_visible()
    expect(page.get_by_test_id("stProgress")).to_contain_text("1 of 4 reviewed")
    assert saved_labels(review.server.data_dir, "k1", 2) == KEYBOARD_LABELS


def test_the_next_item_corrected_with_the_mouse(review: Review) -> None:
    from playwright.sync_api import expect

    page = review.page
    expect_item(page, "m1", "Seizures")
    expect(status(page)).to_contain_text("4 spans")
    drag(page, word(page, 6), word(page, 7))  # the missed "kidney stones"
    expect(status(page)).to_contain_text("5 spans")
    word(page, 12).click()  # the false "renal" (of "renal biopsy") goes
    expect(status(page)).to_contain_text("4 spans")
    handle = word(page, 18).locator(".hl")  # the start edge of "hepatitis" ...
    expect(handle).to_be_visible()
    drag(page, handle, word(page, 17))  # ... to "Chronic"
    expect(word(page, 17)).to_have_class(re.compile(r"\bs0\b"))
    expect(word(page, 18)).not_to_have_class(re.compile(r"\bs0\b"))
    press(page, "s")

    expect_item(page, "x1", "Markup")
    expect(page.get_by_test_id("stProgress")).to_contain_text("2 of 4 reviewed")
    assert saved_labels(review.server.data_dir, "m1", 3) == MOUSE_LABELS
    assert saved_labels(review.server.data_dir, "k1", 2) == KEYBOARD_LABELS  # untouched


def assert_markup_is_text(page: Any) -> None:
    from playwright.sync_api import expect

    words = page.locator(".span-editor .w")
    expect(words).to_have_count(len(MARKUP_WORDS))
    assert words.all_text_contents() == MARKUP_WORDS  # textContent: literal, nothing parsed
    elements = page.evaluate(
        f"() => {EDITOR_JS}.querySelectorAll('.se-text *:not(span):not(p)').length"
    )
    assert elements == 0  # no <b>, <script>, <img> made it into the DOM
    assert page.evaluate("() => window.__xss") == 0  # the onerror payload never ran


def test_words_that_look_like_html_are_shown_as_text(review: Review) -> None:
    from playwright.sync_api import expect

    page = review.page
    expect_item(page, "x1", "Markup")
    assert_markup_is_text(page)
    heading = page.get_by_role("heading", level=3).filter(has_text="Markup")
    expect(heading).to_have_text(MARKUP_TITLE)
    assert page.locator("h3 b, h3 script").count() == 0
    page.screenshot(path=str(ARTIFACTS / "review-page-markup.png"), full_page=True)


def test_a_restarted_app_resumes_at_the_same_item(review: Review) -> None:
    from playwright.sync_api import expect

    review.context.close()
    review.context = None
    review.server.stop(kill=True)  # mid-review: x1 is open, claimed by the curator
    # Meanwhile a more doubtful item arrives: without the claim it would come first.
    store = CollectionStore(Database.open(None, data_dir=review.server.data_dir))
    report = store.import_files(
        COLLECTION, [("late.jsonl", jsonl([LATE_RECORD]))], imported_by="test"
    )
    assert report.added == 1 and not report.problems
    assert tag_collection(review.server.data_dir) == 1
    review.server.start()

    page = review.open_tab()  # a new browser session: nothing remembered in the browser
    page.goto(f"{review.server.url}/review", wait_until="domcontentloaded")
    expect(page.get_by_text("Enter your name as Annotator")).to_be_visible()
    set_annotator(page, ANNOTATOR)
    expect_item(page, "x1", "Markup")  # the claim in the database, not the doubt, decides
    assert_markup_is_text(page)
    press(page, "k")  # skipped: now the late, most doubtful item
    expect_item(page, "n1", "Arrived")
    expect(page.get_by_test_id("stProgress")).to_contain_text("2 of 5 reviewed · 1 skipped")
    assert saved_labels(review.server.data_dir, "k1", 2) == KEYBOARD_LABELS  # nothing lost
    assert saved_labels(review.server.data_dir, "m1", 3) == MOUSE_LABELS
