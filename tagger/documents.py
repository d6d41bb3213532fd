"""Documents to tag: records of JSONL exports, plain-text files and PubMed baseline XML.

Every reader yields :class:`TextDocument` for a good record and :class:`RecordProblem`
(file, line, what is wrong, how to fix it) for a bad one, so a caller keeps the good
records and reports the bad ones: the app's collection import (``curation.collections``)
and batch tagging (``tagger.batch``) read files the same way.

Formats:

- JSONL: one ``{"id", "title", "text"}`` object per line; ``id`` a number or a string
  (missing: ``<file>:<line>``), ``title`` optional, ``text`` required; blank lines skipped.
- A text file holding one abstract: the first line is its title when it is at most
  :data:`MAX_TITLE_CHARS` characters and a blank line and more text follow.
- PubMed XML (the annual baseline and the daily update files, ``.xml`` or ``.xml.gz``):
  each ``PubmedArticle`` gives its PMID, its ``ArticleTitle`` and its ``AbstractText``
  sections, one per line; the line of a record is where its ``<PubmedArticle>`` starts.

A document's *text* is its title, a blank line and its abstract (:func:`document_text`);
character offsets index it. Title and abstract are tagged as separate passages
(:func:`passages`), so that context never crosses from one into the other.

Example:

>>> import io
>>> xml = b'''<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>42</PMID>
... <Article><ArticleTitle>Renal failure.</ArticleTitle><Abstract>
... <AbstractText Label="AIM">We report a case.</AbstractText></Abstract></Article>
... </MedlineCitation></PubmedArticle></PubmedArticleSet>'''
>>> [document] = pubmed_xml_records("baseline.xml", io.BytesIO(xml))
>>> document.external_id, document.line, document.text_to_tag
('42', 1, 'Renal failure.\\n\\nWe report a case.')
>>> [str(problem) for problem in jsonl_records("a.jsonl", io.BytesIO(b'{"id": 1}\\n'))]
['a.jsonl:1: the record has no text — give each record a non-empty "text"']
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, BinaryIO
from xml.etree.ElementTree import Element, TreeBuilder
from xml.parsers import expat

from tagger.bio import RESAVE_AS_UTF8, utf16_problem

MAX_TITLE_CHARS = 300
MAX_EXTERNAL_ID_CHARS = 200
TITLE_SEPARATOR = "\n\n"
JSONL_SHAPE = 'one {"id": ..., "title": ..., "text": ...} object per line'
PUBMED_ARTICLE = "PubmedArticle"
_READ_BYTES = 1 << 16
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class RecordProblem:
    """One record (or file) that was not read, and why.

    >>> str(RecordProblem("a.jsonl", 3, "the record has no text", "add a text field"))
    'a.jsonl:3: the record has no text — add a text field'
    >>> str(RecordProblem("b.txt", None, "the file is empty"))
    'b.txt: the file is empty'
    """

    file: str
    line: int | None
    message: str
    fix: str = ""

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}" + (f" — {self.fix}" if self.fix else "")

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "message": self.message, "fix": self.fix}


@dataclass(frozen=True)
class TextDocument:
    """One good record: its id, optional title and text, and where it came from."""

    external_id: str
    title: str | None
    text: str
    file: str
    line: int

    @property
    def text_to_tag(self) -> str:
        """Title, a blank line and the text: what span offsets index."""
        return document_text(self.title, self.text) or ""


def document_text(title: str | None, text: str | None) -> str | None:
    """The text that a document's word offsets index: title, a blank line, the abstract.

    >>> document_text("Title", "Body.")
    'Title\\n\\nBody.'
    >>> document_text(None, "Body.")
    'Body.'
    """
    if text is None:
        return None
    return f"{title}{TITLE_SEPARATOR}{text}" if title else text


def passages(title: str | None, text: str) -> list[tuple[str, int]]:
    """The passages tagged separately, each with its offset in :func:`document_text`.

    >>> passages("Title", "Body.")
    [('Title', 0), ('Body.', 7)]
    """
    if not title:
        return [(text, 0)]
    return [(title, 0), (text, len(title) + len(TITLE_SEPARATOR))]


def decode_text(file: str, data: bytes) -> str | RecordProblem:
    """UTF-8 text with ``\\n`` line ends (BOM dropped), or the problem naming the line."""
    utf16 = utf16_problem(data)
    if utf16 is not None:
        return RecordProblem(file, None, utf16, RESAVE_AS_UTF8)
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        return RecordProblem(
            file,
            line,
            f"the file is not valid UTF-8 (byte 0x{data[error.start]:02x})",
            RESAVE_AS_UTF8,
        )
    return text.removeprefix("\ufeff")


def text_problem(field_name: str, value: str) -> str | None:
    """Why ``value`` cannot be stored or tagged (a lone surrogate, a NUL), or None."""
    found = _SURROGATE.search(value)
    if found is not None:
        return (
            f"the {field_name} holds a lone surrogate U+{ord(found.group()):04X} "
            f"at character {found.start() + 1}"
        )
    if "\x00" in value:
        return f"the {field_name} holds a NUL character"
    return None


def file_stem(file: str) -> str:
    return PurePath(file).stem or file


def split_title(content: str) -> tuple[str | None, str]:
    """The first line is the title when it is short and a blank line and text follow it.

    >>> split_title("A title\\n\\nThe abstract.\\n")
    ('A title', 'The abstract.')
    >>> split_title("An abstract on one line.\\nAnd another.")
    (None, 'An abstract on one line.\\nAnd another.')
    """
    content = content.strip()
    first, separator, rest = content.partition("\n")
    if separator and rest.startswith("\n") and rest.strip() and len(first) <= MAX_TITLE_CHARS:
        return first.strip() or None, rest.strip()
    return None, content


def text_file_document(file: str, data: bytes) -> TextDocument | RecordProblem:
    """A text file as one abstract, its id the file name without the extension."""
    decoded = decode_text(file, data)
    if isinstance(decoded, RecordProblem):
        return decoded
    problem = text_problem("text", decoded)
    if not decoded.strip() or problem is not None:
        return RecordProblem(
            file, None, problem or "the file is empty", "give the abstract as UTF-8 text"
        )
    title, text = split_title(decoded)
    return TextDocument(file_stem(file), title, text, file, 1)


def record_id(record: dict[str, Any], file: str, line: int) -> str | RecordProblem:
    """A record's ``id`` as text (missing: ``<file>:<line>``), or why it is unusable."""
    raw = record.get("id")
    if raw is None:
        return f"{file}:{line}"
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        return RecordProblem(
            file,
            line,
            f"the id {raw!r} is not a number or a string",
            'give each id as 123 or "PMID123"',
        )
    external_id = str(raw).strip()
    if not external_id or len(external_id) > MAX_EXTERNAL_ID_CHARS:
        return RecordProblem(
            file,
            line,
            f"the id {raw!r} is empty or longer than {MAX_EXTERNAL_ID_CHARS} characters",
            "give each record a short, non-empty id",
        )
    return external_id


