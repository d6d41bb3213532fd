"""Correct: fix one sentence's disease tags and save it to the corrections store.

A sentence arrives from the Tag or Inspect page (or is picked here). The curator
accepts or rejects each predicted span, moves a span's boundaries, marks a new span
over a range of words, or edits the B/I/O column of the token table. Labels that are
not valid IOB2 (an ``I`` without a ``B``) are shown with their repair, and only the
repaired labels are saved. Undo removes this session's last save.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import editing, render, services, shell, state, tagging
from app.settings import AppSettings
from curation.corrections import (
    CorrectionNotFoundError,
    CorrectionsStore,
    InvalidCorrectionError,
    file_source,
)
from curation.database import DatabaseBusyError, DatabaseError
from tagger.decoding import spans_from_labels

PICK_FROM_KEY = "correct_pick_from"
PICK_NUMBER_KEY = "correct_pick_number"
FROM_TEXT = "Tagged text"
FROM_FILE = "Inspected file"
KEPT = ":material/check_circle: kept:"
REJECTED = ":material/cancel: not in your correction:"
ROW_HEIGHT_PX = 35  # st.data_editor's row height, to show whole sentences unscrolled
MAX_TABLE_HEIGHT_PX = 1200
BUSY_RETRYING = (
    "The corrections database is busy (another process holds its lock): retrying your save…"
)
DRAFT_KEPT = "Your correction is not lost: it is still in the editor."
NOT_SAVED_BUSY = (
    "Not saved: the corrections database is busy (another process holds its lock); "
    "your correction is not lost: it is still in the editor — press Save again."
)


# ---------------------------------------------------------------------------
# Callbacks: they run before the page draws, so they report through flashes.
# ---------------------------------------------------------------------------


def _set_draft(labels: tuple[str, ...]) -> None:
    state.set_draft(labels)
    state.set_editing_span(None)


def _apply(edit: str, start: int, end: int) -> None:
    draft = state.draft_labels()
    edits = {"accept": editing.mark_span, "reject": editing.reject_span}
    _set_draft(edits[edit](draft, start, end))


def _begin_boundary_change(target: state.CorrectionTarget, start: int, end: int) -> None:
    state.set_editing_span((start, end))
    st.session_state[_range_key(target)] = (start, end - 1)


def _apply_range(target: state.CorrectionTarget, action: str) -> None:
    first, last = _selected_range(target)
    draft = state.draft_labels()
    editing_span = state.editing_span()
    if action == "bounds" and editing_span is not None:
        _set_draft(editing.change_span(draft, editing_span, (first, last + 1)))
    elif action == "mark":
        _set_draft(editing.mark_span(draft, first, last + 1))
    elif action == "clear":
        _set_draft(editing.reject_span(draft, first, last + 1))
    else:
        state.set_editing_span(None)


def _save(store: CorrectionsStore, target: state.CorrectionTarget) -> None:
    annotator = state.annotator()
    if not annotator:
        state.flash("error", "Enter your name as Annotator in the sidebar before saving.")
        return
    draft = state.draft_labels()
    notice = st.empty()

    def busy() -> None:
        notice.warning(BUSY_RETRYING, icon=":material/hourglass_top:")

    try:
        with st.spinner("Saving…"):
            result = store.save(
                words=target.words,
                labels=draft,
                predicted=target.predicted,
                source=target.source,
                sentence_index=target.sentence_index,
                model_version=target.model_version,
                annotator=annotator,
                on_busy=busy,
            )
    except InvalidCorrectionError as error:
        state.flash("error", f"Not saved: {render.md(str(error))}")
        return
    except DatabaseBusyError:
        _keep_draft(draft)
        state.flash("error", NOT_SAVED_BUSY)
        return
    except DatabaseError as error:
        _keep_draft(draft)
        state.flash(
            "error", f"Not saved: {render.md(str(error))} {render.md(DRAFT_KEPT)}"
        )
        return
    finally:
        notice.empty()
    saved = result.correction
    state.remember_save(saved.id)
    _set_draft(saved.labels)
    details = []
    if result.replaced is not None:
        details.append(f"it replaces correction #{result.replaced}, kept as history")
    if result.repaired:
        details.append(f"{result.repaired} label(s) repaired to valid IOB2")
    suffix = f" ({'; '.join(details)})" if details else ""
    state.flash("success", f"Saved correction #{saved.id}{suffix}.")


def _keep_draft(draft: tuple[str, ...]) -> None:
    """A save that failed keeps the curator's labels, table edits included, as the draft."""
    state.set_draft(draft)


