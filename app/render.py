"""Turn texts, spans and labels into HTML and tables; every user string is escaped here.

Nothing a user typed or uploaded reaches the page as markup: each piece of text goes
through :func:`escape` (``html.escape`` with quotes) before it is wrapped in our own
tags, and the pages show HTML only through ``st.html`` (no Markdown, so ``*`` or
``$`` in an abstract stay plain characters). Where Streamlit reads Markdown, :func:`md`
makes text literal and :func:`code` shows it verbatim in a code span (paths, ids).

Example:

>>> from types import SimpleNamespace as Span
>>> highlight_html("<b>Fever</b> again", [Span(start=3, end=8, score=0.9, label="Disease")])
'<div class="tagged-text">&lt;b&gt;<mark class="mention" style="--confidence: 0.90" \
title="Disease · confidence 0.90">Fever<span class="score">0.90</span></mark>&lt;/b&gt; again</div>'
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from tagger.bio import Sentence, entity_spans, format_bio

if TYPE_CHECKING:
    from app.state import TagResult

STYLE_SHEET = Path(__file__).resolve().parent.parent / "assets" / "style.css"


class SpanLike(Protocol):
    start: int
    end: int
    score: float
    label: str


def escape(text: str) -> str:
    """Text made safe inside HTML elements and quoted attributes."""
    return html.escape(text, quote=True)


_MARKDOWN_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")


def md(text: str) -> str:
    """Text shown literally where Streamlit reads Markdown (messages, captions, labels).

    Every ASCII punctuation mark gets a backslash, so ``*``, ``$`` (LaTeX),
    ``:red[...]`` or a backtick in a file name or a word stay plain characters.

    >>> print(md("a*b* $x$ <i>"))
    a\\*b\\* \\$x\\$ \\<i\\>
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


_BACKTICK_RUN = re.compile(r"`+")


def code(text: str) -> str:
    """Text shown verbatim as an inline code span where Streamlit reads Markdown.

    Backslashes are shown literally inside a code span, so :func:`md` would garble a
    path there; instead the fence is one backtick longer than any run of backticks in
    the text, and a space pads the text where CommonMark would otherwise eat a
    backtick or a space at its ends. Line breaks become spaces, as Markdown shows them.

    >>> print(code("data/logs/job_1.log"))
    `data/logs/job_1.log`
    >>> print(code("runs/*new*_`1`.log"))
    ``runs/*new*_`1`.log``
    >>> print(code("`quoted`"))
    `` `quoted` ``
    """
    text = " ".join(text.splitlines()) or " "
    fence = "`" * (max(map(len, _BACKTICK_RUN.findall(text)), default=0) + 1)
    padded = text.startswith("`") or text.endswith("`")
    padded = padded or (text.startswith(" ") and text.endswith(" ") and bool(text.strip()))
    return f"{fence} {text} {fence}" if padded else f"{fence}{text}{fence}"


def style_sheet() -> str:
    """The app's CSS as a ``<style>`` block (empty when the file is missing)."""
    try:
        css = STYLE_SHEET.read_text(encoding="utf-8")
    except OSError:
        return ""
    return f"<style>{css}</style>"


# ---------------------------------------------------------------------------
# Highlighted text
# ---------------------------------------------------------------------------


def _mention_html(text: str, span: SpanLike, low_confidence: float) -> str:
    low = span.score < low_confidence
    css = "mention low" if low else "mention"
    hint = " · low confidence, please check" if low else ""
    title = f"{span.label} · confidence {span.score:.2f}{hint}"
    return (
        f'<mark class="{css}" style="--confidence: {span.score:.2f}" title="{escape(title)}">'
        f'{escape(text)}<span class="score">{span.score:.2f}</span></mark>'
    )


def highlight_html(text: str, spans: Iterable[SpanLike], low_confidence: float = 0.6) -> str:
    """The whole text with each span marked; shade and a score show the confidence."""
    pieces: list[str] = []
    position = 0
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        if span.start < position or span.end > len(text) or span.start >= span.end:
            continue  # overlapping or out-of-range spans cannot be drawn inline
        pieces.append(escape(text[position : span.start]))
        pieces.append(_mention_html(text[span.start : span.end], span, low_confidence))
        position = span.end
    pieces.append(escape(text[position:]))
    return f'<div class="tagged-text">{"".join(pieces)}</div>'


