"""Tag a batch of document rows: the one piece of code both engines run.

:class:`DocumentTagger` is a Ray Data callable class (``map_batches`` makes one per actor,
so each actor loads the model once and keeps its own ONNX Runtime session) and the local
engine calls it the same way in-process. It takes a batch of rows (columns
:data:`tagger.batch.sources.ROW_COLUMNS`, as numpy arrays) and gives one row per input
row: the document's spans as JSON (``[[start, end, text, label, score], ...]``, offsets
into title, blank line, abstract) and its word count; end rows pass through.

Example:

>>> import numpy as np
>>> batch = {"input": np.array(["a.jsonl"]), "index": np.array([0]),
...          "document_id": np.array(["7"]), "title": np.array([""]),
...          "text": np.array(["Cocaine-induced seizures."]), "documents": np.array([0]),
...          "problems": np.array([""])}
>>> tagged = DocumentTagger(str(tiny_model_dir))(batch)
>>> sorted(tagged), int(tagged["words"][0])
(['document_id', 'documents', 'index', 'input', 'model_version', 'problems', 'spans', 'words'], 5)
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from tagger.batch.sources import END_OF_INPUT
from tagger.documents import passages
from tagger.spans import spans_of
from tagger.tagger import Tagger

TAGGED_COLUMNS = (
    "input", "index", "document_id", "documents", "problems", "spans", "words", "model_version",
)  # fmt: skip


class DocumentTagger:
    """Loads a model once; each call tags one batch of document rows.

    Args:
        model: a model folder (resolved by the driver, so every worker tags with the same
            version even if the registry's version in service changes meanwhile).
        threads: windows ONNX Runtime runs at once in this worker (None: all cores).
    """

    def __init__(self, model: str, threads: int | None = None) -> None:
        self.tagger = Tagger.load(model, threads=threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        indices = np.asarray(batch["index"]).tolist()
        documents = [row for row, index in enumerate(indices) if index != END_OF_INPUT]
        texts: list[str] = []
        owners: list[tuple[int, int]] = []  # (row, offset of the passage in its document)
        for row in documents:
            for passage, offset in passages(str(batch["title"][row]), str(batch["text"][row])):
                texts.append(passage)
                owners.append((row, offset))
        spans: dict[int, list[list[Any]]] = {row: [] for row in documents}
        words = dict.fromkeys(documents, 0)
        analyzed = self.tagger.analyze_many(texts)
        for passage, (row, offset), sentences in zip(texts, owners, analyzed, strict=True):
            words[row] += sum(len(sentence.words) for sentence in sentences)
            spans[row] += [
                [span.start + offset, span.end + offset, span.text, span.label, span.score]
                for span in spans_of(passage, sentences)
            ]
        version = self.tagger.version
        return {
            "input": np.asarray(batch["input"], dtype=object),
            "index": np.asarray(indices, dtype=np.int64),
            "document_id": np.asarray(batch["document_id"], dtype=object),
            "documents": np.asarray(batch["documents"], dtype=np.int64),
            "problems": np.asarray(batch["problems"], dtype=object),
            "spans": np.asarray(
                [json.dumps(spans.get(row, []), ensure_ascii=False) for row in range(len(indices))],
                dtype=object,
            ),
            "words": np.asarray([words.get(row, 0) for row in range(len(indices))], np.int64),
            "model_version": np.asarray([version] * len(indices), dtype=object),
        }
