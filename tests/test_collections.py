"""Collections: import (.txt, JSONL, BIO), refused records with file and line, counts,
deletion, and the worker's side of tagging (what to tag, storing tags, the doubt).

Every test that takes ``store`` runs on SQLite and on PostgreSQL (tests/databases.py).
"""

from __future__ import annotations

import json
import time

import pytest

from curation.collections import (
    UNCERTAINTY_NAME,
    CollectionError,
    CollectionNotFoundError,
    CollectionStore,
    ImportProblem,
    PredictedSentence,
    TaggingProgress,
    expected_word_errors,
)
from curation.corrections import CorrectionsStore
from curation.database import Database
from curation.review import ReviewFilter, ReviewQueue
from tests.collection_helpers import FakeClock, fake_sentences, jsonl, serve_version, tag_everything


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(database: Database, clock: FakeClock) -> CollectionStore:
    return CollectionStore(database, clock=clock)


def problems_by_line(problems: tuple[ImportProblem, ...]) -> dict[int | None, str]:
    return {problem.line: str(problem) for problem in problems}


def test_jsonl_keeps_good_records_and_names_the_file_and_line_of_bad_ones(
    store: CollectionStore,
) -> None:
    lines = [
        json.dumps({"id": 101, "title": "Fever in rats", "text": "Fever was seen."}),
        json.dumps({"id": "PMID102", "text": "Renal failure."}),
        "{not json",
        json.dumps({"id": 104, "title": "No text"}),
        "",
        json.dumps([1, 2]),
        json.dumps({"id": [1], "text": "x"}),
        json.dumps({"text": "No id: one is made up."}),
    ]
    data = ("\n".join(lines) + "\n").encode() + b'{"id": 109, "text": "caf\xe9"}\n'
    report = store.import_files("pubmed", [("export.jsonl", data)], imported_by="ada")

    assert report.added == 3 and report.collection == "pubmed" and report.files == 1
    problems = problems_by_line(report.problems)
    assert sorted(line for line in problems if line is not None) == [3, 4, 6, 7, 9]
    assert problems[3].startswith("export.jsonl:3: the line is not valid JSON")
    assert " — write one {" in problems[3]  # the fix follows the problem
    assert problems[4] == (
        'export.jsonl:4: the record has no text — give each record a non-empty "text"'
    )
    assert "not an object" in problems[6] and "is not a number or a string" in problems[7]
    assert "not valid UTF-8 (byte 0xe9)" in problems[9] and "UTF-8" in problems[9]

    queue = ReviewQueue(store.database, CorrectionsStore(store.database))
    serve_version(store.database, "v1")
    tag_everything(store, "v1")
    seen = set()
    while (item := queue.next_item("ada", ReviewFilter("pubmed"))) is not None:
        seen.add((item.external_id, item.title, item.source_file, item.source_line))
        queue.skip(item.id, "ada")
        if len(seen) == 3:
            break
    assert seen == {
        ("101", "Fever in rats", "export.jsonl", 1),
        ("PMID102", None, "export.jsonl", 2),
        ("export.jsonl:8", None, "export.jsonl", 8),
    }


def test_an_id_already_in_the_collection_is_refused_and_the_rest_kept(
    store: CollectionStore,
) -> None:
    store.import_files("c", [("a.jsonl", jsonl([{"id": 1, "text": "One."}]))], imported_by="ada")
    again = jsonl([{"id": 1, "text": "One again."}, {"id": 2, "text": "Two."}])
    report = store.import_files("c", [("b.jsonl", again)], imported_by="bo")
    assert report.added == 1
    assert [str(p) for p in report.problems] == [
        "b.jsonl:1: id '1' is already in this collection — give the record another id, or "
        "import it into another collection"
    ]
    # The same id in another collection is another document.
    assert store.import_files("d", [("b.jsonl", again)], imported_by="bo").added == 2
    assert [(s.name, s.documents) for s in store.summaries()] == [("c", 2), ("d", 2)]


