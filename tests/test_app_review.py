"""AppTest: import a collection, review it item by item, resume after a restart.

The span editor runs in the browser (tests/e2e/test_review_browser.py drives the real
one); a :class:`~tests.app_fakes.ScriptedEditor` plays the curator's events here, so
what the pages store and serve is tested in-process.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from curation.collections import CollectionStore
from curation.corrections import CorrectionsStore
from curation.database import Database
from curation.review import ReviewQueue
from tests.app_fakes import ScriptedEditor, make_app, shown
from tests.collection_helpers import jsonl, serve_version, tag_everything

RECORDS = [
    {"id": "p1", "title": "Fever after surgery", "text": "Fever was seen. Renal failure too."},
    {"id": "p2", "title": "A quiet case", "text": "Nothing was found. The patient went home."},
    {"id": "p3", "text": "Seizures were reported. Hepatitis was excluded."},
]
VERSION = "v-review"


@pytest.fixture
def editor(monkeypatch: pytest.MonkeyPatch) -> ScriptedEditor:
    scripted = ScriptedEditor()
    monkeypatch.setattr("app.span_editor.span_editor", scripted)
    return scripted


def database(tmp_path: Path) -> Database:
    return Database.open(None, data_dir=tmp_path / "data")


def import_on_page(app: AppTest, files: list[tuple[str, bytes]]) -> AppTest:
    app.switch_page("app/page_collections.py").run()
    app.text_input(key="collections_name").input("query-1")
    uploads = [(name, data, "application/octet-stream") for name, data in files]
    app.file_uploader(key="collections_files_0").set_value(uploads).run()
    next(b for b in app.button if b.label == "Import").click().run()
    return app


@pytest.fixture
def tagged_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, editor: ScriptedEditor) -> AppTest:
    """The Review page on a collection of three abstracts, tagged as the worker would."""
    app = make_app(tmp_path, monkeypatch).run()
    import_on_page(app, [("export.jsonl", jsonl(RECORDS))])
    db = database(tmp_path)
    serve_version(db, VERSION)
    # "Fever" and "Seizures" are sure; "failure" and "Hepatitis" are doubtful.
    doubtful = {"failure", "hepatitis"}
    tagged = tag_everything(
        CollectionStore(db), VERSION, lambda w: 0.3 if w.lower() in doubtful else 0.95
    )
    assert tagged == 3
    return app.switch_page("app/page_review.py").run()


def test_an_import_keeps_the_good_records_and_lists_the_bad_by_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, editor: ScriptedEditor
) -> None:
    app = make_app(tmp_path, monkeypatch).run()
    bad = jsonl(RECORDS[:1]) + b'{"id": "p9", "title": "no text"}\n' + b"not json\n"
    import_on_page(app, [("export.jsonl", bad), ("case.txt", b"Renal failure was seen.")])
    assert not app.exception
    warnings = " ".join(shown(w.value) for w in app.warning)
    assert "2 documents imported into **query-1**" in warnings and "2 records refused" in warnings
    problems = app.code[0].value
    assert "export.jsonl:2:" in problems and "export.jsonl:3:" in problems
    frame = app.dataframe[0].value
    assert list(frame["collection"]) == ["query-1"] and list(frame["documents"]) == [2]


def test_review_serves_the_most_doubtful_item_and_saves_it_as_corrections(
    tagged_app: AppTest, editor: ScriptedEditor, tmp_path: Path
) -> None:
    app = tagged_app
    assert not app.exception
    captions = " ".join(shown(c.value) for c in app.caption)
    assert f"tagged by model **{VERSION}**" in captions and "expected word errors" in captions
    first = editor.sentences
    # The stand-in tagger ends sentences at "." only: the title runs into the first one.
    assert [s.words[0] for s in first] == ["Fever", "Renal"]
    # The curator widens "failure" to "Renal failure" and saves (S).
    labels = [list(s.labels) for s in first]
    labels[1][0:2] = ["B-Disease", "I-Disease"]
    editor.send("save", labels)
    app.run()
    assert not app.exception
    saved = CorrectionsStore.open(data_dir=tmp_path / "data").corrections()
    by_index = {c.sentence_index: c for c in saved}
    assert sorted(by_index) == [0, 1]
    assert by_index[1].words[:2] == ("Renal", "failure")
    assert by_index[1].labels[:2] == ("B-Disease", "I-Disease")
    assert by_index[1].source == "collection:query-1/p1" and by_index[1].model_version == VERSION
    assert editor.sentences[0].words[0] == "Seizures"  # the next most doubtful item
    assert "1 of 3 reviewed" in app.get("progress")[0].proto.text


def test_skip_and_flag_are_kept_and_the_queue_moves_on(
    tagged_app: AppTest, editor: ScriptedEditor, tmp_path: Path
) -> None:
    app = tagged_app
    editor.send("skip")
    app.run()
    editor.send("flag", note="is this a disease?")
    app.run()
    assert not app.exception
    queue = ReviewQueue(database(tmp_path), CorrectionsStore.open(data_dir=tmp_path / "data"))
    progress = queue.progress("query-1")
    assert (progress.skipped, progress.flagged) == (1, 1)
    assert "flagged" in app.get("progress")[0].proto.text
    assert CorrectionsStore.open(data_dir=tmp_path / "data").count() == 0


def test_a_restarted_app_resumes_at_the_same_item(
    tagged_app: AppTest, editor: ScriptedEditor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = editor.item_key
    restarted = make_app(tmp_path, monkeypatch).run()  # a new session: nothing remembered
    restarted.switch_page("app/page_review.py").run()
    assert not restarted.exception
    assert editor.item_key == held


def test_a_second_curator_gets_another_item(
    tagged_app: AppTest, editor: ScriptedEditor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = editor.item_key
    other = make_app(tmp_path, monkeypatch)
    other.session_state["annotator"] = "second curator"
    other.run().switch_page("app/page_review.py").run()
    assert not other.exception
    assert editor.item_key != held


def test_mark_everywhere_reaches_the_unreviewed_items(
    tagged_app: AppTest, editor: ScriptedEditor
) -> None:
    app = tagged_app
    editor.send("save", mark_everywhere=[("excluded",)])
    app.run()
    assert any("marked in 1 other unreviewed item" in shown(s.value) for s in app.success)
    marked = [s for s in editor.sentences if "excluded" in s.words]
    assert marked and marked[0].labels[marked[0].words.index("excluded")] == "B-Disease"


def test_reviewed_items_can_be_exported(tagged_app: AppTest, editor: ScriptedEditor) -> None:
    app = tagged_app
    editor.send("accept")
    app.run()
    app.switch_page("app/page_collections.py").run()
    assert not app.exception
    labels = [b.proto.label for b in app.get("download_button")]
    assert labels == [
        "BIO (BC5CDR format)",
        "JSONL with character offsets (Prodigy, doccano)",
        "spaCy DocBin (.spacy)",
    ]
    assert json.dumps(labels)  # plain strings, as shown


def test_review_needs_a_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, editor: ScriptedEditor
) -> None:
    app = make_app(tmp_path, monkeypatch).run()
    import_on_page(app, [("export.jsonl", jsonl(RECORDS))])
    app.session_state["annotator"] = ""
    app.switch_page("app/page_review.py").run()
    assert any("Enter your name as Annotator" in i.value for i in app.info)
    assert editor.mounted == []


def test_the_sidebar_says_a_preliminary_version_is_preliminary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from app import services, shell
    from app.settings import AppSettings
    from curation.registry import ModelVersion

    make_app(tmp_path, monkeypatch)  # the environment of an isolated app
    settings = AppSettings.from_env()
    job = services.curation(settings).queue.enqueue(options={}, requested_by="test").job
    point = {"epoch": 1, "epoch_end": True, "dev_f1": 70.12}
    version = ModelVersion(
        "v-early", None, datetime.now(UTC), tmp_path, job.id, "promoted", "", {},
        {"preliminary": True, "preliminary_point": point}, encoder_source="MiniLM",
    )  # fmt: skip
    status = services.ModelStatus(tagger=None, registered=version)
    assert shell.preliminary_note(settings, status) == (
        "preliminary (epoch 1, devel F1 70.1) — training continues"
    )
    services.curation(settings).queue.request_cancel(job.id)  # queued: cancelled at once
    assert "training stopped early" in (shell.preliminary_note(settings, status) or "")
    final = services.ModelStatus(tagger=None, registered=replace(version, summary={}))
    assert shell.preliminary_note(settings, final) is None
