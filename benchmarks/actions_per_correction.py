"""Actions per correction: the span editor against the Correct page it replaced.

For every devel sentence where the model errs (or a fixed sample of them), plan the
fewest user actions, keys or clicks, that turn the model's labels into the gold ones,
counting the actions that bring the curator to the sentence and on to the next one:

- **span editor** (``app/span_editor``: the Review page and today's Correct page): the
  next item comes with save-and-next (`S`, one key). With the mouse a span is removed
  with one click, marked with one drag, and one of its edges moved with one drag; the
  keyboard-only plan walks a word cursor from the first word (←/→), selects with
  Shift+→, marks with `D`, removes with Backspace and moves an edge one word per key.
- **the Correct page before it** (``app/page_correct.py`` at commit 7773f1c, its
  operations in :mod:`benchmarks.legacy_correct_page`): pick the sentence (open
  "Pick another sentence", type its number, Load: 3), Reject a span (1), mark words
  with the range slider (one drag per handle that moves, then Mark: up to 3), change a
  span's boundaries (Bounds, the handles, Apply: up to 4), or set labels in the token
  table (2 per word: open the cell, choose), then Save (1).

Each plan is executed with the UI's own edit operations and must end at the gold
labels (the legacy page's in Python; the span editor's in its JavaScript, in
Chromium, by ``--verify-in-browser``). Usage::

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
from collections.abc import Sequence
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


def editor_mouse_plan(predicted: Sequence[str], gold: Sequence[str]) -> Plan:
    """Click to remove, drag an edge to resize, drag to mark; `S` saves and opens the next."""
    edits = span_edits(predicted, gold)
    labels: Labels = tuple(predicted)
    steps: list[str] = []
    for start, end in edits.remove:
        labels = legacy.reject_span(labels, start, end)
        steps.append(f"click span {start}-{end}")
    for (p_start, p_end), (g_start, g_end) in edits.resize:
        labels = legacy.change_span(labels, (p_start, p_end), (g_start, g_end))
        if g_start != p_start:
            steps.append(f"drag start {p_start}->{g_start}")
        if g_end != p_end:
            steps.append(f"drag end {p_end}->{g_end}")
    for start, end in edits.mark:
        labels = legacy.mark_span(labels, start, end)
        steps.append(f"drag {start}-{end}")
    steps.append("S")
    return Plan(len(steps), tuple(steps), labels)


def editor_keyboard_plan(predicted: Sequence[str], gold: Sequence[str]) -> Plan:
    """Keys only, left to right from a cursor on the first word."""
    edits = span_edits(predicted, gold)
    # (where, rank, kind, old, new): a span marked over one to remove comes after it.
    jobs: list[tuple[int, int, str, WordRange, WordRange]] = []
    jobs += [(p[0], 0, "remove", p, p) for p in edits.remove]
    jobs += [(min(p[0], g[0]), 1, "resize", p, g) for p, g in edits.resize]
    for g in edits.mark:
        after = max([g[0], *(p[0] for p in edits.remove if overlaps(p, g))])
        jobs.append((after, 2, "mark", g, g))
    labels: Labels = tuple(predicted)
    cursor = 0
    steps: list[str] = []

    def move(to: int) -> None:
        nonlocal cursor
        key = "ArrowRight" if to > cursor else "ArrowLeft"
        steps.extend([key] * abs(to - cursor))
        cursor = to

    for _, _, kind, old, new in sorted(jobs):
        if kind == "remove":
            move(min(max(cursor, old[0]), old[1] - 1))
            steps.append("Backspace")
            labels = legacy.reject_span(labels, *old)
        elif kind == "resize":
            move(min(max(cursor, old[0]), old[1] - 1))
            start_key = "[" if new[0] < old[0] else "]"
            end_key = "}" if new[1] > old[1] else "{"
            steps.extend([start_key] * abs(new[0] - old[0]))
            steps.extend([end_key] * abs(new[1] - old[1]))
            labels = legacy.change_span(labels, old, new)
        else:
            move(new[0])
            steps.extend(["Shift+ArrowRight"] * (new[1] - new[0] - 1))
            steps.append("d")
            cursor = new[1] - 1
            labels = legacy.mark_span(labels, *new)
    steps.append("s")
    return Plan(len(steps), tuple(steps), labels)


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