def test_txt_title_rule_and_bad_text_files(store: CollectionStore) -> None:
    files = [
        ("123.txt", b"Seizures after cocaine\n\nTwo patients had seizures.\n"),
        ("124.txt", b"One paragraph on one line.\nAnd a second line.\n"),
        ("125.txt", b"   \n\n"),
        ("126.txt", "Fièvre".encode("latin-1")),
        ("127.txt", "A text".encode("utf-16")),
        ("128.pdf", b"%PDF"),
    ]
    report = store.import_files("txt", files, imported_by="ada")
    assert report.added == 2
    shown = [str(p) for p in report.problems]
    assert shown[0] == "125.txt: the file is empty — give the abstract as UTF-8 text"
    assert shown[1].startswith("126.txt:1: the file is not valid UTF-8 (byte 0xe8)")
    assert shown[2].startswith("127.txt: the file is UTF-16") and "Re-save" in shown[2]
    assert shown[3].startswith("128.pdf: the file type '.pdf' is not one the import reads")
    serve_version(store.database, "v1")
    texts = {(d.title, d.text) for d in store.documents_to_tag("v1", 10)}
    assert texts == {
        ("Seizures after cocaine", "Two patients had seizures."),
        (None, "One paragraph on one line.\nAnd a second line."),
    }


BIO_DOCSTART = b"""-DOCSTART- O

Fever\tB-Disease
.\tO

-DOCSTART- O

Renal B-Disease
failure I-Disease

seen O
"""


def test_bio_documents_split_at_docstart_lines(store: CollectionStore) -> None:
    report = store.import_files("bio", [("a.conll", BIO_DOCSTART)], imported_by="ada")
    assert report.added == 2 and report.problems == ()
    serve_version(store.database, "v1")
    words = {d.words for d in store.documents_to_tag("v1", 10)}
    assert words == {(("Fever", "."),), (("Renal", "failure"), ("seen",))}


def test_bio_documents_split_at_two_blank_lines_else_one_document(
    store: CollectionStore,
) -> None:
    two_blank = b"Fever\tB\n.\tO\n\n\nRenal\tB\nfailure\tI\n\nseen\tO\n"
    one_document = b"Fever\tB\n.\tO\n\nRenal\tB\n"
    report = store.import_files(
        "bio", [("a.tsv", two_blank), ("b.bio", one_document)], imported_by="ada"
    )
    assert report.added == 3
    serve_version(store.database, "v1")
    found = sorted((d.words or ()) for d in store.documents_to_tag("v1", 10))
    assert found == [
        (("Fever", "."),),
        (("Fever", "."), ("Renal",)),
        (("Renal", "failure"), ("seen",)),
    ]


def test_a_bad_bio_line_refuses_its_document_only_and_names_the_file_line(
    store: CollectionStore,
) -> None:
    data = b"Fever\tB\n.\tO\n\n\nRenal\tB-Chemical\n\n\nseen\tO\n"
    report = store.import_files("bio", [("x.iob", data)], imported_by="ada")
    assert report.added == 2
    (problem,) = report.problems
    assert (problem.file, problem.line) == ("x.iob", 5)
    assert str(problem).startswith("x.iob:5: unknown label 'B-Chemical' — Allowed labels")
    empty = store.import_files("bio", [("e.iob", b"\n\n")], imported_by="ada")
    assert [str(p).split(" —")[0] for p in empty.problems] == ["e.iob: the file is empty"]


def test_a_bad_collection_name_is_refused(store: CollectionStore) -> None:
    with pytest.raises(CollectionError, match="Collection: the collection name '  '") as raised:
        store.import_files("  ", [("a.txt", b"x")], imported_by="ada")
    assert "Fix: name the collection" in str(raised.value)


def test_ten_thousand_jsonl_records_import_in_seconds(store: CollectionStore) -> None:
    records = [
        {"id": n, "title": f"Title {n}", "text": f"Patient {n} had renal failure and fever."}
        for n in range(10_000)
    ]
    started = time.perf_counter()
    report = store.import_files("big", [("big.jsonl", jsonl(records))], imported_by="ada")
    elapsed = time.perf_counter() - started
    assert report.added == 10_000 and report.problems == ()
    assert elapsed < 30.0, f"10,000 records took {elapsed:.1f} s"
    assert store.summaries()[0].documents == 10_000


