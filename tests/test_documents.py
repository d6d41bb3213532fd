"""Document readers (tagger/documents.py): PubMed XML above all, which both the app's
collection import and batch tagging read, and the offsets of title and abstract."""

from __future__ import annotations

import io

import pytest

from curation.collections import CollectionStore
from curation.database import Database
from tagger.documents import (
    RecordProblem,
    TextDocument,
    jsonl_records,
    passages,
    pubmed_xml_records,
    text_lines_records,
)
from tests.batch_inputs import pubmed_xml


def read_xml(data: bytes) -> list[TextDocument | RecordProblem]:
    return list(pubmed_xml_records("pubmed26n0001.xml", io.BytesIO(data)))


def test_an_article_gives_its_pmid_title_and_abstract_sections_one_per_line() -> None:
    data = pubmed_xml([("31", "Renal <i>failure</i>.", ["Aim here.", "We  saw\nfever."])])
    [document] = read_xml(data)
    assert isinstance(document, TextDocument)
    assert (document.external_id, document.title) == ("31", "Renal failure.")
    assert document.text == "Aim here.\nWe saw fever."
    assert document.line == 3  # where its <PubmedArticle> starts


def test_bad_articles_are_problems_with_their_line_and_the_rest_is_read() -> None:
    data = pubmed_xml(
        [("1", "Fever.", ["One."]), ("", "No PMID.", ["Two."]), ("3", "", []), ("4", "", ["X."])]
    )
    outcomes = read_xml(data)
    assert [type(o).__name__ for o in outcomes] == [
        "TextDocument", "RecordProblem", "RecordProblem", "TextDocument",
    ]  # fmt: skip
    missing, empty = outcomes[1], outcomes[2]
    assert str(missing).startswith("pubmed26n0001.xml:6: the article has no PMID")
    assert str(empty).startswith("pubmed26n0001.xml:9: article 3 has no title and no abstract")
    assert outcomes[3].title is None and outcomes[3].text == "X."


def test_a_cut_short_file_keeps_the_articles_before_the_cut_and_names_the_line() -> None:
    articles = [(str(n), f"Title {n}.", [f"Abstract {n}."]) for n in range(1, 10)]
    outcomes = read_xml(pubmed_xml(articles, cut_short=True))
    *documents, problem = outcomes
    assert documents and all(isinstance(d, TextDocument) for d in documents)
    assert [d.external_id for d in documents] == [str(n) for n in range(1, len(documents) + 1)]
    assert isinstance(problem, RecordProblem) and problem.line is not None
    assert "the XML is malformed" in problem.message and "download the file again" in problem.fix


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"<PubmedArticleSet></PubmedArticleSet>", "the file holds no <PubmedArticle>"),
        (b"not xml at all", "the XML is malformed"),
    ],
)
def test_a_file_without_articles_is_one_problem(data: bytes, expected: str) -> None:
    [problem] = read_xml(data)
    assert isinstance(problem, RecordProblem) and expected in problem.message


def test_title_and_abstract_are_separate_passages_with_offsets_into_the_text() -> None:
    [document] = read_xml(pubmed_xml([("5", "Seizures.", ["Cocaine-induced seizures."])]))
    text = document.text_to_tag
    for passage, offset in passages(document.title, document.text):
        assert text[offset : offset + len(passage)] == passage


def test_jsonl_and_text_lines_name_the_line_of_each_bad_record() -> None:
    jsonl = b'{"id": 1, "text": "Fever."}\n{"id": 2}\n\n{oops\n'
    outcomes = jsonl_records("a.jsonl", io.BytesIO(jsonl))
    problems = [str(o) for o in outcomes if isinstance(o, RecordProblem)]
    assert problems[0].startswith("a.jsonl:2: the record has no text")
    assert problems[1].startswith("a.jsonl:4: the line is not valid JSON")
    lines = list(text_lines_records("b.txt", io.BytesIO(b"Fever.\n\ncaf\xe9\nRenal failure.\n")))
    assert [getattr(o, "external_id", None) for o in lines] == ["b:1", None, "b:4"]
    assert str(lines[1]).startswith("b.txt:3: the file is not valid UTF-8")


def test_a_collection_imports_pubmed_xml_keeping_good_articles(database: Database) -> None:
    store = CollectionStore(database)
    data = pubmed_xml([("11", "Fever.", ["Fever was seen."]), ("", "No PMID.", ["Lost."])])
    report = store.import_files("baseline", [("pubmed.xml", data)], imported_by="ada")
    assert report.added == 1 and report.files == 1
    assert [str(p) for p in report.problems] == [
        "pubmed.xml:6: the article has no PMID — give each PubmedArticle a MedlineCitation/PMID"
    ]
    [document] = store.documents_to_tag("v-none", limit=10)
    assert (document.title, document.text) == ("Fever.", "Fever was seen.")
