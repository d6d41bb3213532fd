"""The Correct page before the span editor (``app/page_correct.py`` at commit 7773f1c).

Kept for the actions-per-correction benchmark only: its word-label edits (reject,
re-bound and mark a span; set a label in the token table) and the cost of each in the
page's clicks, so :func:`plan` can count what correcting one sentence took there.

Each edit takes IOB2 labels and returns new valid IOB2 labels; word ranges are
``[start, end)`` word indexes. An edit never leaves an ``I-`` that continues nothing:
a span cut in two keeps its tail as a new entity starting with ``B-``.

tests/test_actions_benchmark.py checks every edit and plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tagger.bio import ENTITY_TYPE, entity_spans, repair_bio

if TYPE_CHECKING:
    from benchmarks.actions_per_correction import Plan

# The page's controls: "Pick another sentence" (open, type the number, Load), Save.
NAVIGATION = ("open picker", "type sentence number", "Load sentence")
SAVE = "Save correction"
TABLE_CELL_ACTIONS = 2  # open a cell of the label column, choose a label

LABEL_CHOICES = ("O", f"B-{ENTITY_TYPE}", f"I-{ENTITY_TYPE}")


def _check_range(labels: Sequence[str], start: int, end: int) -> None:
    if not 0 <= start < end <= len(labels):
        raise ValueError(
            f"word range [{start}, {end}) is not inside a sentence of {len(labels)} words; "
            "pick a first word before the last one."
        )


def _repaired(labels: Sequence[str]) -> tuple[str, ...]:
    return repair_bio(labels)[0]


def mark_span(
    labels: Sequence[str], start: int, end: int, entity_type: str = ENTITY_TYPE
) -> tuple[str, ...]:
    """Make words ``[start, end)`` exactly one entity, whatever they were before."""
    _check_range(labels, start, end)
    marked = list(labels)
    marked[start:end] = [f"B-{entity_type}"] + [f"I-{entity_type}"] * (end - start - 1)
    # A span that ran on past `end` keeps its tail as an entity of its own.
    if end < len(marked) and marked[end].startswith("I-"):
        marked[end] = "B-" + marked[end].removeprefix("I-")
    return _repaired(marked)


def reject_span(labels: Sequence[str], start: int, end: int) -> tuple[str, ...]:
    """Make words ``[start, end)`` outside any entity."""
    _check_range(labels, start, end)
    cleared = list(labels)
    cleared[start:end] = ["O"] * (end - start)
    return _repaired(cleared)


def change_span(
    labels: Sequence[str], old: tuple[int, int], new: tuple[int, int]
) -> tuple[str, ...]:
    """Move one entity's boundaries: clear ``old``, then mark ``new``."""
    return mark_span(reject_span(labels, *old), *new)


def has_span(labels: Sequence[str], start: int, end: int) -> bool:
    """Whether words ``[start, end)`` are exactly one entity in ``labels``."""
    return any(s == start and e == end for s, e, _ in entity_spans(_repaired(labels)))


def invalid_positions(labels: Sequence[str]) -> list[int]:
    """Indexes of ``I-`` labels that continue no entity (an ``I`` without a ``B``)."""
    repaired = _repaired(labels)
    return [index for index, (a, b) in enumerate(zip(labels, repaired, strict=True)) if a != b]


def _table_edit(
    before: Sequence[str], after: Sequence[str]
) -> tuple[int, list[str], tuple[str, ...]]:
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    steps = [
        step for i in changed for step in (f"table: open word {i}", f"table: choose {after[i]}")
    ]
    return TABLE_CELL_ACTIONS * len(changed), steps, tuple(after)


def _handles(slider: tuple[int, int], wanted: tuple[int, int]) -> list[str]:
    return [f"drag handle to {w}" for s, w in zip(slider, wanted, strict=True) if s != w]


def plan(predicted: Sequence[str], gold: Sequence[str]) -> Plan:
    """The fewest clicks on the old page, edit by edit the cheaper of its two ways.

    Span edits use the buttons and the range slider (whose two handles stay where the
    last edit left them); any edit can instead be made in the token table.
    """
    from benchmarks.actions_per_correction import Plan, span_edits

    edits = span_edits(predicted, gold)
    labels = tuple(predicted)
    slider = (0, 0)
    actions = len(NAVIGATION)
    steps = list(NAVIGATION)

    def choose(button_cost: int, button_steps: list[str], after: tuple[str, ...]) -> bool:
        nonlocal actions, labels
        table_cost, table_steps, _ = _table_edit(labels, after)
        use_buttons = button_cost <= table_cost
        actions += button_cost if use_buttons else table_cost
        steps.extend(button_steps if use_buttons else table_steps)
        labels = after
        return use_buttons

    for start, end in edits.remove:
        choose(1, [f"Reject {start}-{end}"], reject_span(labels, start, end))
    for old, new in edits.resize:
        wanted = (new[0], new[1] - 1)
        moves = _handles((old[0], old[1] - 1), wanted)
        button_steps = [f"Bounds {old[0]}-{old[1]}", *moves, "Apply new boundaries"]
        if choose(len(button_steps), button_steps, change_span(labels, old, new)):
            slider = wanted
    for start, end in edits.mark:
        wanted = (start, end - 1)
        button_steps = [*_handles(slider, wanted), "Mark as disease"]
        if choose(len(button_steps), button_steps, mark_span(labels, start, end)):
            slider = wanted
    steps.append(SAVE)
    return Plan(actions + 1, tuple(steps), repair_bio(labels)[0])