def _undo(store: CorrectionsStore) -> None:
    correction_id = state.forget_last_save()
    if correction_id is None:
        state.flash("info", "Nothing to undo: no save in this session.")
        return
    try:
        removed = store.delete(correction_id)
    except CorrectionNotFoundError:
        state.flash("warning", f"Correction #{correction_id} was already deleted.")
        return
    except DatabaseError as error:
        state.remember_save(correction_id)  # still there: Undo can be pressed again
        state.flash("error", f"Not undone: {render.md(str(error))}")
        return
    state.flash(
        "success",
        f"Undone: correction #{removed.id} "
        f"({render.md(render.preview(removed.words, 60))}) removed.",
    )


def _load_picked(kind: str, number: int) -> None:
    index = number - 1
    if kind == FROM_TEXT and (result := state.tag_result()) is not None:
        state.start_correction(tagging.target_from_text(result, index))
    elif kind == FROM_FILE and (inspected := state.inspect_result()) is not None:
        target = tagging.target_from_file(inspected, index, file_source(inspected.file_name))
        state.start_correction(target)


# ---------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------


def _range_key(target: state.CorrectionTarget) -> str:
    return f"correct_range_{target.ident}"


def _selected_range(target: state.CorrectionTarget) -> tuple[int, int]:
    value = st.session_state.get(_range_key(target), (0, 0))
    first, last = sorted(int(v) for v in value)
    last = min(last, len(target.words) - 1)
    return first, last


def _counts(settings: AppSettings, store: CorrectionsStore, status: services.ModelStatus) -> None:
    left, right = st.columns(2)
    left.metric(
        "Corrections saved", f"{store.count():,}", help="One per sentence: the latest save."
    )
    if status.tagger is None:
        right.metric("Since the model in service was trained", "–", help="No model in service.")
        return
    changes = services.corrections_since_serving(settings)
    right.metric(
        "Since the model in service was trained",
        f"{changes.new:,}",
        help=render.md(changes.explanation()),
    )


def _picker() -> None:
    kinds = []
    if (result := state.tag_result()) is not None and result.sentences:
        kinds.append((FROM_TEXT, len(result.sentences)))
    if (inspected := state.inspect_result()) is not None:
        kinds.append((FROM_FILE, len(inspected.gold)))
    if not kinds:
        return
    with st.expander("Pick another sentence", expanded=state.correction_target() is None):
        sizes = dict(kinds)
        kind = st.radio("From", list(sizes), horizontal=True, key=PICK_FROM_KEY)
        number = st.number_input(
            f"Sentence number (1–{sizes[kind]:,})", 1, sizes[kind], 1, key=PICK_NUMBER_KEY
        )
        st.button("Load sentence", on_click=_load_picked, args=(kind, int(number)))


def _predicted_spans(target: state.CorrectionTarget, draft: tuple[str, ...]) -> None:
    spans = spans_from_labels(target.predicted, target.scores)
    st.subheader("The model's spans")
    if not spans:
        st.caption("The model found no disease mention in this sentence.")
    for span in spans:
        text = " ".join(target.words[span.start : span.end])
        kept = editing.has_span(draft, span.start, span.end)
        columns = st.columns([4, 1, 1, 1, 1.6])
        columns[0].markdown(
            f"{KEPT if kept else REJECTED} **{render.md(text)}** · "
            f"words {span.start}–{span.end - 1} · confidence {span.score:.2f}"
        )
        key = f"{target.ident}_{span.start}_{span.end}"
        columns[1].button(
            "Accept",
            key=f"accept_{key}",
            on_click=_apply,
            args=("accept", span.start, span.end),
            disabled=kept,
        )
        columns[2].button(
            "Reject",
            key=f"reject_{key}",
            on_click=_apply,
            args=("reject", span.start, span.end),
            disabled=not kept,
        )
        columns[3].button(
            "Bounds",
            key=f"bounds_{key}",
            on_click=_begin_boundary_change,
            args=(target, span.start, span.end),
            help="Change this span's first and last word below.",
        )


