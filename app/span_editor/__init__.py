"""The in-text span editor: a Streamlit custom component (``st.components.v2``).

The curator edits disease spans in the running text of an abstract, with the mouse or
the keyboard. Every key and click is handled in the browser (``editor.js``); the page
reruns only when the curator saves, accepts, skips or flags, and :func:`span_editor`
returns that one :class:`EditorEvent` on that rerun (a trigger value, delivered once).
A half-edited item (labels, undo history) lives in the browser's ``sessionStorage``
under its ``item_key``, so a rerun for any other reason, or mounting the same item again,
restores it.

Keys (``?`` in the editor shows them): ←/→ move the word cursor, Shift+←/→ extend the
selection, ``D`` or Enter marks it, Backspace/Delete removes the span under the cursor,
``[``/``]`` move that span's start left/right, ``{``/``}`` move its end left/right,
Tab/Shift+Tab go to the next/previous low-confidence span, ``A`` accepts the model's
labels, Ctrl+Z undoes, Ctrl+Shift+Z or Ctrl+Y redoes, ``S`` or Ctrl+Enter saves,
``K`` skips, ``F`` flags with a note, ``Y``/``N`` answer the mark-everywhere prompt,
Esc clears the selection or closes what is open.

What comes back is checked here: the labels must be valid IOB2, one per word:

>>> iob2_problem(["O", "B-Disease", "I-Disease"]) is None
True
>>> iob2_problem(["O", "I-Disease"])
'label 2 (I-Disease) continues no span'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast, get_args

import streamlit as st

Action = Literal["save", "accept", "skip", "flag"]
ACTIONS: tuple[str, ...] = get_args(Action)
COMPONENT_NAME = "disease_tagger.span_editor"
TRIGGER = "event"  # the one trigger the browser sends; its value is the raw event
HERE = Path(__file__).resolve().parent
OUTSIDE = "O"


class SpanEditorError(ValueError):
    """What the browser sent is not an event this editor makes (or the input is bad)."""


@dataclass(frozen=True)
class EditorSentence:
    """One sentence as the editor shows it: its words and the model's labels.

    Args:
        words: the words, shown as text (never as HTML).
        labels: one IOB2 label per word (``O``, ``B-Disease``, ``I-Disease``).
        scores: per word, the model's confidence in its label, in [0, 1].
    """

    words: tuple[str, ...]
    labels: tuple[str, ...]
    scores: tuple[float, ...]

    def __post_init__(self) -> None:
        if not len(self.words) == len(self.labels) == len(self.scores):
            raise SpanEditorError(
                f"a sentence needs one label and one score per word: {len(self.words)} "
                f"words, {len(self.labels)} labels, {len(self.scores)} scores"
            )


@dataclass(frozen=True)
class EditorEvent:
    """What the curator did with an item: the rerun-causing action and its labels.

    Args:
        action: ``save`` (the curator's labels), ``accept`` (the model's labels),
            ``skip`` or ``flag``.
        item_key: the ``item_key`` the editor showed when the curator acted; a page
            compares it with its current item and ignores a stale event.
        labels: per sentence, one valid IOB2 label per word.
        note: the flag's note (``""`` for other actions).
        mark_everywhere: word sequences the curator chose to mark in the collection's
            other unreviewed items.
        actions: editing actions (keys and clicks) the curator used on this item.
    """

    action: Action
    item_key: str
    labels: tuple[tuple[str, ...], ...]
    note: str
    mark_everywhere: tuple[tuple[str, ...], ...]
    actions: int


def iob2_problem(labels: Sequence[str]) -> str | None:
    """Why ``labels`` is not valid IOB2 (1-based position), or None when it is.

    Args:
        labels: one sentence's labels.
    """
    previous = OUTSIDE
    for position, label in enumerate(labels, start=1):
        if not isinstance(label, str):
            return f"label {position} is not a string"
        if label != OUTSIDE:
            prefix, _, kind = label.partition("-")
            if prefix not in ("B", "I") or not kind:
                return f"label {position} ({label}) is not O, B-<type> or I-<type>"
            if prefix == "I" and previous[2:] != kind:
                return f"label {position} ({label}) continues no span"
        previous = label
    return None


def _string_rows(raw: object, what: str) -> tuple[tuple[str, ...], ...]:
    """A list of lists of strings from JSON, or a :class:`SpanEditorError` naming ``what``."""
    if not isinstance(raw, list) or not all(isinstance(row, list) for row in raw):
        raise SpanEditorError(f"the editor's {what} is not a list of lists")
    rows = tuple(tuple(row) for row in raw)
    if not all(isinstance(item, str) for row in rows for item in row):
        raise SpanEditorError(f"the editor's {what} holds something other than strings")
    return rows


def _checked_labels(
    raw: object, sentences: Sequence[EditorSentence] | None
) -> tuple[tuple[str, ...], ...]:
    labels = _string_rows(raw, "labels")
    for index, row in enumerate(labels, start=1):
        problem = iob2_problem(row)
        if problem:
            raise SpanEditorError(f"sentence {index} is not valid IOB2: {problem}")
    if sentences is None:
        return labels
    if len(labels) != len(sentences):
        raise SpanEditorError(
            f"the editor sent labels for {len(labels)} sentences, the item has {len(sentences)}"
        )
    for index, (row, sentence) in enumerate(zip(labels, sentences, strict=True), start=1):
        if len(row) != len(sentence.words):
            raise SpanEditorError(
                f"sentence {index} has {len(sentence.words)} words, the editor sent "
                f"{len(row)} labels"
            )
    return labels


def parse_event(raw: object, sentences: Sequence[EditorSentence] | None = None) -> EditorEvent:
    """The :class:`EditorEvent` in the browser's raw trigger value.

    Args:
        raw: the trigger value (decoded JSON) the editor sent.
        sentences: the item mounted now, when the event is for it: the labels must then
            have one row per sentence and one label per word. None checks IOB2 only.

    Raises:
        SpanEditorError: the value is not an event this editor makes.

    >>> parse_event({"action": "skip", "item_key": "doc-1", "labels": [["O"]]}).action
    'skip'
    """
    if not isinstance(raw, Mapping):
        raise SpanEditorError(f"the editor sent {type(raw).__name__}, not an event object")
    action = raw.get("action")
    if action not in ACTIONS:
        raise SpanEditorError(f"unknown editor action {action!r}; expected one of {ACTIONS}")
    item_key = raw.get("item_key")
    if not isinstance(item_key, str):
        raise SpanEditorError("the editor's event has no item_key string")
    note = raw.get("note", "")
    if not isinstance(note, str):
        raise SpanEditorError("the editor's flag note is not a string")
    actions = raw.get("actions", 0)
    if isinstance(actions, bool) or not isinstance(actions, int) or actions < 0:
        raise SpanEditorError(f"the editor's action count {actions!r} is not a count")
    marks = _string_rows(raw.get("mark_everywhere", []), "mark_everywhere")
    if any(not words for words in marks):
        raise SpanEditorError("the editor sent an empty word sequence to mark everywhere")
    return EditorEvent(
        action=cast(Action, action),
        item_key=item_key,
        labels=_checked_labels(raw.get("labels"), sentences),
        note=note if action == "flag" else "",
        mark_everywhere=marks,
        actions=actions,
    )


def editor_data(
    item_key: str,
    sentences: Sequence[EditorSentence],
    *,
    low_confidence: float,
    entity_label: str,
    single_sentence: bool,
) -> dict[str, Any]:
    """The JSON the browser side receives as ``data``.

    Args:
        item_key: identifies the item (and its draft in the browser).
        sentences: the item's sentences.
        low_confidence: spans scored below this stand out and Tab visits them.
        entity_label: the type of the spans the curator marks.
        single_sentence: one sentence, not an abstract.

    >>> editor_data("k", [EditorSentence(("Fever",), ("B-Disease",), (0.5,))],
    ...             low_confidence=0.6, entity_label="Disease", single_sentence=False)["sentences"]
    [{'words': ['Fever'], 'labels': ['B-Disease'], 'scores': [0.5]}]
    """
    return {
        "item_key": item_key,
        "sentences": [
            {
                "words": [str(word) for word in sentence.words],
                "labels": [str(label) for label in sentence.labels],
                # numpy floats are not JSON; NaN would not parse in the browser
                "scores": [_unit(score) for score in sentence.scores],
            }
            for sentence in sentences
        ],
        "low_confidence": float(low_confidence),
        "entity_label": entity_label,
        "single_sentence": single_sentence,
    }


def _unit(score: float) -> float:
    value = float(score)
    return 0.0 if math.isnan(value) else min(1.0, max(0.0, value))


@cache
def _component() -> Callable[..., Any]:
    """The registered component; its files are read once per process."""
    return st.components.v2.component(
        COMPONENT_NAME,
        html='<div class="span-editor-mount"></div>',
        css=(HERE / "editor.css").read_text(encoding="utf-8"),
        js=(HERE / "editor.js").read_text(encoding="utf-8"),
    )


def _no_callback() -> None:
    """Declares the trigger; the event is read from the return value instead."""


def _mount(*, key: str, data: dict[str, Any], height: int | None) -> Mapping[str, Any]:
    """Mount the component; returns its result (trigger values by name)."""
    return cast(
        Mapping[str, Any],
        _component()(
            key=key,
            data=data,
            height="content" if height is None else height,
            on_event_change=_no_callback,
        ),
    )


def span_editor(
    item_key: str,
    sentences: Sequence[EditorSentence],
    *,
    key: str,
    low_confidence: float = 0.6,
    entity_label: str = "Disease",
    single_sentence: bool = False,
    height: int | None = None,
) -> EditorEvent | None:
    """Show the editor on one item; the curator's event on the rerun it caused, else None.

    Args:
        item_key: identifies the item; the browser keeps a half-edited item's draft under
            it and restores it when the same key is mounted again.
        sentences: the item's sentences with the model's labels and scores.
        key: the Streamlit widget key (keep it the same across items: the editor then
            stays mounted and keeps focus from one item to the next).
        low_confidence: spans scored below this stand out and Tab visits them.
        entity_label: the type of the spans the curator marks.
        single_sentence: one sentence (the Correct page), not a whole abstract.
        height: a fixed height in pixels; None fits the content.

    Raises:
        SpanEditorError: the sentences are inconsistent, or the browser sent a bad event.
    """
    if single_sentence and len(sentences) != 1:
        raise SpanEditorError(f"single_sentence needs one sentence, got {len(sentences)}")
    data = editor_data(
        item_key,
        sentences,
        low_confidence=low_confidence,
        entity_label=entity_label,
        single_sentence=single_sentence,
    )
    raw = _mount(key=key, data=data, height=height).get(TRIGGER)
    if raw is None:
        return None
    is_current = isinstance(raw, Mapping) and raw.get("item_key") == item_key
    return parse_event(raw, sentences if is_current else None)


__all__ = [
    "ACTIONS",
    "Action",
    "EditorEvent",
    "EditorSentence",
    "SpanEditorError",
    "editor_data",
    "iob2_problem",
    "parse_event",
    "span_editor",
]
