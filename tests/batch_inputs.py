"""A small mixed input for batch tagging: JSONL, PubMed XML (plain and gzip) and text.

Each format holds good records and bad ones at known lines, so tests can check what is
tagged, what is refused and where.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from tests.tiny import tiny_corpus


def _sentences(start: int, count: int) -> list[str]:
    corpus = tiny_corpus(repeat=4)
    return [" ".join(corpus[(start + k) % len(corpus)].words) for k in range(count)]


def pubmed_xml(articles: list[tuple[str, str, list[str]]], *, cut_short: bool = False) -> bytes:
    """A PubmedArticleSet with (pmid, title, abstract sections) articles."""
    parts = ['<?xml version="1.0" encoding="utf-8"?>', "<PubmedArticleSet>"]
    for pmid, title, sections in articles:
        abstract = "".join(
            f'<AbstractText Label="S{n}">{text}</AbstractText>' for n, text in enumerate(sections)
        )
        pmid_element = f'<PMID Version="1">{pmid}</PMID>' if pmid else ""
        parts.append(
            "<PubmedArticle>\n<MedlineCitation>"
            f"{pmid_element}<Article><ArticleTitle>{title}</ArticleTitle>"
            f"<Abstract>{abstract}</Abstract></Article></MedlineCitation>\n</PubmedArticle>"
        )
    parts.append("</PubmedArticleSet>")
    text = "\n".join(parts)
    if cut_short:
        text = text[: len(text) * 2 // 3]
    return text.encode("utf-8")


def write_mixed_inputs(folder: Path, documents: int = 12) -> list[Path]:
    """Five inputs; 2 bad JSONL records (lines 3, 5), 1 bad XML article, 1 bad text line."""
    folder.mkdir(parents=True, exist_ok=True)
    sentences = _sentences(0, documents * 3)
    records = []
    for n in range(documents):
        records.append(
            json.dumps(
                {
                    "id": f"J{n}",
                    "title": sentences[3 * n],
                    "text": " ".join(sentences[3 * n + 1 : 3 * n + 3]),
                }
            )
        )
    records.insert(2, "{not json")
    records.insert(4, json.dumps({"id": "J-empty", "text": ""}))
    jsonl = folder / "export.jsonl"
    jsonl.write_text("\n".join(records) + "\n", encoding="utf-8")
    articles = [
        (str(1000 + n), sentences[n], [sentences[n + 1], sentences[n + 2]])
        for n in range(documents)
    ]
    articles.insert(3, ("", "A title without a PMID", ["text"]))
    xml = folder / "pubmed26n0001.xml"
    xml.write_bytes(pubmed_xml(articles))
    gz = folder / "pubmed26n0002.xml.gz"
    gz.write_bytes(gzip.compress(pubmed_xml(articles[:5])))
    lines = folder / "sentences.txt"
    lines.write_bytes(("\n".join(sentences[:documents]) + "\n\n").encode() + b"bad \xff byte\n")
    abstracts = folder / "abstracts"
    abstracts.mkdir(exist_ok=True)
    for n in range(4):
        (abstracts / f"a{n}.txt").write_text(f"{sentences[n]}\n\n{sentences[n + 1]}\n")
    return [jsonl, xml, gz, lines, abstracts]
