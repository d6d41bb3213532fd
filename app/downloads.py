"""Download buttons for exported documents: one per format, declared once.

The Collections page exports reviewed items and the Corrections page the corrections;
both turn them into :class:`curation.exports.ExportDocument` and show these buttons.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import streamlit as st

from curation import exports
from curation.exports import ExportDocument


@dataclass(frozen=True)
class ExportFormat:
    label: str
    suffix: str
    mime: str
    write: Callable[[Sequence[ExportDocument]], str | bytes]


EXPORT_FORMATS = (
    ExportFormat(
        "BIO (BC5CDR format)", "tsv", "text/tab-separated-values", exports.documents_to_bio
    ),
    ExportFormat(
        "JSONL with character offsets (Prodigy, doccano)",
        "jsonl",
        "application/jsonl",
        exports.documents_to_jsonl,
    ),
    ExportFormat(
        "spaCy DocBin (.spacy)", "spacy", "application/octet-stream", exports.documents_to_docbin
    ),
)


def export_buttons(stem: str, documents: Sequence[ExportDocument]) -> None:
    """A download button per format, side by side; files are named ``<stem>.<suffix>``."""
    for column, chosen in zip(st.columns(len(EXPORT_FORMATS)), EXPORT_FORMATS, strict=True):
        column.download_button(
            chosen.label,
            chosen.write(documents),
            file_name=f"{stem}.{chosen.suffix}",
            mime=chosen.mime,
            icon=":material/download:",
        )
