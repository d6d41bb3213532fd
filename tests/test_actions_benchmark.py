"""The actions-per-correction benchmark's planners: each plan must reach the gold labels."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import legacy_correct_page as legacy
from benchmarks.actions_per_correction import (
    editor_keyboard_plan,
    editor_mouse_plan,
    span_edits,
)
from tagger.bio import entity_spans, repair_bio

B, I, O = "B-Disease", "I-Disease", "O"  # noqa: E741 (the labels as the corpus spells them)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda ls: legacy.mark_span(ls, 1, 2), (B, B, B, O)),
        (lambda ls: legacy.reject_span(ls, 1, 2), (B, O, B, O)),
        (lambda ls: legacy.mark_span(ls, 0, 4), (B, I, I, I)),
        (lambda ls: legacy.change_span(ls, (0, 3), (2, 4)), (O, O, B, I)),
    ],
)
def test_legacy_span_edits_always_leave_valid_iob2(edit: object, expected: tuple[str, ...]) -> None:
    result = edit((B, I, I, O))  # type: ignore[operator]
    assert result == expected
    entity_spans(result)  # raises on invalid IOB2


def test_legacy_edits_refuse_ranges_outside_the_sentence() -> None:
    with pytest.raises(ValueError, match=r"word range \[2, 5\) is not inside a sentence of 3"):
        legacy.mark_span((O, O, O), 2, 5)


def test_span_edits_pair_an_overlapping_span_as_a_resize() -> None:
    edits = span_edits((O, B, O, B, O, O), (B, I, O, O, O, B))
    assert edits.resize == (((1, 2), (0, 2)),)
    assert edits.remove == ((3, 4),)
    assert edits.mark == ((5, 6),)


def test_each_ui_counts_its_own_actions_for_one_sentence() -> None:
    # "Chronic renal failure and fever .": the model found "failure" and "fever" but the
    # gold span is "Chronic renal failure" and "fever" is right.
    predicted, gold = (O, O, B, O, B, O), (B, I, I, O, B, O)
    mouse = editor_mouse_plan(predicted, gold)
    assert mouse.steps == ("drag start 2->0", "S") and mouse.labels == gold
    keys = editor_keyboard_plan(predicted, gold)
    # D on the selection "Chronic renal failure" replaces "failure": fewer keys than [ [
    assert keys.steps == ("Shift+ArrowRight", "Shift+ArrowRight", "d", "s")
    assert keys.labels == gold
    old = legacy.plan(predicted, gold)
    assert old.steps == (
        *legacy.NAVIGATION,
        "Bounds 2-3",
        "drag handle to 0",
        "Apply new boundaries",
        legacy.SAVE,
    )
    assert old.actions == 7 and old.labels == gold


def test_the_editor_plans_use_what_the_editor_does() -> None:
    # a span near the end: End, not eleven arrows; the cursor starts on the first word
    far = editor_keyboard_plan((O,) * 12, (O,) * 10 + (B, I))
    assert far.steps == ("End", "Shift+ArrowLeft", "d", "s")
    # two false spans with nothing between them go with one selection and one Backspace
    two = editor_keyboard_plan((B, O, B, O), (O, O, O, O))
    assert two.steps == ("Shift+ArrowRight", "Shift+ArrowRight", "Backspace", "s")
    # a one-word drag is a click: one word is marked with a click and a Shift-click
    one = editor_mouse_plan((O, O, O), (O, B, O))
    assert one.steps == ("click word 1", "shift-click word 1", "S")
    # a drag that marks replaces the span under it: no click to remove it first
    over = editor_mouse_plan((O, B, O, B, O), (B, I, I, I, O))
    assert over.steps == ("drag 0-4", "S")


label_rows = st.lists(st.sampled_from((O, B, I)), min_size=1, max_size=25).map(
    lambda row: repair_bio(row)[0]
)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_every_plan_reaches_the_gold_labels(data: st.DataObject) -> None:
    predicted = data.draw(label_rows)
    gold = data.draw(
        st.lists(st.sampled_from((O, B, I)), min_size=len(predicted), max_size=len(predicted))
    )
    gold = repair_bio(gold)[0]
    for plan in (
        editor_mouse_plan(predicted, gold),
        editor_keyboard_plan(predicted, gold),
        legacy.plan(predicted, gold),
    ):
        assert plan.labels == gold
        assert plan.actions == len(plan.steps)
    assert editor_mouse_plan(predicted, gold).actions <= legacy.plan(predicted, gold).actions
