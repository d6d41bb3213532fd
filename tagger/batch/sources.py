"""The inputs of a batch run: which files, in which format, and their documents as rows.

An input is a JSONL file (``.jsonl``), PubMed XML (``.xml``, ``.xml.gz``), a text file
with one document per line (``.txt``), or a folder of text files with one abstract each
(``*.txt`` inside it, sorted; the folder is one input). Each input is a unit of output and
of resumption: its spans go to one Parquet file named after it.

Rows are what both engines pass from reading to tagging: one row per document, then one
*end row* per input (``index == -1``) that carries the document count and the bad
records, so that whoever collects the tagged rows knows when an input is complete.

Example:

>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "a.jsonl").write_text('{"id": 7, "text": "Fever."}\\nnot json\\n')
>>> [source] = discover_inputs([folder / "a.jsonl"])
>>> source.kind, source.name
('jsonl', 'a.jsonl')
>>> [(row["index"], row["document_id"], row["documents"]) for row in source_rows(source)]
[(0, '7', 0), (-1, '', 1)]
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from tagger.documents import (
    RecordProblem,
    TextDocument,
    jsonl_records,
    pubmed_xml_records,
    text_file_document,
    text_lines_records,
)
from tagger.errors import TaggerError

END_OF_INPUT = -1  # the index of an input's end row
ESTIMATE_SAMPLE_BYTES = 1 << 20  # read to estimate an input's documents
ROW_COLUMNS = ("input", "index", "document_id", "title", "text", "documents", "problems")

Record = TextDocument | RecordProblem
RecordReader = Callable[["InputSource"], Iterator[Record]]


class BatchInputError(TaggerError, ValueError):
    """An input that a batch run cannot take; the message names the file and the fix."""


@dataclass(frozen=True)
class InputSource:
    """One input: its path, its format (a key of :data:`INPUT_READERS`) and its name.

    ``name`` is the file or folder name; the input's output is ``<name>.parquet``.
    """

    path: str
    kind: str
    name: str

    def fingerprint(self) -> dict[str, int]:
        """Size and modification time: an input that changed is tagged again."""
        path = Path(self.path)
        if path.is_dir():
            files = sorted(path.glob("*.txt"))
            stats = [file.stat() for file in files]
            return {
                "files": len(files),
                "bytes": sum(stat.st_size for stat in stats),
                "mtime_ns": max((stat.st_mtime_ns for stat in stats), default=0),
            }
        stat = path.stat()
        return {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _open_binary(path: str) -> AbstractContextManager[BinaryIO]:
    if path.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _read_jsonl(source: InputSource) -> Iterator[Record]:
    with _open_binary(source.path) as stream:
        yield from jsonl_records(source.name, stream)


def _read_pubmed_xml(source: InputSource) -> Iterator[Record]:
    try:
        with _open_binary(source.path) as stream:
            yield from pubmed_xml_records(source.name, stream)
    except (OSError, EOFError) as error:  # a cut-short .gz
        yield RecordProblem(
            source.name,
            None,
            f"the file cannot be read to its end ({error}); the articles after that point "
            "were not read",
            "download the file again",
        )


def _read_text_lines(source: InputSource) -> Iterator[Record]:
    with _open_binary(source.path) as stream:
        yield from text_lines_records(source.name, stream)


def _read_text_folder(source: InputSource) -> Iterator[Record]:
    files = sorted(Path(source.path).glob("*.txt"))
    if not files:
        yield RecordProblem(source.name, None, "the folder holds no .txt file", "add abstracts")
    for file in files:
        yield text_file_document(f"{source.name}/{file.name}", file.read_bytes())


# The formats, by the `kind` that `source_kind` gives an input.
INPUT_READERS: dict[str, RecordReader] = {
    "jsonl": _read_jsonl,
    "pubmed-xml": _read_pubmed_xml,
    "text-lines": _read_text_lines,
    "text-folder": _read_text_folder,
}
SUFFIX_KINDS = {
    ".jsonl": "jsonl",
    ".xml": "pubmed-xml",
    ".xml.gz": "pubmed-xml",
    ".txt": "text-lines",
}


def source_kind(path: Path) -> str:
    """The format of an input, from its suffix (a folder: a folder of text files)."""
    if path.is_dir():
        return "text-folder"
    name = path.name.lower()
    for suffix, kind in sorted(SUFFIX_KINDS.items(), key=lambda item: -len(item[0])):
        if name.endswith(suffix):
            return kind
    raise BatchInputError(
        f"{path.name} is not a format batch tagging reads",
        where=str(path),
        fix='give .jsonl ({"id", "title", "text"} per line), PubMed XML (.xml, .xml.gz), '
        ".txt (one document per line) or a folder of .txt files (one abstract each)",
    )


def discover_inputs(paths: Sequence[str | os.PathLike[str]]) -> list[InputSource]:
    """The inputs named on the command line, checked before anything is tagged."""
    if not paths:
        raise BatchInputError("no input was given", fix="name at least one file or folder")
    sources: list[InputSource] = []
    seen: dict[str, str] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise BatchInputError("the input does not exist", where=str(path), fix="check the path")
        kind = source_kind(path)
        name = path.resolve().name
        if name in seen:
            raise BatchInputError(
                f"two inputs are named {name} ({seen[name]} and {path}); each input's "
                f"output is <name>.parquet",
                fix="rename one of them, or tag them into different --out folders",
            )
        seen[name] = str(path)
        sources.append(InputSource(str(path), kind, name))
    return sources


def document_row(source: InputSource, index: int, document: TextDocument) -> dict[str, Any]:
    return {
        "input": source.name,
        "index": index,
        "document_id": document.external_id,
        "title": document.title or "",
        "text": document.text,
        "documents": 0,
        "problems": "",
    }


def end_row(
    source: InputSource, documents: int, problems: Sequence[RecordProblem]
) -> dict[str, Any]:
    return {
        "input": source.name,
        "index": END_OF_INPUT,
        "document_id": "",
        "title": "",
        "text": "",
        "documents": documents,
        "problems": json.dumps([problem.to_json() for problem in problems], ensure_ascii=False),
    }


def source_rows(source: InputSource) -> Iterator[dict[str, Any]]:
    """Every document of an input as a row, in file order, then its end row."""
    documents = 0
    problems: list[RecordProblem] = []
    for record in INPUT_READERS[source.kind](source):
        if isinstance(record, RecordProblem):
            problems.append(record)
        else:
            yield document_row(source, documents, record)
            documents += 1
    yield end_row(source, documents, problems)


def rows_of_source_item(item: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """:func:`source_rows` for a row ``{"path", "kind", "name"}`` (Ray Data's flat_map)."""
    yield from source_rows(InputSource(str(item["path"]), str(item["kind"]), str(item["name"])))


def estimate_documents(source: InputSource, sample_bytes: int = ESTIMATE_SAMPLE_BYTES) -> int:
    """About how many documents an input holds, for the progress bar's ETA.

    Counted in the input's first ``sample_bytes`` (decompressed) and scaled by the file's
    size, so a run over a PubMed baseline (a thousand gzipped files) starts at once
    instead of decompressing everything twice; a smaller file is counted exactly.

    Args:
        source: the input.
        sample_bytes: how much of it to read.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = path.write_text("Fever.\\n\\nCough.\\n" * 1000)
    >>> estimate_documents(InputSource(str(path), "text-lines", "a.txt"))
    2000
    >>> 1800 < estimate_documents(InputSource(str(path), "text-lines", "a.txt"), 1024) < 2200
    True
    """
    if source.kind == "text-folder":
        return sum(1 for _ in Path(source.path).glob("*.txt"))
    size = os.path.getsize(source.path)
    with open(source.path, "rb") as raw:
        stream: BinaryIO = gzip.GzipFile(fileobj=raw) if source.path.endswith(".gz") else raw
        try:
            sample = stream.read(sample_bytes + 1)
        except (OSError, EOFError):
            return 0  # reading it properly reports this
        read = raw.tell()  # bytes of the file behind the sample (compressed ones for .gz)
    if source.kind == "pubmed-xml":
        count = sample.count(b"<PubmedArticle>")
    else:
        count = sum(1 for line in sample.splitlines() if line.strip())
    if len(sample) <= sample_bytes or not read:
        return count
    return round(count * size / read)
