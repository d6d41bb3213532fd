"""AppTest: the Corrections page lists, filters, deletes and exports saved corrections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import spacy
from spacy.tokens import DocBin
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from curation.corrections import CorrectionFilter, CorrectionsStore
from tagger.bio import parse_bio
from tests.app_fakes import make_app

FEVER = (("Fever", "and", "rash", "."), ("B-Disease", "O", "B-Disease", "O"))
ASTHMA = (("Severe", "asthma", "."), ("O", "B-Disease", "O"))


def seed(store: CorrectionsStore) -> None:
    for (words, labels), annotator, index in ((FEVER, "ada", 0), (ASTHMA, "bo", 1)):
        store.save(
            words=words,
            labels=labels,
            predicted=("O",) * len(words),
            source="file:cases.tsv",
            sentence_index=index,
            model_version="v1",
            annotator=annotator,
        )
    # A second save of the asthma sentence: the first becomes history.
    store.save(
        words=ASTHMA[0],
        labels=("B-Disease", "I-Disease", "O"),
        predicted=("O",) * 3,
        source="file:cases.tsv",
        sentence_index=1,
        model_version="v1",
        annotator="bo",
    )


@pytest.fixture
def store(tmp_path: Path) -> CorrectionsStore:
    store = CorrectionsStore.open(data_dir=tmp_path / "data")
    seed(store)
    return store


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: CorrectionsStore) -> AppTest:
    app = make_app(tmp_path, monkeypatch).run()
    return app.switch_page("app/page_corrections.py").run()


def table(app: AppTest) -> list[tuple[int, str, str, bool]]:
    frame = app.dataframe[0].value
    return list(zip(frame["id"], frame["sentence"], frame["spans"], frame["current"], strict=True))


def test_the_current_corrections_are_listed(app: AppTest) -> None:
    assert not app.exception
    assert table(app) == [
        (1, "Fever and rash .", "Fever | rash", True),
        (3, "Severe asthma .", "Severe asthma", True),
    ]
    frame = app.dataframe[0].value
    assert set(frame.columns) >= {"source", "model version", "annotator", "time (UTC)"}
    app.toggle(key="corrections_history").set_value(True).run()
    assert [(row[0], row[3]) for row in table(app)] == [(1, True), (2, False), (3, True)]


def test_filters_narrow_the_table(app: AppTest) -> None:
    app.text_input(key="corrections_text").input("ASTHMA").run()
    assert [row[0] for row in table(app)] == [3]
    app.text_input(key="corrections_text").input("").run()
    app.text_input(key="corrections_annotator").input("ada").run()
    assert [row[0] for row in table(app)] == [1]
    app.text_input(key="corrections_annotator").input("nobody").run()
    assert any("No corrections match" in info.value for info in app.info)


def test_deleting_the_current_version_restores_the_earlier_one(
    app: AppTest, store: CorrectionsStore
) -> None:
    app.selectbox(key="corrections_delete_choice").set_value(3).run()
    next(b for b in app.button if b.label == "Delete").click().run()
    assert not app.exception
    message = " ".join(s.value for s in app.success)
    assert "Deleted correction #3" in message and "earlier version #2" in message
    assert [c.id for c in store.corrections(CorrectionFilter(current_only=False))] == [1, 2]
    assert [row[0] for row in table(app)] == [1, 2]


def test_export_reads_back_identically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: CorrectionsStore
) -> None:
    served: dict[str | None, bytes] = {}
    keep = MemoryMediaFileStorage.load_and_get_id

    def capture(
        self: MemoryMediaFileStorage,
        data: Any,
        mimetype: str,
        kind: Any,
        filename: str | None = None,
    ) -> str:
        served[filename] = data
        return keep(self, data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", capture)
    app = make_app(tmp_path, monkeypatch).run()
    app.switch_page("app/page_corrections.py").run()
    labels = [button.proto.label for button in app.get("download_button")]
    assert labels == [
        "BIO (BC5CDR format)",
        "JSONL with character offsets (Prodigy, doccano)",
        "spaCy DocBin (.spacy)",
    ]
    assert any("2 sentences" in caption.value for caption in app.caption)
    expected = [FEVER, (ASTHMA[0], ("B-Disease", "I-Disease", "O"))]
    read_back = parse_bio(served["corrections.tsv"])
    assert [(s.words, s.labels) for s in read_back] == expected
    records = [json.loads(line) for line in served["corrections.jsonl"].decode().splitlines()]
    assert [[token["text"] for token in r["tokens"]] for r in records] == [
        list(words) for words, _ in expected
    ]
    docs = list(DocBin().from_bytes(served["corrections.spacy"]).get_docs(spacy.blank("en").vocab))
    assert [[t.text for t in doc] for doc in docs] == [list(words) for words, _ in expected]
    assert [[e.text for e in doc.ents] for doc in docs] == [["Fever", "rash"], ["Severe asthma"]]


def test_an_empty_store_says_so_and_offers_no_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path / "fresh", monkeypatch).run()
    app.switch_page("app/page_corrections.py").run()
    assert any("No corrections saved yet" in info.value for info in app.info)
    assert not app.get("download_button")
    assert any("Nothing to export yet" in caption.value for caption in app.caption)
