"""Tag text: paste an abstract (or pick a sample), see the disease mentions highlighted.

The page shows the text with each mention shaded by confidence (low-confidence
mentions dashed and flagged), a table of mentions, JSON and BIO downloads, and a
button that sends any sentence to the Correct page.
"""

from __future__ import annotations

import streamlit as st

from app import inputs, render, services, shell, state, tagging
from app.samples import load_samples
from app.settings import AppSettings
from curation import text_source

TEXT_KEY = "tag_text"
SAMPLE_KEY = "tag_sample"
LOW_CONFIDENCE_KEY = "tag_low_confidence"
SENTENCE_KEY = "tag_sentence_choice"
PASTE_YOUR_OWN = "Paste your own…"


def _use_sample(samples: dict[str, str]) -> None:
    choice = st.session_state.get(SAMPLE_KEY)
    if choice in samples:
        st.session_state[TEXT_KEY] = samples[choice]


def _input_form(can_tag: bool, samples: dict[str, str]) -> bool:
    st.selectbox(
        "Start from a sample abstract",
        [PASTE_YOUR_OWN, *samples],
        key=SAMPLE_KEY,
        on_change=_use_sample,
        args=(samples,),
    )
    with st.form("tag_form", border=False):
        st.text_area(
            "Abstract",
            key=TEXT_KEY,
            height=220,
            placeholder="Paste a PubMed abstract here…",
        )
        return st.form_submit_button("Tag", type="primary", disabled=not can_tag)


def _tag(status: services.ModelStatus, settings: AppSettings) -> None:
    assert status.tagger is not None  # the button is disabled without a model
    try:
        cleaned = inputs.clean_text(
            st.session_state.get(TEXT_KEY), max_chars=settings.max_text_chars
        )
    except inputs.InputProblem as problem:
        st.error(str(problem), icon=":material/error:")
        return
    with st.spinner("Tagging…"):
        result = tagging.tag_text(
            status.tagger, cleaned.text, source=text_source(cleaned.text), notes=cleaned.notes
        )
    state.set_tag_result(result)


def _downloads(result: state.TagResult) -> None:
    left, right = st.columns(2)
    left.download_button(
        "Download mentions (JSON)",
        render.result_json(result),
        file_name="mentions.json",
        mime="application/json",
        icon=":material/download:",
    )
    bio = render.result_bio(result)
    right.download_button(
        "Download sentences (BIO)",
        bio or "\n",
        file_name="tagged.tsv",
        mime="text/tab-separated-values",
        icon=":material/download:",
        disabled=not bio,
    )


def _sentence_label(result: state.TagResult, index: int) -> str:
    count = sum(1 for span in result.spans if span.sentence == index)
    words = render.preview(result.sentences[index].words, 80)
    return f"{index + 1}. {words} ({render.plural(count, 'mention')})"


def _correct_a_sentence(result: state.TagResult) -> None:
    if not result.sentences:
        return
    st.subheader("Correct a sentence")
    index = st.selectbox(
        "Sentence",
        range(len(result.sentences)),
        format_func=lambda i: _sentence_label(result, i),
        key=SENTENCE_KEY,
    )
    if st.button("Correct this sentence", icon=":material/edit_note:"):
        state.start_correction(tagging.target_from_text(result, int(index)))
        st.switch_page(shell.CORRECT_PAGE)


def _show_result(result: state.TagResult, settings: AppSettings) -> None:
    st.divider()
    if st.session_state.get(TEXT_KEY) != result.text:
        st.info("The result below is for the previously tagged text; press Tag to update it.")
    for note in result.notes:
        st.warning(note)
    low = st.slider(
        "Flag mentions below this confidence",
        0.0,
        1.0,
        value=settings.low_confidence,
        step=0.05,
        key=LOW_CONFIDENCE_KEY,
    )
    n_low = sum(1 for span in result.spans if span.score < low)
    st.caption(
        f"Model **{render.md(result.model_version)}** on **{render.md(result.device)}** · "
        f"{render.plural(len(result.sentences), 'sentence')} · "
        f"{render.plural(len(result.spans), 'mention')} "
        f"({n_low} below {low:.2f}) · {result.seconds:.2f} s"
    )
    st.html(render.legend_html(low))
    st.html(render.highlight_html(result.text, result.spans, low))
    if result.spans:
        st.dataframe(render.mentions_frame(result.spans, low), hide_index=True, width="stretch")
    else:
        st.info("No disease mentions found in this text.")
    _downloads(result)
    _correct_a_sentence(result)


def render_page() -> None:
    settings = shell.settings_or_stop()
    st.title("Tag text")
    shell.show_flashes()
    status = services.serving_model(settings)
    if status.tagger is None:
        st.warning(status.problem, icon=":material/warning:")
    if _input_form(status.tagger is not None, load_samples()):
        _tag(status, settings)
    result = state.tag_result()
    if result is not None:
        _show_result(result, settings)


if __name__ == "__main__":
    render_page()
