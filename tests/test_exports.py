"""Exports of reviewed items and of corrections, each read back: BIO by tagger.bio's
reader, JSONL spans mapped back onto the same words, DocBin loaded by spaCy."""

from __future__ import annotations

import json

import pytest
import spacy
from spacy.tokens import DocBin

from curation import exports
from curation.collections import CollectionStore
from curation.corrections import CorrectionsStore
from curation.database import Database
from curation.review import ReviewFilter, ReviewItem, ReviewQueue
from tagger.bio import entity_spans, parse_bio
from tests.collection_helpers import jsonl, serve_version, tag_everything

TEXT_RECORD = {
    "id": "PMID1",
    "title": "Renal failure",
    "text": "Fever after lithium.  No seizures were seen.",
}
BIO_FILE = b"Acute\tO\nhepatitis\tO\n.\tO\n\nIt\tO\nresolved\tO\n"


@pytest.fixture
def reviewed(database: Database) -> list[ReviewItem]:
    """Two reviewed items, one from JSONL (with text) and one from BIO (words only)."""
    store = CollectionStore(database)
    store.import_files(
        "c", [("a.jsonl", jsonl([TEXT_RECORD])), ("b.bio", BIO_FILE)], imported_by="ada"
    )
    serve_version(database, "v1")
    tag_everything(store, "v1")
    queue = ReviewQueue(database, CorrectionsStore(database))
    while (item := queue.next_item("ada", ReviewFilter("c"))) is not None:
        if item.text is None:  # the BIO item: the curator marks "Acute hepatitis"
            labels = [["B-Disease", "I-Disease", "O"], ["O", "O"]]
            queue.save(item.id, "ada", labels)
        else:
            queue.accept(item.id, "ada")
    return queue.reviewed_items("c")


def expected_entities(items: list[ReviewItem]) -> list[list[str]]:
    """Each item's entities as word strings, from its stored labels."""
    return [
        [
            " ".join(sentence.words[start:end])
            for sentence in item.sentences
            for start, end, _ in entity_spans(sentence.labels)
        ]
        for item in items
    ]


def test_the_items_under_test(reviewed: list[ReviewItem]) -> None:
    assert [item.external_id for item in reviewed] == ["PMID1", "b.bio#1"]
    assert expected_entities(reviewed) == [
        ["Renal", "failure", "Fever", "seizures"],
        ["Acute hepatitis"],
    ]


def test_bio_export_reads_back_with_the_same_words_and_labels(
    reviewed: list[ReviewItem],
) -> None:
    sentences = parse_bio(exports.items_to_bio(reviewed), "export.tsv")
    expected = [(s.words, s.labels) for item in reviewed for s in item.sentences]
    assert [(s.words, s.labels) for s in sentences] == expected
    assert exports.items_to_bio([]) == ""


def test_jsonl_spans_map_back_to_the_same_words(reviewed: list[ReviewItem]) -> None:
    records = [json.loads(line) for line in exports.items_to_jsonl(reviewed).splitlines()]
    assert len(records) == 2
    text_record, bio_record = records
    assert text_record["text"] == "Renal failure\n\nFever after lithium.  No seizures were seen."
    assert text_record["meta"]["external_id"] == "PMID1"
    assert text_record["meta"]["source"] == "collection:c/PMID1"
    for record, item, entities in zip(records, reviewed, expected_entities(reviewed), strict=True):
        tokens = record["tokens"]
        assert [t["text"] for t in tokens] == [w for s in item.sentences for w in s.words]
        assert all(record["text"][t["start"] : t["end"]] == t["text"] for t in tokens)
        assert [t["id"] for t in tokens] == list(range(len(tokens)))
        spans = record["spans"]
        words_of = [
            " ".join(t["text"] for t in tokens[s["token_start"] : s["token_end"] + 1])
            for s in spans
        ]
        assert words_of == entities
        assert [record["text"][s["start"] : s["end"]] for s in spans] == entities
        assert record["label"] == [[s["start"], s["end"], "Disease"] for s in spans]
    assert [t["ws"] for t in text_record["tokens"][:3]] == [True, True, True]
    assert bio_record["text"] == "Acute hepatitis.\nIt resolved"


def test_docbin_loads_with_the_same_entities(reviewed: list[ReviewItem]) -> None:
    payload = exports.items_to_docbin(reviewed)
    docs = list(DocBin().from_bytes(payload).get_docs(spacy.blank("en").vocab))
    assert len(docs) == 2
    assert [[ent.text for ent in doc.ents] for doc in docs] == expected_entities(reviewed)
    for doc, item in zip(docs, reviewed, strict=True):
        assert [token.text for token in doc] == [w for s in item.sentences for w in s.words]
        expected = [
            (first + start, first + end)
            for first, labels in _sentence_starts(item)
            for start, end, _ in entity_spans(labels)
        ]
        assert [(ent.start, ent.end) for ent in doc.ents] == expected
        assert {ent.label_ for ent in doc.ents} == {"Disease"}
        assert len(list(doc.sents)) == len(item.sentences)
        assert doc.user_data["meta"]["external_id"] == item.external_id


def _sentence_starts(item: ReviewItem) -> list[tuple[int, tuple[str, ...]]]:
    """Each sentence's labels with the index of its first token in the whole document."""
    result, position = [], 0
    for sentence in item.sentences:
        result.append((position, sentence.labels))
        position += len(sentence.words)
    return result


def test_corrections_export_to_every_format(database: Database) -> None:
    store = CorrectionsStore(database)
    store.save(
        words=["Chronic", "renal", "failure", "."],
        labels=["B-Disease", "I-Disease", "I-Disease", "O"],
        predicted=["O"] * 4,
        source="text:1",
        sentence_index=0,
        model_version="v1",
        annotator="ada",
    )
    current = store.current()
    assert exports.corrections_to_bio(current) == store.export_bio()
    (record,) = [json.loads(line) for line in exports.corrections_to_jsonl(current).splitlines()]
    assert record["text"] == "Chronic renal failure."
    assert record["spans"] == [
        {"start": 0, "end": 21, "token_start": 0, "token_end": 2, "label": "Disease"}
    ]
    assert record["meta"]["annotator"] == "ada"
    (doc,) = (
        DocBin()
        .from_bytes(exports.corrections_to_docbin(current))
        .get_docs(spacy.blank("en").vocab)
    )
    assert [ent.text for ent in doc.ents] == ["Chronic renal failure"]