@dataclass(frozen=True)
class WordMark:
    """Words ``[start, end)`` drawn with a CSS class and a tooltip."""

    start: int
    end: int
    css: str
    title: str


def words_html(words: Sequence[str], marks: Iterable[WordMark], *, numbered: bool = False) -> str:
    """Words separated by spaces, marked ranges wrapped in ``<mark>``."""
    opening: dict[int, WordMark] = {}
    for mark in marks:
        if 0 <= mark.start < mark.end <= len(words):
            opening.setdefault(mark.start, mark)
    pieces: list[str] = []
    index = 0
    while index < len(words):
        mark = opening.get(index)
        end = mark.end if mark else index + 1
        inner = " ".join(_word_html(i, words[i], numbered) for i in range(index, end))
        if mark:
            inner = f'<mark class="{escape(mark.css)}" title="{escape(mark.title)}">{inner}</mark>'
        pieces.append(inner)
        index = end
    return f'<div class="tagged-text">{" ".join(pieces)}</div>'


def _word_html(index: int, word: str, numbered: bool) -> str:
    suffix = f'<span class="word-index">{index}</span>' if numbered else ""
    return f"{escape(word)}{suffix}"


def label_marks(labels: Sequence[str], css: str, title: str) -> list[WordMark]:
    return [WordMark(start, end, css, title) for start, end, _ in entity_spans(labels)]


def comparison_marks(
    own: Sequence[str], other: Sequence[str], *, missing_css: str, missing_title: str
) -> list[WordMark]:
    """Marks for ``own`` entities: green where ``other`` has the same span, else flagged."""
    others = {(start, end) for start, end, _ in entity_spans(other)}
    return [
        WordMark(start, end, "agree", "both agree")
        if (start, end) in others
        else WordMark(start, end, missing_css, missing_title)
        for start, end, _ in entity_spans(own)
    ]


def legend_html(low_confidence: float) -> str:
    return (
        '<div class="legend">'
        '<mark class="mention" style="--confidence: 0.95">confident</mark> '
        '<mark class="mention" style="--confidence: 0.70">less sure</mark> '
        f'<mark class="mention low">below {low_confidence:.2f}: check it</mark> '
        "(darker shade = higher confidence; hover a mention for its score)</div>"
    )


# ---------------------------------------------------------------------------
# Tables and downloads
# ---------------------------------------------------------------------------


def mentions_frame(spans: Sequence[Any], low_confidence: float = 0.6) -> pd.DataFrame:
    """One row per mention: text, offsets, score, sentence and how often it repeats."""
    repeats = Counter(span.text.casefold() for span in spans)
    return pd.DataFrame(
        {
            "mention": [span.text for span in spans],
            "start": [span.start for span in spans],
            "end": [span.end for span in spans],
            "score": [round(span.score, 3) for span in spans],
            "low confidence": [span.score < low_confidence for span in spans],
            "sentence": [span.sentence + 1 for span in spans],
            "repeats": [repeats[span.text.casefold()] for span in spans],
        }
    )


def result_json(result: TagResult) -> str:
    """The tagged text and its mentions as JSON for download."""
    payload = {
        "model_version": result.model_version,
        "device": result.device,
        "source": result.source,
        "text": result.text,
        "mentions": [
            {
                "text": span.text,
                "start": span.start,
                "end": span.end,
                "label": span.label,
                "score": round(span.score, 4),
                "sentence": span.sentence,
            }
            for span in result.spans
        ],
    }
    return json.dumps(payload, ensure_ascii=False, indent=2)


def result_bio(result: TagResult) -> str:
    """The tagged sentences in BC5CDR BIO format (``word<TAB>label``)."""
    sentences = [
        Sentence(sentence.words, sentence.labels) for sentence in result.sentences if sentence.words
    ]
    return format_bio(sentences) if sentences else ""


def plural(count: int, noun: str) -> str:
    """``plural(1, "mention")`` is ``1 mention``; ``plural(1200, "mention")`` ``1,200 mentions``."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def preview(words: Sequence[str], limit: int = 90) -> str:
    text = " ".join(words)
    return text if len(text) <= limit else text[: limit - 1] + "…"
