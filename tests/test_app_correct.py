"""AppTest: correcting a sentence on the Correct page, saving it, undoing it."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Button

from curation.corrections import CorrectionFilter, CorrectionsStore
from tests.app_fakes import make_app, shown
from tests.test_app_inspect import FILE, upload

TARGET = "file:fixture.tsv#0"  # "Chronic renal failure and fever ." from FILE


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The Correct page on the first sentence of FILE, sent from the Inspect page."""
    app = make_app(tmp_path, monkeypatch).run()
    app.switch_page("app/page_inspect.py").run()
    upload(app, "fixture.tsv", FILE)
    return send_to_correct(app)


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


def draft_html(app: AppTest) -> str:
    return next(h.proto.body for h in app.get("html") if 'class="tagged-text"' in h.proto.body)


def edit_token_table(app: AppTest, edits: dict[int, str]) -> None:
    key = f"token_editor_{app.session_state['correction_generation']}"
    app.session_state[key] = {
        "edited_rows": {row: {"label": label} for row, label in edits.items()},
        "added_rows": [],
        "deleted_rows": [],
    }


def test_change_boundaries_save_and_undo(app: AppTest, tmp_path: Path) -> None:
    assert any("Sentence 1 of fixture.tsv" in shown(c.value) for c in app.caption)
    # The model marked "failure"; the curator widens it to "Chronic renal failure".
    app.button(key=f"bounds_{TARGET}_2_3").click().run()
    app.select_slider(key=f"correct_range_{TARGET}").set_value((0, 2)).run()
    button(app, "Apply new boundaries").click().run()
    assert not app.exception
    assert '<mark class="draft" title="your correction">Chronic' in draft_html(app)
    button(app, "Save correction").click().run()
    assert any("Saved correction #1" in s.value for s in app.success)
    saved = store(tmp_path).corrections()
    assert [(c.words, c.labels, c.predicted) for c in saved] == [
        (
            ("Chronic", "renal", "failure", "and", "fever", "."),
            ("B-Disease", "I-Disease", "I-Disease", "O", "B-Disease", "O"),
            ("O", "O", "B-Disease", "O", "B-Disease", "O"),
        )
    ]
    assert (saved[0].source, saved[0].sentence_index) == ("file:fixture.tsv", 0)
    assert (saved[0].annotator, saved[0].model_version) == ("tester", "fake-1")
    assert {m.label: m.value for m in app.metric}["Corrections saved"] == "1"
    assert {m.label: m.value for m in app.metric}["Since the model in service was trained"] == "1"

    button(app, "Undo last save").click().run()
    assert any("Undone: correction #1" in s.value for s in app.success)
    assert store(tmp_path).corrections(CorrectionFilter(current_only=False)) == []
    assert button(app, "Undo last save").disabled


def test_reject_a_span_and_mark_a_new_one(app: AppTest, tmp_path: Path) -> None:
    app.button(key=f"reject_{TARGET}_4_5").click().run()  # "fever" is not wanted here
    app.select_slider(key=f"correct_range_{TARGET}").set_value((0, 1)).run()
    next(b for b in app.button if b.label.startswith("Mark")).click().run()
    button(app, "Save correction").click().run()
    assert store(tmp_path).corrections()[0].labels == (
        "B-Disease",
        "I-Disease",
        "B-Disease",
        "O",
        "O",
        "O",
    )


def test_an_i_without_b_is_shown_and_repaired_before_saving(app: AppTest, tmp_path: Path) -> None:
    edit_token_table(app, {1: "I-Disease", 2: "I-Disease", 4: "O"})  # "renal failure", no B
    app.run()
    assert not app.exception
    warning = shown(" ".join(w.value for w in app.warning))
    assert "Invalid BIO: word 1 **renal**" in warning and "saved as B-Disease" in warning
    button(app, "Save correction").click().run()
    assert store(tmp_path).corrections()[0].labels == ("O", "B-Disease", "I-Disease", "O", "O", "O")
    assert any("1 label(s) repaired" in s.value for s in app.success)


def test_saving_needs_an_annotator(app: AppTest, tmp_path: Path) -> None:
    app.sidebar.text_input(key="annotator").input("").run()
    button(app, "Save correction").click().run()
    assert any("Enter your name as Annotator" in e.value for e in app.error)
    assert store(tmp_path).count() == 0


def test_a_sentence_from_the_tag_page_can_be_corrected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path, monkeypatch).run()
    app.text_area(key="tag_text").input("The patient had fever. No rash was seen.")
    app.button[0].click().run()
    app.selectbox(key="tag_sentence_choice").set_value(1).run()
    send_to_correct(app)
    edit_token_table(app, {1: "B-Disease"})  # "rash"
    app.run()
    button(app, "Save correction").click().run()
    saved = store(tmp_path).corrections()[0]
    assert (saved.words, saved.labels) == (
        ("No", "rash", "was", "seen", "."),
        ("O", "B-Disease", "O", "O", "O"),
    )
    assert saved.source.startswith("text:") and saved.sentence_index == 1


def test_any_sentence_of_the_tagged_text_can_be_picked_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path, monkeypatch).run()
    app.text_area(key="tag_text").input("The patient had fever. No rash was seen.")
    app.button[0].click().run()
    app.switch_page("app/page_correct.py").run()
    assert any("No sentence to correct yet" in info.value for info in app.info)
    app.number_input(key="correct_pick_number").set_value(2).run()
    button(app, "Load sentence").click().run()
    assert any("Sentence 2 of pasted text" in shown(c.value) for c in app.caption)
    assert list(app.data_editor[0].value["word"]) == ["No", "rash", "was", "seen", "."]


def test_an_unknown_label_is_refused_and_nothing_saved(app: AppTest, tmp_path: Path) -> None:
    edit_token_table(app, {0: "B-Chemical"})  # not offered by the table, but never trust input
    app.run()
    assert not app.exception
    assert any("cannot be saved" in shown(e.value) for e in app.error)
    button(app, "Save correction").click().run()
    assert any("Not saved" in shown(e.value) and "B-Chemical" in shown(e.value) for e in app.error)
    assert store(tmp_path).count() == 0


def test_a_locked_database_says_busy_and_keeps_the_draft(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    monkeypatch.setenv("TAGGER_DB_BUSY_RETRY_S", "1")
    app = make_app(tmp_path, monkeypatch).run()
    app.switch_page("app/page_inspect.py").run()
    upload(app, "fixture.tsv", FILE)
    app = send_to_correct(app).run()
    edit_token_table(app, {0: "B-Disease", 1: "I-Disease", 2: "I-Disease"})
    app.run()
    wanted = ("B-Disease", "I-Disease", "I-Disease", "O", "B-Disease", "O")
    other = sqlite3.connect(tmp_path / "data" / "tagger.sqlite3", isolation_level=None, timeout=0)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        button(app, "Save correction").click().run()
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert not app.exception
    errors = [shown(e.value) for e in app.error]
    assert any(
        "busy (another process holds its lock)" in e and "still in the editor" in e
        and "press Save again" in e
        for e in errors
    ), errors
    assert store(tmp_path).count() == 0
    assert list(app.data_editor[0].value["label"]) == list(wanted)  # the draft is kept
    button(app, "Save correction").click().run()  # the lock is gone: Save again works
    assert any("Saved correction #1" in s.value for s in app.success)
    assert store(tmp_path).corrections()[0].labels == wanted
