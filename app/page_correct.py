"""Correct: fix one sentence's disease tags in the text and save it to the corrections store.

A sentence arrives from the Tag or Inspect page (or is picked here). It is edited in
the span editor (:mod:`app.span_editor`), the same editor the Review page uses for
whole documents, here for one sentence: mark, remove and resize spans with the mouse
or the keyboard, then save-and-next with one key (`S`), which moves on to the next
sentence of the same text or file. Labels are always valid IOB2. Undo removes this
session's last save.
"""

from __future__ import annotations

import streamlit as st

from app import render, services, shell, state, tagging
from app.settings import AppSettings
from app.span_editor import EditorEvent, EditorSentence, span_editor
from curation.corrections import (
    CorrectionNotFoundError,
    CorrectionsStore,
    InvalidCorrectionError,
    file_source,
)
from curation.database import DatabaseBusyError, DatabaseError

PICK_FROM_KEY = "correct_pick_from"
PICK_NUMBER_KEY = "correct_pick_number"
START_FROM_KEY = "correct_start_from"
EDITOR_KEY = "correct_editor"
FROM_TEXT = "Tagged text"
FROM_FILE = "Inspected file"
START_FROM_MODEL = "the model's labels"
START_FROM_FILE = "the file's labels"
BUSY_RETRYING = (
    "The corrections database is busy (another process holds its lock): retrying your save…"
)
DRAFT_KEPT = "Your correction is not lost: it is still in the editor."
NOT_SAVED_BUSY = (
    "Not saved: the corrections database is busy (another process holds its lock); "
    "your correction is not lost: it is still in the editor — press Save (S) again."
)


# ---------------------------------------------------------------------------
# Acting on the editor's events and on the buttons
# ---------------------------------------------------------------------------


def save(store: CorrectionsStore, target: state.CorrectionTarget, labels: tuple[str, ...]) -> bool:
    """Store ``labels`` for the target sentence; the outcome goes to the flashes.

    Returns whether the correction was stored. On failure the editor keeps the draft
    (it clears a draft only when another sentence is mounted).
    """
    annotator = state.annotator()
    if not annotator:
        state.flash("error", "Enter your name as Annotator in the sidebar before saving.")
        return False
    notice = st.empty()

    def busy() -> None:
        notice.warning(BUSY_RETRYING, icon=":material/hourglass_top:")

    try:
        with st.spinner("Saving…"):
            result = store.save(
                words=target.words,
                labels=labels,
                predicted=target.predicted,
                source=target.source,
                sentence_index=target.sentence_index,
                model_version=target.model_version,
                annotator=annotator,
                on_busy=busy,
            )
    except InvalidCorrectionError as error:
        state.flash("error", f"Not saved: {render.md(str(error))}")
        return False
    except DatabaseBusyError:
        state.flash("error", NOT_SAVED_BUSY)
        return False
    except DatabaseError as error:
        state.flash("error", f"Not saved: {render.md(str(error))} {render.md(DRAFT_KEPT)}")
        return False
    finally:
        notice.empty()
    saved = result.correction
    state.remember_save(saved.id)
    details = []
    if result.replaced is not None:
        details.append(f"it replaces correction #{result.replaced}, kept as history")
    if result.repaired:
        details.append(f"{result.repaired} label(s) repaired to valid IOB2")
    suffix = f" ({'; '.join(details)})" if details else ""
    state.flash("success", f"Saved correction #{saved.id}{suffix}.")
    return True


def next_target(target: state.CorrectionTarget) -> state.CorrectionTarget | None:
    """The sentence after ``target`` in the same tagged text or inspected file."""
    index = target.sentence_index + 1
    if (result := state.tag_result()) is not None and result.source == target.source:
        return tagging.target_from_text(result, index) if index < len(result.sentences) else None
    inspected = state.inspect_result()
    if inspected is None or file_source(inspected.file_name) != target.source:
        return None
    if index < len(inspected.gold):
        return tagging.target_from_file(inspected, index, target.source)
    return None


def handle_event(
    store: CorrectionsStore, target: state.CorrectionTarget, event: EditorEvent
) -> None:
    """Save (or accept) and move on, or skip to the next sentence."""
    if event.action == "flag":
        state.flash("info", "Flags belong to collection items (Review page); nothing saved.")
        return
    if event.action in ("save", "accept"):
        labels = target.predicted if event.action == "accept" else event.labels[0]
        if not save(store, target, tuple(labels)):
            return
    following = next_target(target)
    if following is None:
        state.flash("info", f"That was the last sentence of {render.md(target.origin)}.")
        return
    state.start_correction(following)


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


def editor_input(target: state.CorrectionTarget, start_from: str) -> tuple[str, EditorSentence]:
    """The editor's item key and sentence: the prediction, or the file's own labels."""
    labels = target.predicted
    if start_from == START_FROM_FILE and target.file_labels is not None:
        labels = target.file_labels
    origin = "model" if labels is target.predicted else "file"
    key = f"{target.ident}@{target.model_version}/{origin}"
    return key, EditorSentence(target.words, tuple(labels), target.scores)


def _target_view(target: state.CorrectionTarget, store: CorrectionsStore) -> None:
    st.caption(
        f"Sentence {target.sentence_index + 1} of {render.md(target.origin)} · "
        f"predicted by model {render.md(target.model_version)} · "
        "`S` saves and opens the next sentence, `K` skips it, `?` lists every key"
    )
    start_from = START_FROM_MODEL
    if target.file_labels is not None:
        start_from = str(
            st.radio(
                "Start from",
                [START_FROM_MODEL, START_FROM_FILE],
                horizontal=True,
                key=START_FROM_KEY,
            )
        )
    item_key, sentence = editor_input(target, start_from)
    event = span_editor(item_key, [sentence], key=EDITOR_KEY, single_sentence=True)
    st.button(
        "Undo last save",
        on_click=_undo,
        args=(store,),
        disabled=not state.saved_ids(),
        icon=":material/undo:",
    )
    if event is not None and event.item_key == item_key:
        handle_event(store, target, event)
        st.rerun()


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