def jsonl_record(file: str, line: int, raw: bytes) -> TextDocument | RecordProblem | None:
    """One JSONL line: a document, the problem with it, or None for a blank line."""
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return RecordProblem(
            file,
            line,
            f"the line is not valid UTF-8 (byte 0x{raw[error.start]:02x})",
            RESAVE_AS_UTF8,
        )
    if not decoded.strip():
        return None
    try:
        record = json.loads(decoded)
    except json.JSONDecodeError as error:
        return RecordProblem(
            file,
            line,
            f"the line is not valid JSON ({error.msg} at column {error.colno})",
            f"write {JSONL_SHAPE}",
        )
    if not isinstance(record, dict):
        return RecordProblem(
            file,
            line,
            f"the line is a JSON {type(record).__name__}, not an object",
            f"write {JSONL_SHAPE}",
        )
    external_id = record_id(record, file, line)
    if isinstance(external_id, RecordProblem):
        return external_id
    text, title = record.get("text"), record.get("title")
    if not isinstance(text, str) or not text.strip():
        return RecordProblem(
            file, line, "the record has no text", 'give each record a non-empty "text"'
        )
    if title is not None and not isinstance(title, str):
        return RecordProblem(
            file,
            line,
            f"the title {title!r} is not a string",
            'give "title" as text or leave it out',
        )
    for name, value in (("text", text), ("title", title or "")):
        problem = text_problem(name, value)
        if problem is not None:
            return RecordProblem(file, line, problem, "remove the character and try again")
    clean_title = (title or "").strip() or None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return TextDocument(external_id, clean_title, text, file, line)


def jsonl_records(file: str, stream: BinaryIO) -> Iterator[TextDocument | RecordProblem]:
    """The records of a JSONL stream, read line by line (any size of file)."""
    found = False
    for number, raw in enumerate(stream, start=1):
        if number == 1:
            utf16 = utf16_problem(raw)
            if utf16 is not None:
                yield RecordProblem(file, None, utf16, RESAVE_AS_UTF8)
                return
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        outcome = jsonl_record(file, number, raw.rstrip(b"\r\n"))
        if outcome is not None:
            found = True
            yield outcome
    if not found:
        yield RecordProblem(file, None, "the file is empty", f"write {JSONL_SHAPE}")


