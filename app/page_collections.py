"""Collections: import many documents at once, watch them being tagged, export the reviewed.

A curator names a collection and drops files on the page: ``.txt`` files (one abstract
each), ``.jsonl`` files of ``{"id", "title", "text"}`` records (a PubMed export), PubMed
XML (``.xml``: a PubMed search's "PubMed" format, an ``efetch``, a baseline file) or BIO
files. Good records are kept even when others are refused; each refused record
is listed with its file and line. The worker tags the collection in the background
with the model in service, so the page never waits on the model; the table shows how
far tagging and review have got. Reviewed items export as BIO, JSONL with character
offsets (what Prodigy and doccano read) or a spaCy ``DocBin``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from app import downloads, render, services, shell, state
from app.settings import AppSettings
from curation import exports
from curation.collections import CollectionSummary, ImportReport
from curation.database import DatabaseError
from curation.service import Curation

NAME_KEY = "collections_name"
FILES_KEY = "collections_files"
UPLOADER_GENERATION = "collections_uploader_generation"
EXPORT_CHOICE_KEY = "collections_export_choice"
IMPORT_TYPES = ["txt", "jsonl", "xml", "bio", "iob", "conll", "tsv"]
MAX_PROBLEMS_SHOWN = 50


def summaries_frame(summaries: Sequence[CollectionSummary]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "collection": [s.name for s in summaries],
            "documents": [s.documents for s in summaries],
            "tagged by the model in service": [s.tagged for s in summaries],
            "reviewed": [s.reviewed for s in summaries],
            "skipped": [s.skipped for s in summaries],
            "flagged": [s.flagged for s in summaries],
        }
    )


def report_message(report: ImportReport) -> tuple[str, str]:
    """The flash for one import: what was kept, and how many records were refused."""
    documents = render.plural(report.added, "document")
    kept = f"{documents} imported into **{render.md(report.collection)}**"
    if not report.problems:
        return "success", f"{kept}. The worker tags them in the background."
    refused = render.plural(len(report.problems), "record")
    return "warning", f"{kept}; {refused} refused (listed below, with file and line)."


def _uploader_key() -> str:
    return f"{FILES_KEY}_{st.session_state.get(UPLOADER_GENERATION, 0)}"


def _import(curation: Curation) -> None:
    name = str(st.session_state.get(NAME_KEY, "") or "").strip()
    uploads = st.session_state.get(_uploader_key()) or []
    if not name:
        state.flash("error", "Name the collection before importing (e.g. “pubmed-query-1”).")
        return
    if not uploads:
        state.flash("error", "Choose the files to import first.")
        return
    files = [(upload.name, upload.getvalue()) for upload in uploads]
    try:
        report = curation.collections.import_files(
            name, files, imported_by=state.annotator() or "app"
        )
    except DatabaseError as error:
        state.flash("error", f"Nothing imported: {render.md(str(error))}")
        return
    kind, message = report_message(report)
    state.flash(kind, message)
    st.session_state["collections_last_problems"] = [str(p) for p in report.problems]
    # A fresh uploader: the files are in the database now, a rerun must not import them again.
    st.session_state[UPLOADER_GENERATION] = st.session_state.get(UPLOADER_GENERATION, 0) + 1


def _import_form(curation: Curation) -> None:
    st.subheader("Import")
    st.text_input(
        "Collection",
        key=NAME_KEY,
        placeholder="a name, e.g. pubmed-query-1",
        help="Files imported under an existing name are added to that collection.",
    )
    st.file_uploader(
        'Files: .txt (one abstract each), .jsonl ({"id", "title", "text"} per line), '
        ".xml (PubMed XML) or BIO (word<TAB>label, -DOCSTART- between documents)",
        type=IMPORT_TYPES,
        accept_multiple_files=True,
        key=_uploader_key(),
    )
    st.button(
        "Import", type="primary", icon=":material/upload:", on_click=_import, args=(curation,)
    )
    problems = st.session_state.get("collections_last_problems") or []
    if problems:
        with st.expander(f"Refused records ({len(problems):,})", expanded=True):
            shown = problems[:MAX_PROBLEMS_SHOWN]
            st.code("\n".join(shown), language=None)
            if len(problems) > len(shown):
                st.caption(f"… and {len(problems) - len(shown):,} more.")


def _export(curation: Curation, names: Sequence[str]) -> None:
    st.subheader("Export reviewed items")
    if not names:
        st.caption("Nothing to export yet.")
        return
    name = st.selectbox("Collection", list(names), key=EXPORT_CHOICE_KEY)
    items = curation.review.reviewed_items(name)
    if not items:
        st.caption("No item of this collection has been reviewed yet.")
        return
    st.caption(f"{render.plural(len(items), 'reviewed item')}.")
    downloads.export_buttons(name, [exports.item_document(item) for item in items])


def render_page() -> None:
    settings = shell.settings_or_stop()
    st.title("Collections")
    shell.show_flashes()
    try:
        _page(settings)
    except DatabaseError as error:  # damaged or unreachable: one message, what to do
        shell.database_problem(error)


def _page(settings: AppSettings) -> None:
    curation = services.curation(settings)
    summaries = curation.collections.summaries()
    if summaries:
        st.dataframe(summaries_frame(summaries), hide_index=True, width="stretch")
        pending = sum(s.pending for s in summaries)
        if pending > 0:
            st.caption(
                f"The worker is tagging {render.plural(pending, 'document')} in the background; "
                "reviewed documents keep the labels the curator saved."
            )
    else:
        st.info("No collection yet: import files below, then review them on the Review page.")
    _import_form(curation)
    _export(curation, [s.name for s in summaries])


if __name__ == "__main__":
    render_page()
