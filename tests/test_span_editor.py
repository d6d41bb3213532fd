"""The span editor's Python side: events parsed and checked, the component mounted.

No browser here (tests/e2e/test_span_editor_browser.py drives the real editor). The
AppTest cases mount the real component and deliver a trigger the way the browser does
(a JSON list of ``{"event", "value"}`` on the component's trigger widget, as
Streamlit's BidiComponent frontend sends it); AppTest has no public call for a custom
component's trigger, so :func:`send` goes through ``AppTest._run(widget_states)``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pytest
from streamlit.proto.WidgetStates_pb2 import WidgetStates
from streamlit.runtime.state.session_state import STREAMLIT_INTERNAL_KEY_PREFIX
from streamlit.testing.v1 import AppTest

from app.span_editor import (
    TRIGGER,
    EditorEvent,
    EditorSentence,
    SpanEditorError,
    editor_data,
    iob2_problem,
    parse_event,
)

SENTENCES = [
    EditorSentence(
        ("Cocaine", "induced", "seizures", "."), ("O", "O", "B-Disease", "O"), (0.9,) * 4
    ),
    EditorSentence(("No", "hepatitis"), ("O", "B-Disease"), (0.99, 0.42)),
]
GOOD = {
    "action": "save",
    "item_key": "doc-1@v1",
    "labels": [["B-Disease", "I-Disease", "I-Disease", "O"], ["O", "O"]],
    "note": "",
    "mark_everywhere": [["hepatitis"]],
    "actions": 7,
}


def test_a_good_event_becomes_an_editor_event() -> None:
    event = parse_event(GOOD, SENTENCES)
    assert event == EditorEvent(
        action="save",
        item_key="doc-1@v1",
        labels=(("B-Disease", "I-Disease", "I-Disease", "O"), ("O", "O")),
        note="",
        mark_everywhere=(("hepatitis",),),
        actions=7,
    )


def test_only_a_flag_keeps_its_note() -> None:
    assert parse_event({**GOOD, "action": "flag", "note": "odd"}, SENTENCES).note == "odd"
    assert parse_event({**GOOD, "note": "stray"}, SENTENCES).note == ""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"action": "delete"}, "unknown editor action 'delete'"),
        ({"item_key": None}, "no item_key string"),
        ({"labels": "O O"}, "labels is not a list of lists"),
        ({"labels": [["O", 1, "O", "O"], ["O", "O"]]}, "other than strings"),
        ({"labels": [["O", "I-Disease", "O", "O"], ["O", "O"]]}, "sentence 1 is not valid IOB2"),
        ({"labels": [["O", "O", "O", "O"], ["O", "X"]]}, "label 2 (X) is not O, B-<type>"),
        ({"labels": [["O", "O", "O", "O"]]}, "labels for 1 sentences, the item has 2"),
        ({"labels": [["O", "O", "O"], ["O", "O"]]}, "sentence 1 has 4 words, the editor sent 3"),
        ({"mark_everywhere": [[]]}, "empty word sequence"),
        ({"mark_everywhere": "fever"}, "mark_everywhere is not a list of lists"),
        ({"actions": -1}, "is not a count"),
        ({"actions": True}, "is not a count"),
        ({"note": 3}, "flag note is not a string"),
    ],
)
def test_a_bad_payload_is_a_clear_error(change: dict[str, Any], message: str) -> None:
    with pytest.raises(SpanEditorError, match=re.escape(message)):
        parse_event({**GOOD, **change}, SENTENCES)


def test_a_payload_that_is_no_object_is_refused() -> None:
    with pytest.raises(SpanEditorError, match="sent list, not an event object"):
        parse_event([GOOD])


def test_without_the_item_only_iob2_is_checked() -> None:
    stale = {**GOOD, "labels": [["B-Disease", "I-Disease"]]}
    assert parse_event(stale).labels == (("B-Disease", "I-Disease"),)


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        ([], None),
        (["B-Disease", "B-Disease", "I-Disease"], None),
        (["B-Chemical", "I-Disease"], "label 2 (I-Disease) continues no span"),
        (["I-Disease"], "label 1 (I-Disease) continues no span"),
        (["B-"], "label 1 (B-) is not O, B-<type> or I-<type>"),
    ],
)
def test_iob2_problem(labels: list[str], problem: str | None) -> None:
    assert iob2_problem(labels) == problem


def test_a_sentence_needs_a_label_and_a_score_per_word() -> None:
    with pytest.raises(SpanEditorError, match="2 words, 1 labels, 2 scores"):
        EditorSentence(("a", "b"), ("O",), (1.0, 1.0))


def test_editor_data_is_plain_json_with_scores_in_the_unit_interval() -> None:
    sentence = EditorSentence(("a", "b", "c"), ("O", "O", "O"), (np.float32(0.25), math.nan, 1.5))
    data = editor_data(
        "k", [sentence], low_confidence=0.5, entity_label="Disease", single_sentence=True
    )
    assert json.loads(json.dumps(data))["sentences"][0]["scores"] == [0.25, 0.0, 1.0]
    assert data["single_sentence"] is True


# ---- mounted under AppTest ----------------------------------------------------------


def editor_script() -> None:
    """The app under test: one editor whose item the test picks in session state."""
    import streamlit as st

    from app.span_editor import EditorSentence, SpanEditorError, span_editor

    rows = st.session_state.get("sentences", [(("Fever", "again"), ("B-Disease", "O"))])
    sentences = [EditorSentence(words, labels, (0.9,) * len(words)) for words, labels in rows]
    try:
        event = span_editor(
            st.session_state.get("item_key", "doc-1"),
            sentences,
            key="editor",
            single_sentence=st.session_state.get("single", False),
        )
    except SpanEditorError as error:
        st.session_state.setdefault("seen", []).append(f"error: {error}")
        return
    st.session_state.setdefault("seen", []).append(event)


@pytest.fixture
def app() -> AppTest:
    app = AppTest.from_function(editor_script, default_timeout=60)
    app.run()
    assert not app.exception, app.exception
    return app


def send(app: AppTest, value: object) -> None:
    """Rerun ``app`` with ``value`` on the editor's trigger, as the browser sends it."""
    [component] = app.get("bidi_component")
    states = WidgetStates()
    widget = states.widgets.add()
    widget.id = f"{STREAMLIT_INTERNAL_KEY_PREFIX}_{component.proto.id}__events"
    widget.json_trigger_value = json.dumps([{"event": TRIGGER, "value": value}])
    app._run(states)


