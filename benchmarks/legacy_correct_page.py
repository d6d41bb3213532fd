"""Word-label edits behind the Correct page: accept, reject, re-bound and mark spans.

Each edit takes IOB2 labels and returns new valid IOB2 labels; word ranges are
``[start, end)`` word indexes. An edit never leaves an ``I-`` that continues nothing:
a span cut in two keeps its tail as a new entity starting with ``B-``.

Example:

>>> labels = ("O", "B-Disease", "I-Disease", "O")
>>> reject_span(labels, 1, 3)
('O', 'O', 'O', 'O')
>>> mark_span(labels, 2, 4)
('O', 'B-Disease', 'B-Disease', 'I-Disease')
>>> change_span(labels, (1, 3), (0, 2))
('B-Disease', 'I-Disease', 'O', 'O')
"""

from __future__ import annotations

from collections.abc import Sequence

from tagger.bio import ENTITY_TYPE, entity_spans, repair_bio

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
