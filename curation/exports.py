"""Exports of reviewed collection items and of the current corrections.

Three formats, each for the reviewed items of a collection (:class:`ReviewItem`, from
:meth:`curation.review.ReviewQueue.reviewed_items`) and for corrections
(:class:`Correction`, e.g. :meth:`curation.corrections.CorrectionsStore.current`):

- **BIO** (``*_to_bio``): BC5CDR's ``word<TAB>label`` lines, a blank line after each
  sentence, as :meth:`CorrectionsStore.export_bio` writes (``""`` when there is nothing).
- **JSONL with character offsets** (``*_to_jsonl``): one document per line in the shape
  Prodigy and doccano read: ``text``; ``tokens`` (``text``, ``start``, ``end``, ``id``,
  ``ws``); ``spans`` (``start``, ``end``, ``token_start``, ``token_end`` inclusive,
  ``label``); doccano's ``label`` list of ``[start, end, type]``; and ``meta``.
- **spaCy DocBin** (``*_to_docbin``): the bytes of a ``.spacy`` file; each document a
  ``Doc`` built from its words and spaces, with its sentences and ``doc.ents``.

A document with text (a ``.txt`` or JSONL import) keeps it, so offsets index the text
the curator imported (title, blank line, abstract); one without (BIO imports, and
corrections, which store words only) gets text made from its words
(:func:`tagger.text.detokenize`), a line per sentence.

Example:

>>> from curation.corrections import Correction
>>> fix = Correction(1, ("Renal", "failure", "."), ("B-Disease", "I-Disease", "O"),
...                  ("O", "O", "O"), "text:1", 0, "v1", "ada", None, True)
>>> record = json.loads(corrections_to_jsonl([fix]))
>>> record["text"], record["label"]
('Renal failure.', [[0, 13, 'Disease']])
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from curation.corrections import Correction
from curation.review import ReviewItem
from tagger.bio import Sentence, entity_spans, format_bio

Offsets = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class ExportDocument:
    """A document as every format sees it: text, and words with offsets and labels."""

    text: str
    words: tuple[tuple[str, ...], ...]
    offsets: tuple[Offsets, ...]
    labels: tuple[tuple[str, ...], ...]
    meta: dict[str, Any]


def _from_words(
    words: Sequence[Sequence[str]], labels: Sequence[Sequence[str]], meta: dict[str, Any]
) -> ExportDocument:
    """Text made of the words, a line per sentence, with each word's offsets in it."""
    from tagger.text import detokenize

    lines: list[str] = []
    offsets: list[Offsets] = []
    position = 0
    for sentence in words:
        line, line_offsets = detokenize(sentence)
        offsets.append(tuple((start + position, end + position) for start, end in line_offsets))
        lines.append(line)
        position += len(line) + 1
    return ExportDocument(
        "\n".join(lines),
        tuple(tuple(sentence) for sentence in words),
        tuple(offsets),
        tuple(tuple(sentence) for sentence in labels),
        meta,
    )


def item_document(item: ReviewItem) -> ExportDocument:
    """A reviewed item as an export document, with its labels as the reviewer stored them."""
    meta = {
        "collection": item.collection,
        "external_id": item.external_id,
        "title": item.title,
        "source": item.source,
        "model_version": item.model_version,
        "reviewer": item.reviewer,
        "reviewed_at": item.reviewed_at.isoformat() if item.reviewed_at else None,
        "status": item.status,
    }
    words = [sentence.words for sentence in item.sentences]
    labels = [sentence.labels for sentence in item.sentences]
    if item.text is not None and all(s.offsets is not None for s in item.sentences):
        return ExportDocument(
            item.text,
            tuple(words),
            tuple(s.offsets for s in item.sentences if s.offsets is not None),
            tuple(labels),
            meta,
        )
    return _from_words(words, labels, meta)


def correction_document(correction: Correction) -> ExportDocument:
    meta = {
        "correction_id": correction.id,
        "source": correction.source,
        "sentence_index": correction.sentence_index,
        "model_version": correction.model_version,
        "annotator": correction.annotator,
        "created_at": correction.created_at.isoformat() if correction.created_at else None,
    }
    return _from_words([correction.words], [correction.labels], meta)


