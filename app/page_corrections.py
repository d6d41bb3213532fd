"""Corrections: every saved correction as a filterable table; delete one; export all.

By default the table lists the current correction of each sentence (the one that
trains); "Show history" adds the older saves kept for audit. The export is a
BC5CDR-format BIO file, JSONL with character offsets (Prodigy, doccano) or a spaCy
``DocBin`` of the current corrections, each read back to the same words and labels by
``tests/test_exports.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from app import downloads, render, services, shell, state
from app.settings import AppSettings
from curation import exports
from curation.corrections import (
    Correction,
    CorrectionFilter,
    CorrectionNotFoundError,
    CorrectionsStore,
)
from curation.database import DatabaseError

TEXT_FILTER_KEY = "corrections_text"
SOURCE_FILTER_KEY = "corrections_source"
ANNOTATOR_FILTER_KEY = "corrections_annotator"
VERSION_FILTER_KEY = "corrections_version"
HISTORY_KEY = "corrections_history"
DELETE_CHOICE_KEY = "corrections_delete_choice"
EXPORT_STEM = "corrections"  # corrections.tsv, .jsonl, .spacy


def corrections_frame(corrections: Sequence[Correction]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [c.id for c in corrections],
            "sentence": [c.text for c in corrections],
            "spans": [" | ".join(c.span_texts()) for c in corrections],
            "source": [c.source for c in corrections],
            "sentence #": [c.sentence_index + 1 for c in corrections],
            "model version": [c.model_version for c in corrections],
            "annotator": [c.annotator for c in corrections],
            "time (UTC)": [c.created_at.strftime("%Y-%m-%d %H:%M:%S") for c in corrections],
            "current": [c.current for c in corrections],
        }
    )


def _delete(store: CorrectionsStore, correction_id: int) -> None:
    try:
        removed = store.delete(correction_id)
    except CorrectionNotFoundError as error:
        state.flash("warning", str(error))
        return
    except DatabaseError as error:
        state.flash("error", f"Not deleted: {render.md(str(error))}")
        return
    message = f"Deleted correction #{removed.id} ({render.md(render.preview(removed.words, 60))})."
    if removed.current:
        earlier = [c for c in store.history(removed.sentence_key) if c.current]
        if earlier:
            message += f" Its earlier version #{earlier[0].id} is now the one that trains."
    state.flash("success", message)


def _filters() -> CorrectionFilter:
    columns = st.columns(4)
    text = columns[0].text_input("Sentence contains", key=TEXT_FILTER_KEY)
    source = columns[1].text_input("Source contains", key=SOURCE_FILTER_KEY)
    annotator = columns[2].text_input("Annotator", key=ANNOTATOR_FILTER_KEY)
    version = columns[3].text_input("Model version", key=VERSION_FILTER_KEY)
    history = st.toggle("Show history (earlier saves of the same sentence)", key=HISTORY_KEY)
    return CorrectionFilter(
        text=text.strip(),
        source=source.strip(),
        annotator=annotator.strip(),
        model_version=version.strip(),
        current_only=not history,
    )


def _delete_tools(store: CorrectionsStore, shown: Sequence[Correction]) -> None:
    st.subheader("Delete a correction")
    by_id = {c.id: c for c in shown}
    choice = st.selectbox(
        "Correction",
        list(by_id),
        format_func=lambda i: f"#{i}: {render.preview(by_id[i].words, 80)}",
        key=DELETE_CHOICE_KEY,
    )
    st.button(
        "Delete",
        icon=":material/delete:",
        on_click=_delete,
        args=(store, int(choice)),
        disabled=choice is None,
    )


def _export(store: CorrectionsStore) -> None:
    st.subheader("Export")
    current = store.current()
    if not current:
        st.caption("Nothing to export yet.")
        return
    st.caption(
        f"The current correction of {render.plural(len(current), 'sentence')} "
        "(the ones that train)."
    )
    documents = [exports.correction_document(correction) for correction in current]
    downloads.export_buttons(EXPORT_STEM, documents)


def render_page() -> None:
    settings = shell.settings_or_stop()
    st.title("Corrections")
    shell.show_flashes()
    try:
        _page(settings)
    except DatabaseError as error:  # damaged or unreachable: one message, what to do
        shell.database_problem(error)


def _page(settings: AppSettings) -> None:
    store = services.corrections_store(settings)
    where = _filters()
    shown = store.corrections(where)
    total = store.count()
    st.caption(f"{len(shown):,} shown · {render.plural(total, 'sentence')} corrected in all")
    if shown:
        st.dataframe(corrections_frame(shown), hide_index=True, width="stretch")
        _delete_tools(store, shown)
    else:
        st.info("No corrections match." if total else "No corrections saved yet.")
    _export(store)


if __name__ == "__main__":
    render_page()
