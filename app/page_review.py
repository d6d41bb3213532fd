"""Review: walk a collection item by item, the model's most doubtful items first.

An item is one document (an abstract with its sentences) as the model in service
tagged it. The queue (:class:`curation.review.ReviewQueue`) orders items by the
model's doubt (expected word errors, from the per-word label probabilities) with a
diversity rule, and hands each item to one curator at a time; the position lives in
the database, so closing the browser or restarting the app resumes at the same item.

The item is edited in the text by the span editor (:mod:`app.span_editor`): every key
is handled in the browser, and the page reruns only when the curator accepts, saves,
skips or flags. Accepted and saved items become corrections, as on the Correct page,
so Retrain uses them.
"""

from __future__ import annotations

import streamlit as st

from app import render, services, shell, state
from app.settings import AppSettings
from app.span_editor import EditorEvent, EditorSentence, span_editor
from curation.collections import UNCERTAINTY_NAME
from curation.database import DatabaseBusyError, DatabaseError
from curation.review import ReviewConflictError, ReviewFilter, ReviewItem, ReviewProgress
from curation.service import Curation
from tagger.errors import TaggerError

COLLECTION_KEY = "review_collection"
SCORE_RANGE_KEY = "review_score_range"
SPANS_FILTER_KEY = "review_spans"
INCLUDE_SKIPPED_KEY = "review_include_skipped"
EDITOR_KEY = "review_editor"
SPANS_CHOICES = {"any": None, "with predicted spans": True, "without predicted spans": False}
NOT_SAVED_BUSY = (
    "Not saved: the database is busy (another process holds its lock); your edit is "
    "still in the editor: press the key again."
)
MAX_SCORE = 50.0  # expected word errors; the slider's top, items above it pass the filter


def item_key(item: ReviewItem) -> str:
    """The editor's key for an item: a new tagging of the same item is a new draft."""
    return f"{item.collection}/{item.id}@{item.model_version}"


def editor_sentences(item: ReviewItem) -> list[EditorSentence]:
    return [
        EditorSentence(tuple(s.words), tuple(s.labels), tuple(s.scores)) for s in item.sentences
    ]


def apply_event(curation: Curation, item: ReviewItem, event: EditorEvent, curator: str) -> str:
    """Store what the curator did with ``item``; returns the message to show."""
    review = curation.review
    marked = 0
    if event.action in ("save", "accept"):
        for words in event.mark_everywhere:
            marked += review.mark_everywhere(item.collection, words, exclude_item=item.id)
    if event.action == "accept":
        review.accept(item.id, curator)
        message = "Accepted the model's labels"
    elif event.action == "save":
        review.save(item.id, curator, event.labels)
        message = "Saved your labels"
    elif event.action == "skip":
        review.skip(item.id, curator)
        message = "Skipped"
    else:
        review.flag(item.id, curator, event.note)
        message = "Flagged"
    title = render.md(render.preview((item.title or item.external_id).split(), 60))
    suffix = f"; marked in {render.plural(marked, 'other unreviewed item')}" if marked else ""
    return f"{message} for “{title}”{suffix}."


def _filters(names: list[str]) -> ReviewFilter:
    collection = st.selectbox("Collection", names, key=COLLECTION_KEY)
    with st.expander("Filters"):
        low, high = st.slider(
            f"Doubt ({UNCERTAINTY_NAME})",
            0.0,
            MAX_SCORE,
            (0.0, MAX_SCORE),
            step=0.5,
            key=SCORE_RANGE_KEY,
        )
        spans = st.radio("Items", list(SPANS_CHOICES), horizontal=True, key=SPANS_FILTER_KEY)
        include_skipped = st.toggle(
            "Offer skipped items again after the unreviewed ones", True, key=INCLUDE_SKIPPED_KEY
        )
    return ReviewFilter(
        collection=str(collection),
        min_score=low if low > 0 else None,
        max_score=high if high < MAX_SCORE else None,
        has_spans=SPANS_CHOICES[str(spans)],
        include_skipped=include_skipped,
    )


def _progress(progress: ReviewProgress) -> None:
    done = progress.reviewed + progress.flagged
    fraction = done / progress.total if progress.total else 0.0
    st.progress(
        fraction,
        text=f"{done:,} of {progress.total:,} reviewed"
        + (f" · {progress.flagged:,} flagged" if progress.flagged else "")
        + (f" · {progress.skipped:,} skipped" if progress.skipped else ""),
    )


def _item_header(item: ReviewItem) -> None:
    if item.title:
        st.subheader(render.md(item.title), anchor=False)  # a title is text, not Markdown
    st.caption(
        f"{render.md(item.collection)} · {render.md(item.external_id)} · "
        f"tagged by model **{render.md(item.model_version)}** · "
        f"doubt **{item.uncertainty:.2f}** {UNCERTAINTY_NAME} "
        f"({item.uncertainty_per_100_words:.2f} per 100 words)"
    )


def render_page() -> None:
    settings = shell.settings_or_stop()
    st.title("Review")
    try:
        _page(settings)
    except DatabaseError as error:  # damaged or unreachable: one message, what to do
        shell.database_problem(error)


def _page(settings: AppSettings) -> None:
    curation = services.curation(settings)
    names = [summary.name for summary in curation.collections.summaries()]
    shell.show_flashes()
    if not names:
        st.info("No collection to review yet: import documents on the Collections page.")
        return
    curator = state.annotator()
    if not curator:
        st.info("Enter your name as Annotator in the sidebar: the queue keeps your place by it.")
        return
    where = _filters(names)
    _progress(curation.review.progress(where.collection))
    item = curation.review.next_item(curator, where)
    if item is None:
        st.success(
            "Nothing left to review here with these filters. New items appear as the worker "
            "tags them.",
            icon=":material/task_alt:",
        )
        return
    _item_header(item)
    event = span_editor(item_key(item), editor_sentences(item), key=EDITOR_KEY)
    if event is None or event.item_key != item_key(item):
        return  # a stale event (the item changed under it) is ignored: its draft is kept
    try:
        state.flash("success", apply_event(curation, item, event, curator))
    except ReviewConflictError as error:  # taken over or re-tagged meanwhile: move on
        state.flash("warning", f"Not saved: {render.md(str(error))}")
    except DatabaseBusyError:
        st.error(NOT_SAVED_BUSY, icon=":material/hourglass_top:")
        return
    except TaggerError as error:  # nothing was stored; the editor still holds the edit
        st.error(f"Not saved: {render.md(str(error))}", icon=":material/error:")
        return
    st.rerun()


if __name__ == "__main__":
    render_page()
