"""AppTest: the Correct page edits one sentence in the span editor, saves it, moves on.

The editor itself runs in the browser (tests/e2e/test_span_editor_browser.py); here a
:class:`~tests.app_fakes.ScriptedEditor` stands in for it and plays the events a
curator's keys would send, so the page's side is tested: what it mounts, what it
saves, where it goes next, and that a failed save keeps the sentence in the editor.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Button

from curation.corrections import CorrectionFilter, CorrectionsStore
from tests.app_fakes import ScriptedEditor, make_app, shown
from tests.test_app_inspect import FILE, upload

FIRST_WORDS = ("Chronic", "renal", "failure", "and", "fever", ".")
FIRST_PREDICTED = ("O", "O", "B-Disease", "O", "B-Disease", "O")
FIRST_FILE_LABELS = ("B-Disease", "I-Disease", "I-Disease", "O", "B-Disease", "O")
WIDENED = FIRST_FILE_LABELS  # the curator widens "failure" to "Chronic renal failure"


@pytest.fixture
def editor(monkeypatch: pytest.MonkeyPatch) -> ScriptedEditor:
    scripted = ScriptedEditor()
    monkeypatch.setattr("app.span_editor.span_editor", scripted)
    return scripted


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, editor: ScriptedEditor) -> AppTest:
    """The Correct page on the first sentence of FILE, sent from the Inspect page."""
    app = make_app(tmp_path, monkeypatch).run()
    app.switch_page("app/page_inspect.py").run()
    upload(app, "fixture.tsv", FILE)
    return send_to_correct(app).run()


def send_to_correct(app: AppTest) -> AppTest:
    button(app, "Correct this sentence").click().run()
    assert not app.exception
    assert app.title[0].value == "Correct"
    # AppTest keeps requesting the page of its last switch_page() on every run, so
    # follow the app's own st.switch_page explicitly (a browser follows the URL).
    return app.switch_page("app/page_correct.py")


def store(tmp_path: Path) -> CorrectionsStore:
    return CorrectionsStore.open(data_dir=tmp_path / "data")


def button(app: AppTest, label: str) -> Button:
    return next(b for b in app.button if b.label == label)


def test_the_sentence_is_mounted_in_the_editor_with_the_prediction(
    app: AppTest, editor: ScriptedEditor
) -> None:
    assert any("Sentence 1 of fixture.tsv" in shown(c.value) for c in app.caption)
    (sentence,) = editor.sentences
    assert (sentence.words, sentence.labels) == (FIRST_WORDS, FIRST_PREDICTED)
    assert len(sentence.scores) == len(FIRST_WORDS)


def test_save_and_next_stores_the_labels_and_opens_the_next_sentence(
    app: AppTest, editor: ScriptedEditor, tmp_path: Path
) -> None:
    first_key = editor.item_key
    editor.send("save", [WIDENED])
    app.run()
    assert not app.exception
    assert any("Saved correction #1" in s.value for s in app.success)
    saved = store(tmp_path).corrections()
    assert [(c.words, c.labels, c.predicted) for c in saved] == [
        (FIRST_WORDS, WIDENED, FIRST_PREDICTED)
    ]
    assert (saved[0].source, saved[0].sentence_index) == ("file:fixture.tsv", 0)
    assert (saved[0].annotator, saved[0].model_version) == ("tester", "fake-1")
    assert editor.item_key != first_key
    assert editor.sentences[0].words == ("No", "symptoms", ".")
    assert any("Sentence 2 of fixture.tsv" in shown(c.value) for c in app.caption)
    assert {m.label: m.value for m in app.metric}["Corrections saved"] == "1"

    button(app, "Undo last save").click().run()
    assert any("Undone: correction #1" in s.value for s in app.success)
    assert store(tmp_path).corrections(CorrectionFilter(current_only=False)) == []
    assert button(app, "Undo last save").disabled


def test_accept_stores_the_prediction_and_skip_stores_nothing(
    app: AppTest, editor: ScriptedEditor, tmp_path: Path
) -> None:
    editor.send("skip")
    app.run()
    assert editor.sentences[0].words == ("No", "symptoms", ".")
    assert store(tmp_path).count() == 0
    editor.send("accept")
    app.run()
    saved = store(tmp_path).corrections()
    assert [(c.words, c.labels) for c in saved] == [(("No", "symptoms", "."), ("O", "O", "O"))]
    assert editor.sentences[0].words[0] == "Obesity"


def test_the_last_sentence_says_so(app: AppTest, editor: ScriptedEditor) -> None:
    for _ in range(3):
        editor.send("skip")
        app.run()
    assert any("last sentence of fixture.tsv" in shown(i.value) for i in app.info)


def test_the_editor_can_start_from_the_files_labels(app: AppTest, editor: ScriptedEditor) -> None:
    model_key = editor.item_key
    app.radio(key="correct_start_from").set_value("the file's labels").run()
    assert editor.sentences[0].labels == FIRST_FILE_LABELS
    assert editor.item_key != model_key  # a separate draft in the browser


def test_saving_needs_an_annotator(app: AppTest, editor: ScriptedEditor, tmp_path: Path) -> None:
    key = editor.item_key
    app.sidebar.text_input(key="annotator").input("").run()
    editor.send("save", [WIDENED])
    app.run()
    assert any("Enter your name as Annotator" in e.value for e in app.error)
    assert store(tmp_path).count() == 0
    assert editor.item_key == key  # still on the same sentence, its draft in the editor


def test_an_unknown_label_is_refused_and_nothing_saved(
    app: AppTest, editor: ScriptedEditor, tmp_path: Path
) -> None:
    key = editor.item_key
    editor.send("save", [("B-Chemical", "O", "O", "O", "O", "O")])  # never trust the browser
    app.run()
    assert not app.exception
    assert any("Not saved" in shown(e.value) and "B-Chemical" in shown(e.value) for e in app.error)
    assert store(tmp_path).count() == 0
    assert editor.item_key == key


def test_a_sentence_from_the_tag_page_can_be_corrected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, editor: ScriptedEditor
) -> None:
    app = make_app(tmp_path, monkeypatch).run()
    app.text_area(key="tag_text").input("The patient had fever. No rash was seen.")
    app.button[0].click().run()
    app.selectbox(key="tag_sentence_choice").set_value(1).run()
    send_to_correct(app).run()
    assert editor.sentences[0].words == ("No", "rash", "was", "seen", ".")
    editor.send("save", [("O", "B-Disease", "O", "O", "O")])
    app.run()
    saved = store(tmp_path).corrections()[0]
    assert (saved.words, saved.labels) == (
        ("No", "rash", "was", "seen", "."),
        ("O", "B-Disease", "O", "O", "O"),
    )
    assert saved.source.startswith("text:") and saved.sentence_index == 1


def test_any_sentence_of_the_tagged_text_can_be_picked_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, editor: ScriptedEditor
) -> None:
    app = make_app(tmp_path, monkeypatch).run()
    app.text_area(key="tag_text").input("The patient had fever. No rash was seen.")
    app.button[0].click().run()
    app.switch_page("app/page_correct.py").run()
    assert any("No sentence to correct yet" in info.value for info in app.info)
    app.number_input(key="correct_pick_number").set_value(2).run()
    button(app, "Load sentence").click().run()
    assert any("Sentence 2 of pasted text" in shown(c.value) for c in app.caption)
    assert editor.sentences[0].words == ("No", "rash", "was", "seen", ".")


def test_a_locked_database_says_busy_and_keeps_the_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, editor: ScriptedEditor
) -> None:
    import sqlite3

    monkeypatch.setenv("TAGGER_DB_BUSY_RETRY_S", "1")
    app = make_app(tmp_path, monkeypatch).run()
    app.switch_page("app/page_inspect.py").run()
    upload(app, "fixture.tsv", FILE)
    app = send_to_correct(app).run()
    key = editor.item_key
    other = sqlite3.connect(tmp_path / "data" / "tagger.sqlite3", isolation_level=None, timeout=0)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        editor.send("save", [WIDENED])
        app.run()
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert not app.exception
    errors = [shown(e.value) for e in app.error]
    assert any(
        "busy (another process holds its lock)" in e and "still in the editor" in e
        for e in errors
    ), errors
    assert store(tmp_path).count() == 0
    assert editor.item_key == key  # the same sentence: the browser keeps its draft
    editor.send("save", [WIDENED])  # the lock is gone: saving again works
    app.run()
    assert any("Saved correction #1" in s.value for s in app.success)
    assert store(tmp_path).corrections()[0].labels == WIDENED