# ---------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------


def documents_to_bio(documents: Sequence[ExportDocument]) -> str:
    sentences = [
        Sentence(words, labels)
        for document in documents
        for words, labels in zip(document.words, document.labels, strict=True)
        if words
    ]
    return format_bio(sentences) if sentences else ""


def _tokens(document: ExportDocument) -> list[dict[str, Any]]:
    flat = [pair for sentence in document.offsets for pair in sentence]
    tokens = []
    for index, (start, end) in enumerate(flat):
        following = document.text[end : end + 1]
        tokens.append(
            {
                "text": document.text[start:end],
                "start": start,
                "end": end,
                "id": index,
                "ws": bool(following) and following.isspace(),
            }
        )
    return tokens


def _spans(document: ExportDocument) -> list[dict[str, Any]]:
    spans = []
    first_token = 0
    for offsets, labels in zip(document.offsets, document.labels, strict=True):
        for start, end, label in entity_spans(labels):
            spans.append(
                {
                    "start": offsets[start][0],
                    "end": offsets[end - 1][1],
                    "token_start": first_token + start,
                    "token_end": first_token + end - 1,  # inclusive, as Prodigy has it
                    "label": label,
                }
            )
        first_token += len(offsets)
    return spans


def document_record(document: ExportDocument) -> dict[str, Any]:
    """One JSONL record: Prodigy's tokens and spans, doccano's ``label``, and ``meta``."""
    spans = _spans(document)
    return {
        "text": document.text,
        "tokens": _tokens(document),
        "spans": spans,
        "label": [[span["start"], span["end"], span["label"]] for span in spans],
        "meta": document.meta,
    }


def documents_to_jsonl(documents: Sequence[ExportDocument]) -> str:
    return "".join(
        json.dumps(document_record(document), ensure_ascii=False) + "\n" for document in documents
    )


def documents_to_docbin(documents: Sequence[ExportDocument]) -> bytes:
    """The bytes of a ``.spacy`` file; ``doc.user_data["meta"]`` holds each one's meta."""
    from spacy.tokens import Doc, DocBin

    from tagger.text import spacy  # spaCy imported without PyTorch (see tagger.text)

    vocab = spacy.blank("en").vocab
    docbin = DocBin(store_user_data=True)
    for document in documents:
        tokens = _tokens(document)
        if not tokens:
            continue
        starts = [index == 0 for sentence in document.offsets for index in range(len(sentence))]
        doc = Doc(
            vocab,
            words=[token["text"] for token in tokens],
            spaces=[token["ws"] for token in tokens],
            sent_starts=starts,
            ents=[label for sentence in document.labels for label in sentence],
        )
        doc.user_data["meta"] = document.meta
        docbin.add(doc)
    return docbin.to_bytes()


# ---------------------------------------------------------------------------
# The public shortcuts
# ---------------------------------------------------------------------------


def items_to_bio(items: Sequence[ReviewItem]) -> str:
    """Reviewed items as BIO (``""`` when there are none)."""
    return documents_to_bio([item_document(item) for item in items])


def items_to_jsonl(items: Sequence[ReviewItem]) -> str:
    """Reviewed items as JSONL with character offsets, one item per line."""
    return documents_to_jsonl([item_document(item) for item in items])


def items_to_docbin(items: Sequence[ReviewItem]) -> bytes:
    """Reviewed items as a spaCy ``DocBin`` (the bytes of a ``.spacy`` file)."""
    return documents_to_docbin([item_document(item) for item in items])


def corrections_to_bio(corrections: Sequence[Correction]) -> str:
    """Corrections as BIO, one sentence each (``store.current()``: as ``export_bio``)."""
    return documents_to_bio([correction_document(c) for c in corrections])


def corrections_to_jsonl(corrections: Sequence[Correction]) -> str:
    """Corrections as JSONL with character offsets, one sentence per line."""
    return documents_to_jsonl([correction_document(c) for c in corrections])


def corrections_to_docbin(corrections: Sequence[Correction]) -> bytes:
    """Corrections as a spaCy ``DocBin``, one ``Doc`` per sentence."""
    return documents_to_docbin([correction_document(c) for c in corrections])
