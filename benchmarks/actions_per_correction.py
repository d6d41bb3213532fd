"""Actions per correction: the span editor against the Correct page it replaced.

For every devel sentence where the model errs (or a fixed sample of them), plan the
fewest user actions, keys or clicks, that turn the model's labels into the gold ones,
counting the actions that bring the curator to the sentence and on to the next one:

- **span editor** (``app/span_editor``: the Review page and today's Correct page): the
  next item comes with save-and-next (`S`, one key). With the mouse a span is removed
  with one click, marked with one drag (one word: a click and a Shift-click), and one of
  its edges moved with one drag; the keyboard-only plan walks a word cursor from the
  first word (←/→, Home, End), selects with Shift+→/←, marks with `D`, removes with
  Backspace and moves an edge one word per key. Marking replaces the spans it overlaps,
  so a span under a new one needs no removal; :class:`EditorModel` executes the steps as
  the editor does, and the cheapest order and way of the edits is chosen.
- **the Correct page before it** (``app/page_correct.py`` at commit 7773f1c, its
  operations in :mod:`benchmarks.legacy_correct_page`): pick the sentence (open
  "Pick another sentence", type its number, Load: 3), Reject a span (1), mark words
  with the range slider (one drag per handle that moves, then Mark: up to 3), change a
  span's boundaries (Bounds, the handles, Apply: up to 4), or set labels in the token
  table (2 per word: open the cell, choose), then Save (1).

Each plan is executed with the UI's own edit operations and must end at the gold
labels (the legacy page's in Python; the span editor's in :class:`EditorModel`, and a
sample of them in the editor itself, in Chromium, by ``--verify-in-browser N``:
:mod:`benchmarks.editor_replay`). Usage::

    python -m benchmarks.actions_per_correction --model models/bench-queue/base \\
        --data-dir $BC5CDR_DIR --out benchmarks/results/actions.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks import legacy_correct_page as legacy
from tagger.bio import entity_spans, repair_bio

Labels = tuple[str, ...]
WordRange = tuple[int, int]  # [start, end) word indexes
ENTITY = "Disease"


@dataclass(frozen=True)
class Plan:
    """The actions of one UI for one sentence, and the labels they lead to."""

    actions: int
    steps: tuple[str, ...]
    labels: Labels


@dataclass(frozen=True)
class SpanEdits:
    """What separates the prediction from the gold labels, span by span."""

    remove: tuple[WordRange, ...]
    resize: tuple[tuple[WordRange, WordRange], ...]  # (predicted, gold)
    mark: tuple[WordRange, ...]


def word_ranges(labels: Sequence[str]) -> list[WordRange]:
    return [(start, end) for start, end, _ in entity_spans(repair_bio(labels)[0])]


def overlaps(a: WordRange, b: WordRange) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def span_edits(predicted: Sequence[str], gold: Sequence[str]) -> SpanEdits:
    """Spans to remove, to resize (one predicted span overlapping one gold span) and to mark."""
    wanted, have = word_ranges(gold), word_ranges(predicted)
    extra = [p for p in have if p not in wanted]
    missing = [g for g in wanted if g not in have]
    resize: list[tuple[WordRange, WordRange]] = []
    for g in list(missing):
        over = [p for p in extra if overlaps(p, g)]
        if len(over) == 1 and sum(overlaps(over[0], other) for other in missing) == 1:
            resize.append((over[0], g))
            extra.remove(over[0])
            missing.remove(g)
    return SpanEdits(tuple(extra), tuple(resize), tuple(missing))


class EditorModel:
    """The span editor's edits on one sentence, as ``app/span_editor/editor.js`` makes them.

    A plan's steps are executed here to get its labels, and ``--verify-in-browser``
    (:mod:`benchmarks.editor_replay`) replays them in the real editor to check that this
    model and the editor agree. What it mirrors: the cursor starts on the first word;
    marking (`D`, a drag, click + Shift-click) replaces every span it overlaps and
    leaves the cursor on the new span's first word; Backspace removes every span the
    selection (or the cursor's word) touches; an edge moves one word per key, or to the
    word under the pointer, and never past its span's other edge, a neighbouring span
    or the sentence; a click on a span removes it, a click elsewhere only places the
    cursor (a drag that starts and ends on one word is such a click).
    """

    def __init__(self, labels: Sequence[str]) -> None:
        self.n = len(labels)
        self.spans: list[WordRange] = word_ranges(labels)
        self.cursor = 0
        self.anchor: int | None = None
        self.saved: Labels | None = None

    def labels(self) -> Labels:
        out = ["O"] * self.n
        for start, end in self.spans:
            out[start:end] = [f"B-{ENTITY}"] + [f"I-{ENTITY}"] * (end - start - 1)
        return tuple(out)

    def span_at(self, index: int) -> int:
        return next((k for k, (s, e) in enumerate(self.spans) if s <= index < e), -1)

    def selection(self) -> WordRange:
        if self.anchor is None:
            return (self.cursor, self.cursor + 1)
        return (min(self.anchor, self.cursor), max(self.anchor, self.cursor) + 1)

    def mark_range(self, start: int, end: int) -> None:
        self.spans = sorted(
            [*(p for p in self.spans if not overlaps(p, (start, end))), (start, end)]
        )
        self.anchor = None
        self.cursor = start

    def remove_at_cursor(self) -> None:
        chosen = self.selection()
        self.spans = [p for p in self.spans if not overlaps(p, chosen)]
        self.anchor = None

    def edge_limits(self, k: int) -> tuple[int, int]:
        floor = self.spans[k - 1][1] if k > 0 else 0
        ceiling = self.spans[k + 1][0] if k + 1 < len(self.spans) else self.n
        return floor, ceiling

    def move_edge(self, edge: str, step: int) -> None:
        k = self.span_at(self.cursor)
        if k < 0:
            return
        s, e = self.spans[k]
        floor, ceiling = self.edge_limits(k)
        if edge == "start":
            s = min(max(s + step, floor), e - 1)
        else:
            e = max(min(e + step, ceiling), s + 1)
        self.spans[k] = (s, e)
        self.cursor = min(max(self.cursor, s), e - 1)

    def key(self, name: str) -> None:
        shift, _, key = name.rpartition("+")
        if key in ("ArrowLeft", "ArrowRight"):
            step = -1 if key == "ArrowLeft" else 1
            if shift:
                if self.anchor is None:
                    self.anchor = self.cursor
            else:
                self.anchor = None
            self.cursor = min(max(self.cursor + step, 0), self.n - 1)
        elif key in ("Home", "End"):
            self.anchor = None
            self.cursor = 0 if key == "Home" else self.n - 1
        elif key in ("d", "Enter"):
            self.mark_range(*self.selection())
        elif key in ("Backspace", "Delete"):
            self.remove_at_cursor()
        elif key in ("[", "]"):
            self.move_edge("start", -1 if key == "[" else 1)
        elif key in ("{", "}"):
            self.move_edge("end", -1 if key == "{" else 1)
        elif key.lower() == "s":
            self.saved = self.labels()
        else:
            raise ValueError(f"no such key in a plan: {name!r}")

    def click(self, index: int, shift: bool = False) -> None:
        if shift:
            start = self.cursor if self.anchor is None else self.anchor
            self.mark_range(min(start, index), max(start, index) + 1)
        elif self.span_at(index) >= 0:
            self.cursor = index
            self.remove_at_cursor()
        else:
            self.cursor = self.anchor = index

    def drag_edge(self, edge: str, handle_word: int, to: int) -> None:
        k = self.span_at(handle_word)
        s, e = self.spans[k]
        floor, ceiling = self.edge_limits(k)
        if edge == "start":
            s = min(max(to, floor), e - 1)
        else:
            e = max(min(to + 1, ceiling), s + 1)
        self.spans[k] = (s, e)
        self.cursor, self.anchor = s, None

    def gesture(self, step: str) -> None:
        """One mouse step of :func:`editor_mouse_plan` (or the save key)."""
        words = step.split()
        if step == "S":
            self.key("s")
        elif words[:2] == ["click", "span"]:
            start, _ = (int(x) for x in words[2].split("-"))
            self.click(start)
        elif words[0] in ("click", "shift-click"):
            self.click(int(words[2]), shift=words[0] == "shift-click")
        elif words[:2] in (["drag", "start"], ["drag", "end"]):
            old, new = (int(x) for x in words[2].split("->"))
            if words[1] == "start":
                self.drag_edge("start", old, new)
            else:
                self.drag_edge("end", old - 1, new - 1)
        elif words[0] == "drag":
            start, end = (int(x) for x in words[1].split("-"))
            if end - start < 2:
                raise ValueError(f"a drag within one word is a click: {step!r}")
            self.mark_range(start, end)
        else:
            raise ValueError(f"no such mouse step: {step!r}")


def _executed(predicted: Sequence[str], steps: list[str], mouse: bool) -> Plan:
    model = EditorModel(predicted)
    for step in steps:
        if mouse:
            model.gesture(step)
        else:
            model.key(step)
    assert model.saved is not None, "a plan ends with the save key"
    return Plan(len(steps), tuple(steps), model.saved)


def _free_removals(edits: SpanEdits, marked: Sequence[WordRange]) -> list[WordRange]:
    """The spans to remove that no marking replaces on its own."""
    return [p for p in edits.remove if not any(overlaps(p, g) for g in marked)]


def editor_mouse_plan(predicted: Sequence[str], gold: Sequence[str]) -> Plan:
    """Click to remove, drag an edge or drag over words to mark; `S` saves and opens the next.

    A drag that marks replaces the spans it overlaps, so a span to resize is re-marked
    when that is cheaper (a drag over two words or more is one gesture), and spans
    under a marking need no click. One word is marked with a click and a Shift-click on
    it (a drag that stays on one word is a click).
    """
    edits = span_edits(predicted, gold)
    marks = list(edits.mark)
    resizes: list[tuple[WordRange, WordRange]] = []
    for p, g in edits.resize:
        edge_drags = (g[0] != p[0]) + (g[1] != p[1])
        if _mouse_mark_cost(g) < edge_drags:
            marks.append(g)
        else:
            resizes.append((p, g))
    steps = [f"click span {start}-{end}" for start, end in _free_removals(edits, marks)]
    for (p_start, p_end), (g_start, g_end) in resizes:
        if g_start != p_start:
            steps.append(f"drag start {p_start}->{g_start}")
        if g_end != p_end:
            steps.append(f"drag end {p_end}->{g_end}")
    for start, end in sorted(marks):
        if end - start > 1:
            steps.append(f"drag {start}-{end}")
        else:
            steps += [f"click word {start}", f"shift-click word {start}"]
    steps.append("S")
    return _executed(predicted, steps, mouse=True)


def _mouse_mark_cost(g: WordRange) -> int:
    return 1 if g[1] - g[0] > 1 else 2


def cursor_keys(at: int, to: int, n: int) -> list[str]:
    """The fewest keys that bring the cursor from word ``at`` to word ``to``: ←/→, Home, End."""
    ways = [
        ["ArrowRight" if to > at else "ArrowLeft"] * abs(to - at),
        ["Home", *["ArrowRight"] * to],
        ["End", *["ArrowLeft"] * (n - 1 - to)],
    ]
    return min(ways, key=len)  # the first of equals: plain arrows


# One job of the keyboard plan: its options from a cursor position, as (keys, cursor after).
KeyOptions = list[tuple[list[str], int]]
Job = tuple[int, int, Callable[[int], KeyOptions]]  # (bits of the edits it does, where, options)
SUBSET_SEARCH_JOBS = 9  # up to this many jobs every order is tried, beyond it left to right


def _mark_options(at: int, g: WordRange, n: int) -> KeyOptions:
    extend = g[1] - g[0] - 1
    forward = cursor_keys(at, g[0], n) + ["Shift+ArrowRight"] * extend + ["d"]
    backward = cursor_keys(at, g[1] - 1, n) + ["Shift+ArrowLeft"] * extend + ["d"]
    return [(forward, g[0]), (backward, g[0])]


def _resize_options(at: int, p: WordRange, g: WordRange, n: int) -> KeyOptions:
    options = _mark_options(at, g, n)  # marking the gold span replaces the old one
    start_keys = ["[" if g[0] < p[0] else "]"] * abs(g[0] - p[0])
    end_keys = ["}" if g[1] > p[1] else "{"] * abs(g[1] - p[1])
    for word in range(*p):
        cursor = min(max(word, g[0]), p[1] - 1)  # after the start moved
        cursor = min(max(cursor, g[0]), g[1] - 1)
        options.append((cursor_keys(at, word, n) + start_keys + end_keys, cursor))
    return options


def _removal_options(at: int, run: Sequence[WordRange], n: int) -> KeyOptions:
    """Remove a run of spans with one Backspace: select from the first into the last."""
    first, last = run[0], run[-1]
    options: KeyOptions = []
    for a in range(*first):
        for b in range(max(a, last[0]), last[1]) if len(run) > 1 else (a,):
            options.append(
                (cursor_keys(at, a, n) + ["Shift+ArrowRight"] * (b - a) + ["Backspace"], b)
            )
            options.append(
                (cursor_keys(at, b, n) + ["Shift+ArrowLeft"] * (b - a) + ["Backspace"], a)
            )
    return options


def editor_keyboard_plan(predicted: Sequence[str], gold: Sequence[str]) -> Plan:
    """Keys only, from the cursor on the first word: the fewest, over every order of the edits.

    Each span to mark is selected (Shift+→ or Shift+←) and marked with `D`, which
    replaces the spans under it; a span to resize is either re-marked so or has its edges
    moved, whichever takes fewer keys; the other spans to remove are removed with
    Backspace, neighbours together through one selection when nothing lies between
    them. The cursor moves with ←/→, Home and End.
    """
    edits = span_edits(predicted, gold)
    n = len(predicted)
    removals = _free_removals(edits, edits.mark)
    kept = [*word_ranges(gold), *(p for p, _ in edits.resize)]
    jobs: list[Job] = []
    for i, first in enumerate(removals):
        for j in range(i, len(removals)):
            run = removals[i : j + 1]
            if any(overlaps(k, (first[0], run[-1][1])) for k in kept):
                break
            bits = sum(1 << b for b in range(i, j + 1))
            jobs.append((bits, first[0], lambda at, run=run: _removal_options(at, run, n)))
    bit = 1 << len(removals)
    for p, g in edits.resize:
        jobs.append((bit, min(p[0], g[0]), lambda at, p=p, g=g: _resize_options(at, p, g, n)))
        bit <<= 1
    for g in edits.mark:
        jobs.append((bit, g[0], lambda at, g=g: _mark_options(at, g, n)))
        bit <<= 1
    steps = [*_cheapest_keys(jobs, bit - 1), "s"]
    return _executed(predicted, steps, mouse=False)


def _cheapest_keys(jobs: list[Job], full: int) -> list[str]:
    """The fewest keys doing every edit once: a search over (edits done, cursor)."""
    singles = [job for job in jobs if job[0] & (job[0] - 1) == 0]
    if len(singles) > SUBSET_SEARCH_JOBS:
        # too many for every order: left to right, each job from its best cursor position
        order = sorted(singles, key=lambda job: job[1])
        layers: dict[int, tuple[int, list[str]]] = {0: (0, [])}
        for _, _, options in order:
            after: dict[int, tuple[int, list[str]]] = {}
            for at, (cost, keys) in layers.items():
                for more, cursor in options(at):
                    if cursor not in after or cost + len(more) < after[cursor][0]:
                        after[cursor] = (cost + len(more), keys + more)
            layers = after
        return min(layers.values(), key=lambda entry: entry[0])[1]
    # by edits done, then by cursor: (keys so far, the state before, the keys of the last job)
    Entry = tuple[int, tuple[int, int] | None, list[str]]
    best: dict[int, dict[int, Entry]] = {0: {0: (0, None, [])}}
    for done in sorted(range(full + 1), key=int.bit_count):
        for at, (cost, _, _) in list(best.get(done, {}).items()):
            for bits, _, options in jobs:
                if bits & done:
                    continue
                after = best.setdefault(done | bits, {})
                for more, cursor in options(at):
                    if cursor not in after or cost + len(more) < after[cursor][0]:
                        after[cursor] = (cost + len(more), (done, at), more)
    cursor = min(best[full], key=lambda position: best[full][position][0])
    keys: list[str] = []
    state: tuple[int, int] | None = (full, cursor)
    while state is not None:
        _, previous, more = best[state[0]][state[1]]
        keys[:0] = more
        state = previous
    return keys


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model folder, version id or current")
    parser.add_argument("--data-dir", required=True, help="BC5CDR-disease folder")
    parser.add_argument("--sample", type=int, default=0, help="0: every sentence the model errs on")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--verify-in-browser",
        type=int,
        default=0,
        metavar="N",
        help="replay N keyboard and N mouse plans in the real editor (Chromium)",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["summary"], indent=2))
    return 0


@dataclass
class Totals:
    editor_mouse: list[int] = field(default_factory=list)
    editor_keyboard: list[int] = field(default_factory=list)
    legacy: list[int] = field(default_factory=list)


def summarize(values: Sequence[int]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "median": float(statistics.median(values))}


def run(args: argparse.Namespace) -> dict[str, object]:
    from tagger import Tagger
    from training.data import load_split

    started = time.time()
    tagger = Tagger.load(args.model)
    devel = load_split("devel", args.data_dir)
    predicted = tagger.tag_words([s.words for s in devel])
    erring = [
        (sentence, labels)
        for sentence, (labels, _) in zip(devel, predicted, strict=True)
        if tuple(labels) != tuple(sentence.labels)
    ]
    if args.sample and args.sample < len(erring):
        erring = random.Random(args.seed).sample(erring, args.sample)
    totals = Totals()
    plans: list[dict[str, object]] = []
    for sentence, labels in erring:
        gold = repair_bio(sentence.labels)[0]
        chosen = {
            "editor_mouse": editor_mouse_plan(labels, gold),
            "editor_keyboard": editor_keyboard_plan(labels, gold),
            "legacy": legacy.plan(labels, gold),
        }
        for name, plan in chosen.items():
            if plan.labels != gold:
                raise AssertionError(f"{name} plan ends at {plan.labels}, not {gold}")
            getattr(totals, name).append(plan.actions)
        plans.append(
            {"words": list(sentence.words), "predicted": list(labels), "gold": list(gold)}
            | {name: asdict(plan) for name, plan in chosen.items()}
        )
    verified = {}
    if args.verify_in_browser:
        from benchmarks.editor_replay import replay_plans

        verified = replay_plans(plans, args.verify_in_browser)
    summary: dict[str, object] = {
        "model": tagger.version,
        "devel_sentences": len(devel),
        "sentences_measured": len(erring),
        "editor_mouse": summarize(totals.editor_mouse),
        "editor_keyboard": summarize(totals.editor_keyboard),
        "legacy_correct_page": summarize(totals.legacy),
        "verified_in_browser": verified,
        "seconds": round(time.time() - started, 1),
    }
    return {"summary": summary, "plans": plans}


if __name__ == "__main__":
    sys.exit(main())
