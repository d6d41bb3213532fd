"""The worker tags collections with the tiny model: labels for every word, the version
and the doubt stored; after a promotion the unreviewed documents are re-tagged and the
reviewed ones are not; the worker's poll loop does it between jobs; how many documents
a step takes (its document and word limits) never changes their labels.

SQLite only: the store's queries run on both backends in tests/test_collections.py; the
model is what this file tests, and each pass over it costs the shared CPUs.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from curation.promotion import PromotionDecision
from curation.review import ReviewFilter
from curation.service import Curation
from tagger.tagger import Tagger
from tests.worker_helpers import clone_version
from worker.collection_tagging import CollectionTagger
from worker.loop import Worker, WorkerSettings

RECORDS = [
    {"id": 1, "title": "Seizures after cocaine", "text": "Two patients had seizures. No fever."},
    {"id": "2", "text": "Lithium induced renal failure in rats."},
    {"id": 3, "title": "Hepatitis", "text": "Acute hepatitis was seen after heparin."},
]
BIO = b"-DOCSTART- O\n\nAcute\tO\nhepatitis\tO\n.\tO\n\n-DOCSTART- O\n\nNo\tO\nrash\tO\n"


def keras_tagger(folder: Path) -> Tagger:
    # The exact Keras model: no ONNX graph to derive, so the test stays short.
    return Tagger.load(folder, runtime="keras", precision="float32")


def serve(curation: Curation, tiny_model_dir: Path, version: str) -> None:
    folder = clone_version(tiny_model_dir, curation.registry.versions_dir, version)
    curation.registry.register_folder(
        folder,
        decision=PromotionDecision(True, "test"),
        expected_serving=curation.registry.serving_version(),
    )
    assert curation.registry.serving_version() == version


@pytest.fixture
def curation(tmp_path: Path) -> Curation:
    curation = Curation.open(data_dir=tmp_path / "app", registry_dir=tmp_path / "models")
    lines = "".join(json.dumps(record) + "\n" for record in RECORDS).encode()
    report = curation.collections.import_files(
        "c", [("pubmed.jsonl", lines), ("more.conll", BIO)], imported_by="ada"
    )
    assert report.added == 5 and report.problems == ()
    return curation


def run_until_idle(tagger: CollectionTagger) -> int:
    steps = 0
    while tagger.step():
        steps += 1
        assert steps < 20
    return steps


def stored_rows(curation: Curation) -> dict[str, dict[str, object]]:
    with curation.database.read() as connection:
        rows = connection.exec_driver_sql(
            "SELECT external_id, title, text, words, model_version, sentences, uncertainty, "
            "word_count, status FROM collection_documents"
        ).mappings()
        return {row["external_id"]: dict(row) for row in rows}


def test_every_document_gets_labels_version_and_doubt_then_promotion_re_tags(
    curation: Curation, tiny_model_dir: Path
) -> None:
    tagger = CollectionTagger(
        curation.collections, curation.registry, batch_size=2, load_tagger=keras_tagger
    )
    assert tagger.step() == 0  # nothing in service yet: nothing tagged, nothing loaded
    serve(curation, tiny_model_dir, "v1")
    assert run_until_idle(tagger) == 3  # five documents, two a step
    assert curation.collections.tagging_progress("c") == (5, 5, "v1")

    for external_id, row in stored_rows(curation).items():
        assert row["model_version"] == "v1", external_id
        sentences = json.loads(str(row["sentences"]))
        assert sentences, external_id
        for sentence in sentences:
            n = len(sentence["words"])
            assert len(sentence["labels"]) == len(sentence["scores"]) == n
            assert set(sentence["labels"]) <= {"O", "B-Disease", "I-Disease"}
            assert all(0.0 <= score <= 1.0 for score in sentence["scores"])
        expected = sum(1 - s for sentence in sentences for s in sentence["scores"])
        assert row["uncertainty"] == pytest.approx(expected, abs=1e-4)
        assert row["word_count"] == sum(len(s["words"]) for s in sentences)
        if row["words"] is not None:  # BIO: the stored words, tagged as they are
            assert [s["words"] for s in sentences] == json.loads(str(row["words"]))
            assert all(s["offsets"] is None for s in sentences)
        else:  # text: offsets into title, blank line, abstract
            text = f"{row['title']}\n\n{row['text']}" if row["title"] else str(row["text"])
            for sentence in sentences:
                spans = [text[start:end] for start, end in sentence["offsets"]]
                assert spans == sentence["words"]
    first = stored_rows(curation)["1"]
    first_words = [s["words"] for s in json.loads(str(first["sentences"]))]
    assert first_words[0] == ["Seizures", "after", "cocaine"]  # the title: its own passage

    item = curation.review.next_item("ada", ReviewFilter("c"))
    assert item is not None and item.model_version == "v1"
    curation.review.accept(item.id, "ada")
    flagged = curation.review.next_item("ada", ReviewFilter("c"))
    assert flagged is not None
    curation.review.flag(flagged.id, "ada", "look again")

    serve(curation, tiny_model_dir, "v2")
    assert tagger.step() > 0 and tagger.loaded_version == "v2"  # reloaded on the change
    run_until_idle(tagger)
    versions = {key: row["model_version"] for key, row in stored_rows(curation).items()}
    assert versions.pop(item.external_id) == "v1"  # reviewed: kept as the curator saw it
    assert versions.pop(flagged.external_id) == "v1"
    assert set(versions.values()) == {"v2"}
    assert curation.collections.tagging_progress("c") == (3, 3, "v2")
    assert curation.review.item(item.id).status == "reviewed"


def test_the_worker_loop_tags_collections_between_jobs(
    curation: Curation, tiny_model_dir: Path, tmp_path: Path
) -> None:
    serve(curation, tiny_model_dir, "v1")
    settings = WorkerSettings(
        app_data_dir=tmp_path / "app", registry_dir=tmp_path / "models", adopt_dir=None, poll_s=0.1
    )
    worker = Worker(settings)
    worker.collection_tagging.load_tagger = keras_tagger
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while curation.collections.tagging_progress("c") != (5, 5, "v1"):
            assert time.monotonic() < deadline, curation.collections.tagging_progress("c")
            assert thread.is_alive()
            time.sleep(0.2)
    finally:
        worker.stop_event.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert curation.queue.jobs() == []  # tagging queued nothing and trained nothing


def stored_sentences(curation: Curation) -> dict[str, list[dict[str, object]]]:
    return {key: json.loads(str(row["sentences"])) for key, row in stored_rows(curation).items()}


def test_the_step_size_does_not_change_the_labels(tiny_model_dir: Path, tmp_path: Path) -> None:
    lines = "".join(json.dumps(record) + "\n" for record in RECORDS).encode()
    files = [("pubmed.jsonl", lines), ("more.conll", BIO)]
    tagged: list[dict[str, list[dict[str, object]]]] = []
    for name, options in (("one", {"batch_size": 1}), ("all", {})):
        curation = Curation.open(data_dir=tmp_path / name, registry_dir=tmp_path / f"{name}-m")
        curation.collections.import_files("c", files, imported_by="ada")
        serve(curation, tiny_model_dir, "v1")
        tagger = CollectionTagger(
            curation.collections, curation.registry, load_tagger=keras_tagger, **options
        )
        steps = run_until_idle(tagger)
        assert steps == (5 if name == "one" else 1)  # the default step takes all five
        tagged.append(stored_sentences(curation))
    one_by_one, together = tagged
    assert one_by_one.keys() == together.keys()
    for key, sentences in one_by_one.items():
        assert [s["labels"] for s in sentences] == [s["labels"] for s in together[key]], key
        assert [s["words"] for s in sentences] == [s["words"] for s in together[key]], key
        for alone, batched in zip(sentences, together[key], strict=True):
            assert alone["scores"] == pytest.approx(batched["scores"], abs=1e-4)


def test_a_step_stops_at_its_word_budget_but_always_takes_one_document(
    curation: Curation, tiny_model_dir: Path
) -> None:
    serve(curation, tiny_model_dir, "v1")
    tagger = CollectionTagger(
        curation.collections, curation.registry, step_words=7, load_tagger=keras_tagger
    )
    # Whitespace words: document 1 has 9 (title 3, text 6), over the budget, and goes
    # alone; document 2 has 6 and document 3 has 7, so neither fits beside the next;
    # the two BIO documents (3 + 2 words) fit together.
    assert [tagger.step() for _ in range(5)] == [1, 1, 1, 2, 0]
    assert curation.collections.tagging_progress("c") == (5, 5, "v1")