def text_lines_records(file: str, stream: BinaryIO) -> Iterator[TextDocument | RecordProblem]:
    """A text file with one document per non-empty line, ids ``<file stem>:<line>``."""
    stem = file_stem(file)
    found = False
    for number, raw in enumerate(stream, start=1):
        decoded = decode_text(file, raw.removeprefix(b"\xef\xbb\xbf") if number == 1 else raw)
        if isinstance(decoded, RecordProblem):
            yield RecordProblem(file, number, decoded.message, decoded.fix)
            continue
        text = decoded.strip()
        if not text:
            continue
        problem = text_problem("line", text)
        if problem is not None:
            yield RecordProblem(file, number, problem, "remove the character and try again")
            continue
        found = True
        yield TextDocument(f"{stem}:{number}", None, text, file, number)
    if not found:
        yield RecordProblem(file, None, "the file has no text", "write one document per line")


def pubmed_xml_records(file: str, stream: BinaryIO) -> Iterator[TextDocument | RecordProblem]:
    """The articles of a PubMed XML stream, parsed incrementally (a baseline file whole
    would take gigabytes as a tree). Malformed XML ends the file with one problem naming
    its line; the articles before it are kept."""
    parser = expat.ParserCreate()
    parser.buffer_text = True
    collector = _ArticleCollector(file, parser)
    parser.StartElementHandler = collector.start
    parser.EndElementHandler = collector.end
    parser.CharacterDataHandler = collector.data
    articles = 0
    while True:
        chunk = stream.read(_READ_BYTES)
        try:
            parser.Parse(chunk, not chunk)
        except expat.ExpatError as error:
            yield from collector.take()
            yield RecordProblem(
                file,
                error.lineno,
                f"the XML is malformed ({expat.ErrorString(error.code)}, column "
                f"{error.offset + 1}); the articles after this point were not read",
                "download the file again (a cut-short download ends like this), or give "
                "PubMed XML (PubmedArticleSet)",
            )
            return
        for record in collector.take():
            articles += isinstance(record, TextDocument)
            yield record
        if not chunk:
            break
    if not articles and not collector.seen_articles:
        yield RecordProblem(
            file,
            None,
            f"the file holds no <{PUBMED_ARTICLE}>",
            "give PubMed XML (PubmedArticleSet)",
        )


class _ArticleCollector:
    """expat events to one small tree per ``PubmedArticle``, with the line it starts on."""

    def __init__(self, file: str, parser: Any) -> None:
        self.file = file
        self.parser = parser
        self.builder: TreeBuilder | None = None
        self.line = 0
        self.seen_articles = 0
        self.ready: list[TextDocument | RecordProblem] = []

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        if self.builder is None and tag == PUBMED_ARTICLE:
            self.builder = TreeBuilder()
            self.line = self.parser.CurrentLineNumber
        if self.builder is not None:
            self.builder.start(tag, attributes)

    def end(self, tag: str) -> None:
        if self.builder is None:
            return
        self.builder.end(tag)
        if tag == PUBMED_ARTICLE:
            element = self.builder.close()
            self.builder = None
            self.seen_articles += 1
            self.ready.append(_article(element, self.file, self.line))

    def data(self, text: str) -> None:
        if self.builder is not None:
            self.builder.data(text)

    def take(self) -> list[TextDocument | RecordProblem]:
        ready, self.ready = self.ready, []
        return ready


def _flat_text(element: Element | None) -> str:
    """The text of an element with its inline markup (``<i>``, ``<sup>``) dropped."""
    if element is None:
        return ""
    return " ".join("".join(element.itertext()).split())


def _article(element: Element, file: str, line: int) -> TextDocument | RecordProblem:
    pmid = _flat_text(element.find("MedlineCitation/PMID"))
    if not pmid:
        return RecordProblem(
            file, line, "the article has no PMID", "give each PubmedArticle a MedlineCitation/PMID"
        )
    article = element.find("MedlineCitation/Article")
    title = _flat_text(article.find("ArticleTitle") if article is not None else None)
    sections = (
        [_flat_text(section) for section in article.iterfind("Abstract/AbstractText")]
        if article is not None
        else []
    )
    abstract = "\n".join(section for section in sections if section)
    if not title and not abstract:
        return RecordProblem(
            file, line, f"article {pmid} has no title and no abstract", "nothing to tag; skip it"
        )
    for name, value in (("title", title), ("abstract", abstract)):
        problem = text_problem(name, value)
        if problem is not None:
            return RecordProblem(file, line, f"article {pmid}: {problem}", "fix the record")
    if not abstract:
        return TextDocument(pmid, None, title, file, line)
    return TextDocument(pmid, title or None, abstract, file, line)