def test_summaries_count_tagged_reviewed_skipped_flagged_and_delete(
    store: CollectionStore,
) -> None:
    records = [{"id": n, "text": f"Fever number {n}."} for n in range(5)]
    store.import_files("c", [("a.jsonl", jsonl(records))], imported_by="ada")
    store.import_files("b", [("b.txt", b"Renal failure.")], imported_by="ada")
    assert store.names() == ["b", "c"]
    serve_version(store.database, "v1")
    tag_everything(store, "v1")
    queue = ReviewQueue(store.database, CorrectionsStore(store.database))
    actions = [queue.accept, queue.skip, lambda i, c: queue.flag(i, c, "odd")]
    for act in actions:
        item = queue.next_item("ada", ReviewFilter("c"))
        assert item is not None
        act(item.id, "ada")
    summary = {s.name: s for s in store.summaries()}["c"]
    assert (summary.documents, summary.tagged, summary.reviewed) == (5, 5, 1)
    assert (summary.skipped, summary.flagged, summary.pending) == (1, 1, 0)
    serve_version(store.database, "v2")  # the reviewed and flagged keep their labels
    summary = {s.name: s for s in store.summaries()}["c"]
    assert (summary.tagged, summary.pending) == (0, 4 - 1)
    assert store.tagging_progress("c") == TaggingProgress(0, 3, "v2")

    assert store.delete_collection("c") == 5
    assert store.names() == ["b"]
    with pytest.raises(CollectionNotFoundError, match="there is no collection 'c'"):
        store.delete_collection("c")
    assert queue.corrections.count() == 1  # corrections saved from it stay


def test_documents_to_tag_skips_reviewed_and_claimed_until_the_claim_lapses(
    store: CollectionStore, clock: FakeClock
) -> None:
    records = [{"id": n, "text": f"Fever {n}."} for n in range(3)]
    store.import_files("c", [("a.jsonl", jsonl(records))], imported_by="ada")
    serve_version(store.database, "v1")
    tag_everything(store, "v1")
    assert store.documents_to_tag("v1", 10) == []
    assert store.tagging_progress("c") == TaggingProgress(3, 3, "v1")

    queue = ReviewQueue(store.database, CorrectionsStore(store.database), clock=clock)
    held = queue.next_item("ada", ReviewFilter("c"))
    assert held is not None
    done = queue.next_item("bo", ReviewFilter("c"))
    assert done is not None
    queue.accept(done.id, "bo")
    serve_version(store.database, "v2")
    pending = {d.id for d in store.documents_to_tag("v2", 10)}
    assert done.id not in pending and held.id not in pending and len(pending) == 1
    # A claim made under its eyes: storing tags for the held document changes nothing.
    assert not store.store_tags(held.id, "v2", fake_sentences(store.documents_to_tag("v2", 1)[0]))
    clock.advance(store.claim_ttl_s + 1)
    assert held.id in {d.id for d in store.documents_to_tag("v2", 10)}


def test_store_tags_keeps_the_prediction_and_the_doubt(store: CollectionStore) -> None:
    store.import_files("c", [("a.txt", b"Title\n\nRenal failure.")], imported_by="ada")
    serve_version(store.database, "v1")
    (document,) = store.documents_to_tag("v1", 10)
    scores = {"Title": 0.5, "Renal": 0.75}
    sentences = fake_sentences(document, lambda word: scores.get(word, 1.0))
    assert store.store_tags(document.id, "v1", sentences)
    assert expected_word_errors(sentences) == 0.75
    queue = ReviewQueue(store.database, CorrectionsStore(store.database))
    item = queue.next_item("ada", ReviewFilter("c"))
    assert item is not None and item.model_version == "v1"
    assert item.uncertainty == 0.75
    assert item.uncertainty_per_100_words == pytest.approx(100 * 0.75 / 4)
    assert item.text == "Title\n\nRenal failure."
    assert [s.words for s in item.sentences] == [("Title", "Renal", "failure", ".")]
    assert item.sentences[0].labels == ("O", "B-Disease", "B-Disease", "O")
    start, end = item.sentences[0].offsets[1]  # type: ignore[index]
    assert item.text[start:end] == "Renal"
    assert UNCERTAINTY_NAME == "expected word errors"


def test_a_tagged_sentence_needs_one_label_and_score_per_word() -> None:
    with pytest.raises(CollectionError, match="2 words but 1 labels"):
        PredictedSentence(("a", "b"), None, ("O",), (0.5, 0.5))
