"""benchmarks/editor_replay.py: the actions benchmark's plans, replayed in the real editor.

A few plans from the planners on small label pairs, each using a different part of the
editor (Home/End, a selection that removes two spans, marking over a span, edge keys
and edge drags, a one-word mark with click + Shift-click), must reach their gold labels
in Chromium with exactly the planned number of keys and gestures.
"""

from __future__ import annotations

from dataclasses import asdict

import pytest

from benchmarks.actions_per_correction import editor_keyboard_plan, editor_mouse_plan
from tests.e2e.chromium import missing_chromium

pytestmark = pytest.mark.slow

B, I, O = "B-Disease", "I-Disease", "O"  # noqa: E741 (the labels as the corpus spells them)

WORDS = "Lithium induced chronic renal failure and acute seizures in two elderly patients ."
CASES = [
    # a missed span at the end (End), a false one at the start
    ((B, O, O, O, O, O, O, O, O, O, O, O, O), (O, O, O, O, O, O, O, O, O, O, B, I, O)),
    # two false spans with nothing between them, one too short
    ((B, I, O, B, I, O, O, O, B, O, O, O, O), (O, O, O, O, O, O, O, O, B, I, O, O, O)),
    # edges: a span one word too long on the left, another one word too short
    ((O, O, B, I, I, O, O, B, O, O, O, O, O), (O, O, O, B, I, O, B, I, O, O, O, O, O)),
    # one word to mark, one span that overlaps two gold spans
    ((O, O, B, I, I, I, I, I, O, O, O, O, O), (B, O, O, B, I, O, B, I, O, O, O, O, O)),
    # nothing found, two spans missed
    ((O,) * 13, (O, O, B, I, I, O, B, I, O, O, O, B, O)),
]


def test_replayed_plans_match_in_the_browser() -> None:
    missing = missing_chromium()
    if missing:
        pytest.skip(missing)
    from benchmarks.editor_replay import replay_plans

    words = WORDS.split()
    plans = [
        {
            "words": words,
            "predicted": list(predicted),
            "gold": list(gold),
            "editor_keyboard": asdict(editor_keyboard_plan(predicted, gold)),
            "editor_mouse": asdict(editor_mouse_plan(predicted, gold)),
        }
        for predicted, gold in CASES
    ]
    steps = [step for plan in plans for step in plan["editor_keyboard"]["steps"]]
    gestures = [step.split()[0] for plan in plans for step in plan["editor_mouse"]["steps"]]
    assert {"End", "Shift+ArrowRight", "Shift+ArrowLeft", "Backspace", "]", "d"} <= set(steps)
    assert {"click", "shift-click", "drag"} <= set(gestures)
    result = replay_plans(plans, len(plans))
    assert result["mismatches"] == []
    assert result["keyboard"] == {"replayed": len(plans), "matched": len(plans)}
    assert result["mouse"] == {"replayed": len(plans), "matched": len(plans)}