def test_the_component_mounts_with_its_code_and_the_item(app: AppTest) -> None:
    [component] = app.get("bidi_component")
    proto = component.proto
    assert proto.component_name == "disease_tagger.span_editor"
    assert "export default function" in proto.js_content
    assert ".span-editor" in proto.css_content
    assert json.loads(proto.json)["sentences"] == [
        {"words": ["Fever", "again"], "labels": ["B-Disease", "O"], "scores": [0.9, 0.9]}
    ]
    assert app.session_state["seen"] == [None]


def test_an_event_is_returned_on_its_rerun_only(app: AppTest) -> None:
    send(app, {**GOOD, "item_key": "doc-1", "labels": [["O", "B-Disease"]], "actions": 2})
    app.run()  # a rerun for any other reason: no event again
    first, event, after = app.session_state["seen"]
    assert first is None and after is None
    assert isinstance(event, EditorEvent)
    assert (event.action, event.labels, event.actions) == ("save", (("O", "B-Disease"),), 2)


def test_a_stale_event_comes_back_for_the_page_to_ignore(app: AppTest) -> None:
    app.session_state["item_key"] = "doc-2"
    app.run()
    send(app, {**GOOD, "item_key": "doc-1", "labels": [["O"]]})  # shaped for doc-1
    event = app.session_state["seen"][-1]
    assert isinstance(event, EditorEvent)
    assert event.item_key == "doc-1"


def test_a_bad_payload_from_the_browser_is_a_clear_error(app: AppTest) -> None:
    send(app, {**GOOD, "item_key": "doc-1", "labels": [["I-Disease", "O"]]})
    assert app.session_state["seen"][-1] == (
        "error: sentence 1 is not valid IOB2: label 1 (I-Disease) continues no span"
    )


def test_single_sentence_takes_one_sentence(app: AppTest) -> None:
    app.session_state["single"] = True
    app.session_state["sentences"] = [(("a",), ("O",)), (("b",), ("O",))]
    app.run()
    assert app.session_state["seen"][-1] == "error: single_sentence needs one sentence, got 2"
