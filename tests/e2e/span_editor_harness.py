"""A small Streamlit page around the span editor, for its browser test.

``streamlit run tests/e2e/span_editor_harness.py`` with the repository root on
``PYTHONPATH`` and ``SPAN_EDITOR_EVENTS`` naming a folder. Open it at
``?set=<name>&run=<id>``: it shows the set's items (tests/e2e/span_editor_items.py) one
by one, appends each event to ``<folder>/<id>.jsonl`` and moves to the next item. The
sidebar has a text box (a rerun for another reason) and a checkbox that unmounts the
editor (a remount).

``?set=replay`` shows, one sentence each, the items in the JSON file that
``SPAN_EDITOR_REPLAY`` names: a list of ``{key, words, labels, scores}``
(``benchmarks/editor_replay.py`` replays the actions benchmark's plans on them).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import streamlit as st

from app.span_editor import EditorEvent, EditorSentence, span_editor
from tests.e2e.span_editor_items import ITEM_SETS, Item

SINGLE_SENTENCE_SETS = ("single", "replay")


def record(run: str, event: EditorEvent) -> None:
    folder = Path(os.environ.get("SPAN_EDITOR_EVENTS", "test-artifacts/span-editor-events"))
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{run}.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps(dataclasses.asdict(event)) + "\n")


def replay_items() -> list[Item]:
    path = Path(os.environ["SPAN_EDITOR_REPLAY"])
    return [
        (
            str(item["key"]),
            [EditorSentence(tuple(item["words"]), tuple(item["labels"]), tuple(item["scores"]))],
        )
        for item in json.loads(path.read_text(encoding="utf-8"))
    ]


def main() -> None:
    set_name = st.query_params.get("set", "basic")
    run = st.query_params.get("run", "default")
    items = replay_items() if set_name == "replay" else ITEM_SETS[set_name]
    st.session_state.setdefault("position", 0)
    st.session_state["reruns"] = st.session_state.get("reruns", 0) + 1
    st.sidebar.text_input("Other widget", key="other")
    hidden = st.sidebar.checkbox("Hide editor", key="hide")
    st.sidebar.write(f"Reruns: {st.session_state['reruns']}")
    position = st.session_state["position"]
    if position >= len(items):
        st.success("All items done")
        return
    item_key, sentences = items[position]
    st.write(f"Item {position + 1} of {len(items)}: {item_key}")
    if hidden:
        return
    event = span_editor(
        item_key, sentences, key="editor", single_sentence=set_name in SINGLE_SENTENCE_SETS
    )
    if event is not None:
        record(run, event)
        if event.item_key == item_key:
            st.session_state["position"] = position + 1
            st.rerun()


main()