def _range_tools(target: state.CorrectionTarget) -> None:
    st.subheader("Mark words")
    n_words = len(target.words)
    key = _range_key(target)
    if n_words > 1:
        st.select_slider(
            "Words",
            options=list(range(n_words)),
            value=st.session_state.get(key, (0, 0)),
            format_func=lambda i: f"{i}: {target.words[i]}",
            key=key,
        )
    first, last = _selected_range(target)
    selected = " ".join(target.words[first : last + 1])
    editing_span = state.editing_span()
    columns = st.columns(3)
    if editing_span is not None:
        old = " ".join(target.words[editing_span[0] : editing_span[1]])
        st.caption(
            f"Changing the boundaries of **{render.md(old)}**: "
            "pick its new first and last word above."
        )
        columns[0].button(
            "Apply new boundaries", type="primary", on_click=_apply_range, args=(target, "bounds")
        )
        columns[1].button("Cancel", on_click=_apply_range, args=(target, "cancel"))
        return
    columns[0].button(
        f"Mark “{render.md(render.preview(selected.split(), 30))}” as disease",
        on_click=_apply_range,
        args=(target, "mark"),
    )
    columns[1].button("Clear these words", on_click=_apply_range, args=(target, "clear"))
    if target.file_labels is not None:
        columns[2].button(
            "Start from the file's labels", on_click=_set_draft, args=(target.file_labels,)
        )


def _token_table(target: state.CorrectionTarget) -> None:
    st.subheader("Token table")
    frame = pd.DataFrame(
        {
            "#": range(len(target.words)),
            "word": target.words,
            "model": target.predicted,
            "score": [round(score, 3) for score in target.scores],
            "label": state.draft_base(),
        }
    )
    st.data_editor(
        frame,
        key=state.editor_key(),
        hide_index=True,
        num_rows="fixed",
        height=min(ROW_HEIGHT_PX * (len(target.words) + 1) + 3, MAX_TABLE_HEIGHT_PX),
        disabled=["#", "word", "model", "score"],
        column_config={
            "label": st.column_config.SelectboxColumn(
                "label", options=list(editing.LABEL_CHOICES), required=True
            )
        },
        width="stretch",
    )


def _draft_view(
    target: state.CorrectionTarget, draft: tuple[str, ...], store: CorrectionsStore
) -> None:
    """Show the draft as it would be saved: repaired if need be, refused if unknown."""
    try:
        repaired, _ = store.prepare_labels(draft)
    except InvalidCorrectionError as error:
        st.error(f"These labels cannot be saved: {render.md(str(error))}", icon=":material/error:")
        st.html(render.words_html(target.words, [], numbered=True))
        return
    invalid = editing.invalid_positions(draft)
    if invalid:
        words = ", ".join(f"{i} **{render.md(target.words[i])}**" for i in invalid)
        st.warning(
            f"Invalid BIO: word {words} is labelled I-Disease but continues no entity "
            "(an I without a B). It will be saved as B-Disease, as shown below; "
            "edit the label column to change that.",
            icon=":material/rule:",
        )
    st.html(
        render.words_html(
            target.words, render.label_marks(repaired, "draft", "your correction"), numbered=True
        )
    )


def _target_view(target: state.CorrectionTarget, store: CorrectionsStore) -> None:
    st.caption(
        f"Sentence {target.sentence_index + 1} of {render.md(target.origin)} · "
        f"predicted by model {render.md(target.model_version)}"
    )
    draft = state.draft_labels()
    _draft_view(target, draft, store)
    changed = draft != target.predicted
    columns = st.columns([1.3, 1.3, 4])
    columns[0].button(
        "Save correction",
        type="primary",
        on_click=_save,
        args=(store, target),
        icon=":material/save:",
    )
    columns[1].button(
        "Undo last save",
        on_click=_undo,
        args=(store,),
        disabled=not state.saved_ids(),
        icon=":material/undo:",
    )
    columns[2].caption("Differs from the model's tags." if changed else "Same as the model's tags.")
    _predicted_spans(target, draft)
    _range_tools(target)
    _token_table(target)


def render_page() -> None:
    settings: AppSettings = shell.settings_or_stop()
    st.title("Correct")
    try:
        _page(settings)
    except DatabaseError as error:  # damaged or unreachable: one message, what to do
        shell.database_problem(error)


def _page(settings: AppSettings) -> None:
    store = services.corrections_store(settings)
    status = services.serving_model(settings)
    _counts(settings, store, status)
    shell.show_flashes()
    _picker()
    target = state.correction_target()
    if target is None:
        st.info(
            "No sentence to correct yet. Tag a text or inspect a BIO file, then press "
            "“Correct this sentence” (or pick one above)."
        )
        return
    _target_view(target, store)


if __name__ == "__main__":
    render_page()
