"""Inspect a BIO file: the model's predictions against the file's own labels.

Upload a BC5CDR-style file (``token<TAB>label``, blank line after each sentence).
The page tags every sentence once (with a progress bar), then shows precision,
recall and F1 (strict entity-level, from ``tagger.scoring``: the numbers
``python -m training.evaluate`` gives; ``—`` where a metric is undefined), the
sentences where model and file disagree, the false positives and false negatives,
and a side-by-side view of any sentence with a button to correct it.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator
from streamlit.runtime.uploaded_file_manager import UploadedFile

from app import inputs, render, services, shell, state, tagging
from app.evaluation import Mention
from app.settings import AppSettings
from curation import file_source

UPLOAD_KEY = "inspect_upload"
ONLY_DISAGREEING_KEY = "inspect_only_disagreeing"
ERROR_KINDS_KEY = "inspect_error_kinds"
SENTENCE_KEY = "inspect_sentence"
BIO_TYPES = ["tsv", "txt", "bio", "conll", "iob", "iob2"]


def _tag_upload(
    upload: UploadedFile,
    status: services.ModelStatus,
    settings: AppSettings,
) -> state.InspectResult | None:
    """The cached result for this file and model, or tag it now (with a progress bar)."""
    data = upload.getvalue()
    digest = tagging.file_digest(data)
    previous = state.inspect_result()
    if (
        previous is not None
        and previous.digest == digest
        and previous.model_version == status.version
    ):
        return previous
    try:
        parsed = inputs.read_bio_upload(upload.name, data, max_bytes=settings.max_upload_bytes)
    except inputs.InputProblem as problem:
        state.set_inspect_result(None)
        st.error(render.md(str(problem)), icon=":material/error:")
        return None
    if status.tagger is None:
        st.info(
            f"{render.md(upload.name)}: {len(parsed.sentences):,} sentences read; "
            "tagging needs a model."
        )
        return None
    total = len(parsed.sentences)
    bar = st.progress(0.0, text=f"Tagging {total:,} sentences…")

    def report(done: int, of: int) -> None:
        bar.progress(done / of if of else 1.0, text=f"Tagged {done:,} of {of:,} sentences")

    result = tagging.tag_file(
        status.tagger,
        parsed.sentences,
        file_name=upload.name,
        digest=digest,
        progress=report,
        notes=parsed.notes,
    )
    bar.empty()
    state.set_inspect_result(result)
    return result


UNDEFINED = "—"
SCORE_HELP = "Strict entity-level (seqeval, IOB2): a mention counts only with exactly its words."
UNDEFINED_HELP = {
    "Precision": "Undefined: the model predicted no mention in this file, so none can be right.",
    "Recall": "Undefined: the file has no mention, so there is nothing to find.",
    "F1": "Undefined: neither the file nor the model has a mention; there is nothing to compare.",
}


def _score_metric(column: DeltaGenerator, label: str, value: float | None) -> None:
    """A percent score, or ``—`` with a tooltip saying why it is undefined (never 0.0%)."""
    if value is None:
        column.metric(label, UNDEFINED, help=UNDEFINED_HELP[label])
    else:
        column.metric(label, f"{value:.1f}%", help=SCORE_HELP)


def _metrics(result: state.InspectResult) -> None:
    comparison = result.comparison
    columns = st.columns(5)
    _score_metric(columns[0], "Precision", comparison.precision)
    _score_metric(columns[1], "Recall", comparison.recall)
    _score_metric(columns[2], "F1", comparison.f1)
    columns[3].metric("Sentences", f"{len(result.gold):,}")
    columns[4].metric("Disagree", f"{len(comparison.disagreeing):,}")
    st.caption(
        f"{render.md(result.file_name)}: {comparison.gold_count:,} mentions in the file, "
        f"{comparison.predicted_count:,} predicted, {comparison.true_positives:,} exact matches · "
        f"model **{render.md(result.model_version)}** on **{render.md(result.device)}** · "
        f"{result.seconds:.1f} s"
    )


def _sentences_frame(result: state.InspectResult, indexes: list[int]) -> pd.DataFrame:
    disagreeing = set(result.comparison.disagreeing)
    return pd.DataFrame(
        {
            "sentence": [i + 1 for i in indexes],
            "line": [result.gold[i].line for i in indexes],
            "agrees": [i not in disagreeing for i in indexes],
            "text": [render.preview(result.gold[i].words, 160) for i in indexes],
        }
    )


def _errors_frame(result: state.InspectResult, kinds: list[str]) -> pd.DataFrame:
    rows: list[tuple[str, Mention]] = []
    if "False positives" in kinds:
        rows += [("false positive", m) for m in result.comparison.false_positives]
    if "False negatives" in kinds:
        rows += [("false negative", m) for m in result.comparison.false_negatives]
    rows.sort(key=lambda row: (row[1].sentence, row[1].start))
    return pd.DataFrame(
        {
            "error": [kind for kind, _ in rows],
            "mention": [m.text for _, m in rows],
            "sentence": [m.sentence + 1 for _, m in rows],
            "line": [result.gold[m.sentence].line + m.start for _, m in rows],
            "words": [f"{m.start}–{m.end - 1}" for _, m in rows],
        }
    )


def _sentence_view(result: state.InspectResult, indexes: list[int]) -> None:
    if not indexes:
        st.info("No sentences to show with this filter.")
        return
    index = st.selectbox(
        "Sentence to view",
        indexes,
        format_func=lambda i: (
            f"{i + 1} (line {result.gold[i].line}): " + render.preview(result.gold[i].words, 80)
        ),
        key=SENTENCE_KEY,
    )
    gold = result.gold[int(index)]
    predicted = result.predicted[int(index)]
    st.markdown("**File labels** (blue dashed: the model missed it)")
    st.html(
        render.words_html(
            gold.words,
            render.comparison_marks(
                gold.labels, predicted, missing_css="false-negative", missing_title="missed"
            ),
        )
    )
    st.markdown("**Model** (red: not in the file)")
    st.html(
        render.words_html(
            gold.words,
            render.comparison_marks(
                predicted, gold.labels, missing_css="false-positive", missing_title="extra"
            ),
        )
    )
    if st.button("Correct this sentence", icon=":material/edit_note:"):
        target = tagging.target_from_file(result, int(index), file_source(result.file_name))
        state.start_correction(target)
        st.switch_page(shell.CORRECT_PAGE)


def _show_result(result: state.InspectResult) -> None:
    for note in result.notes:
        st.info(render.md(note))
    _metrics(result)
    only_disagreeing = st.toggle(
        "Only sentences where the model and the file disagree",
        value=True,
        key=ONLY_DISAGREEING_KEY,
    )
    indexes = (
        list(result.comparison.disagreeing) if only_disagreeing else list(range(len(result.gold)))
    )
    st.dataframe(_sentences_frame(result, indexes), hide_index=True, width="stretch", height=260)
    st.subheader("Errors")
    kinds = st.multiselect(
        "Show",
        ["False positives", "False negatives"],
        default=["False positives", "False negatives"],
        key=ERROR_KINDS_KEY,
    )
    st.dataframe(_errors_frame(result, kinds), hide_index=True, width="stretch", height=260)
    st.subheader("Sentence")
    _sentence_view(result, indexes)


def render_page() -> None:
    settings = shell.settings_or_stop()
    st.title("Inspect a BIO file")
    shell.show_flashes()
    status = services.serving_model(settings)
    if status.tagger is None:
        st.warning(status.problem, icon=":material/warning:")
    upload = st.file_uploader(
        "BIO file (one `token<TAB>label` per line, a blank line after each sentence)",
        type=BIO_TYPES,
        key=UPLOAD_KEY,
        max_upload_size=settings.max_upload_mb,
    )
    if upload is None:
        st.caption(f"Files up to {settings.max_upload_mb} MB, in BC5CDR format.")
        return
    result = _tag_upload(upload, status, settings)
    if result is not None:
        _show_result(result)


if __name__ == "__main__":
    render_page()
