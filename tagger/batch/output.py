"""The output folder of a batch run: one Parquet file per input, written whole or not at all.

Layout::

    OUT/<input name>.parquet        the spans of one input (schema :data:`SPAN_SCHEMA`)
    OUT/_manifests/<input>.json     written after its Parquet: the input is complete
    OUT/_errors.jsonl               every bad record of every input: file, line, why, fix

``pandas.read_parquet(OUT)`` reads all inputs at once (Parquet readers skip names that
start with ``_``). An input counts as complete when its manifest names the same input
size and modification time and the same model version; a rerun skips it. A killed run
leaves at most the inputs in flight without a manifest, and those are tagged again:
nothing is lost, and nothing is written twice, because an input's rows are only ever
written in one piece.

Example:

>>> import pathlib, tempfile
>>> out = OutputFolder(pathlib.Path(tempfile.mkdtemp()), "v1")
>>> sorted(name for name, _ in SPAN_SCHEMA_FIELDS)
['document_id', 'end', 'input', 'label', 'model_version', 'score', 'start', 'text']
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tagger.batch.sources import END_OF_INPUT, InputSource

MANIFESTS_DIR = "_manifests"
ERRORS_FILE = "_errors.jsonl"
SPAN_SCHEMA_FIELDS = (
    ("input", "string"),
    ("document_id", "string"),
    ("start", "int32"),
    ("end", "int32"),
    ("text", "string"),
    ("label", "string"),
    ("score", "float32"),
    ("model_version", "string"),
)


def span_schema() -> Any:
    import pyarrow as pa

    return pa.schema([(name, getattr(pa, kind)()) for name, kind in SPAN_SCHEMA_FIELDS])


@dataclass
class InputResult:
    """What one input gave: its documents, words and spans, and its bad records."""

    name: str
    documents: int
    words: int
    spans: int
    problems: list[dict[str, Any]] = field(default_factory=list)


class OutputFolder:
    """Writes and recognises complete inputs in ``out`` for one model version."""

    def __init__(self, out: Path, model_version: str) -> None:
        self.out = Path(out)
        self.model_version = model_version

    def parquet_path(self, name: str) -> Path:
        return self.out / f"{name}.parquet"

    def manifest_path(self, name: str) -> Path:
        return self.out / MANIFESTS_DIR / f"{name}.json"

    def manifest(self, name: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.manifest_path(name).read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def is_complete(self, source: InputSource) -> bool:
        manifest = self.manifest(source.name)
        return (
            manifest is not None
            and manifest.get("fingerprint") == source.fingerprint()
            and manifest.get("model_version") == self.model_version
            and self.parquet_path(source.name).is_file()
        )

    def write(
        self,
        source: InputSource,
        documents: dict[int, tuple[str, str, int]],
        problems: list[dict[str, Any]],
    ) -> InputResult:
        """One input's rows, in document order, then its manifest (both atomically).

        ``documents`` maps each document's index to its id, spans JSON and word count.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns: dict[str, list[Any]] = {name: [] for name, _ in SPAN_SCHEMA_FIELDS}
        words = 0
        for index in sorted(documents):
            document_id, spans_json, document_words = documents[index]
            words += document_words
            for start, end, text, label, score in json.loads(spans_json):
                for name, value in zip(
                    columns,
                    (source.name, document_id, start, end, text, label, score, self.model_version),
                    strict=True,
                ):
                    columns[name].append(value)
        table = pa.Table.from_pydict(columns, schema=span_schema())
        self.out.mkdir(parents=True, exist_ok=True)
        _replace_atomically(
            self.parquet_path(source.name), lambda path: pq.write_table(table, path)
        )
        result = InputResult(source.name, len(documents), words, table.num_rows, problems)
        manifest = {
            "input": source.path,
            "kind": source.kind,
            "fingerprint": source.fingerprint(),
            "model_version": self.model_version,
            "documents": result.documents,
            "words": result.words,
            "spans": result.spans,
            "problems": problems,
        }
        self.manifest_path(source.name).parent.mkdir(parents=True, exist_ok=True)
        _replace_atomically(
            self.manifest_path(source.name),
            lambda path: Path(path).write_text(json.dumps(manifest, indent=1), encoding="utf-8"),
        )
        return result

    def write_errors_file(self, sources: Sequence[InputSource]) -> tuple[int, Path]:
        """Every bad record of the inputs, from their manifests; returns the count and path."""
        lines = [
            json.dumps(problem, ensure_ascii=False)
            for source in sources
            for problem in (self.manifest(source.name) or {}).get("problems", [])
        ]
        path = self.out / ERRORS_FILE
        self.out.mkdir(parents=True, exist_ok=True)
        _replace_atomically(
            path,
            lambda staging: Path(staging).write_text(
                "".join(line + "\n" for line in lines), encoding="utf-8"
            ),
        )
        return len(lines), path


def _replace_atomically(path: Path, write: Callable[[str], None]) -> None:
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        write(staging)
        os.chmod(staging, 0o644)
        os.replace(staging, path)
    finally:
        Path(staging).unlink(missing_ok=True)


class Collector:
    """Gathers tagged rows, in any order and batching, and writes each input once complete.

    A row seen twice (a batch retried after its worker died) is kept once, by its index.
    """

    def __init__(
        self,
        folder: OutputFolder,
        sources: Iterable[InputSource],
        on_documents: Callable[[int], None] | None = None,
    ) -> None:
        self.folder = folder
        self.sources = {source.name: source for source in sources}
        self.on_documents = on_documents
        self.documents: dict[str, dict[int, tuple[str, str, int]]] = {
            name: {} for name in self.sources
        }
        self.expected: dict[str, int] = {}
        self.problems: dict[str, list[dict[str, Any]]] = {}
        self.results: list[InputResult] = []

    def add(self, batch: dict[str, np.ndarray]) -> None:
        touched: set[str] = set()
        new_documents = 0
        for row, index in enumerate(np.asarray(batch["index"]).tolist()):
            name = str(batch["input"][row])
            if name not in self.documents:
                continue  # already written (a retried batch of a finished input)
            touched.add(name)
            if index == END_OF_INPUT:
                self.expected[name] = int(batch["documents"][row])
                self.problems[name] = json.loads(str(batch["problems"][row]) or "[]")
            elif index not in self.documents[name]:
                new_documents += 1
                self.documents[name][index] = (
                    str(batch["document_id"][row]),
                    str(batch["spans"][row]),
                    int(batch["words"][row]),
                )
        if self.on_documents is not None and new_documents:
            self.on_documents(new_documents)
        for name in sorted(touched):
            if self.expected.get(name) == len(self.documents[name]):
                self.results.append(
                    self.folder.write(
                        self.sources[name], self.documents.pop(name), self.problems[name]
                    )
                )

    def unfinished(self) -> list[str]:
        return sorted(self.documents)
