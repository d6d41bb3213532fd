"""What a curator's session remembers between reruns and pages.

Streamlit reruns a page script on every click; results that took the model time
(a tagged text, a tagged file) and the sentence being corrected live here, under
the keys below, as small frozen dataclasses. Only this module touches those keys.

Example::

    state.set_tag_result(result)
    result = state.tag_result()   # None until a text was tagged
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import streamlit as st

if TYPE_CHECKING:
    from app.evaluation import Comparison
    from tagger import TaggedSentence
    from tagger.bio import Sentence
    from tagger.spans import Span

ANNOTATOR = "annotator"
TAG_RESULT = "tag_result"
INSPECT_RESULT = "inspect_result"
CORRECTION_TARGET = "correction_target"
SAVED_IDS = "saved_correction_ids"
FLASH = "flash_messages"

Session = MutableMapping[str, Any]


@dataclass(frozen=True)
class TagResult:
    """A tagged text as the Tag page shows it."""

    text: str
    source: str
    sentences: tuple[TaggedSentence, ...]
    spans: tuple[Span, ...]
    model_version: str
    device: str
    seconds: float
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class InspectResult:
    """An uploaded BIO file tagged by the model and compared with its own labels."""

    file_name: str
    digest: str
    gold: tuple[Sentence, ...]
    predicted: tuple[tuple[str, ...], ...]
    scores: tuple[tuple[float, ...], ...]
    comparison: Comparison
    model_version: str
    device: str
    seconds: float
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CorrectionTarget:
    """One sentence handed to the Correct page, with what the model predicted for it."""

    words: tuple[str, ...]
    predicted: tuple[str, ...]
    scores: tuple[float, ...]
    source: str
    sentence_index: int
    origin: str  # where it came from, for the curator: "pasted text" or a file name
    model_version: str
    file_labels: tuple[str, ...] | None = None

    @property
    def ident(self) -> str:
        return f"{self.source}#{self.sentence_index}"


def _session(session: Session | None) -> Session:
    return st.session_state if session is None else session


def tag_result(session: Session | None = None) -> TagResult | None:
    return _session(session).get(TAG_RESULT)


def set_tag_result(result: TagResult, session: Session | None = None) -> None:
    _session(session)[TAG_RESULT] = result


def inspect_result(session: Session | None = None) -> InspectResult | None:
    return _session(session).get(INSPECT_RESULT)


def set_inspect_result(result: InspectResult | None, session: Session | None = None) -> None:
    _session(session)[INSPECT_RESULT] = result


def correction_target(session: Session | None = None) -> CorrectionTarget | None:
    return _session(session).get(CORRECTION_TARGET)


def start_correction(target: CorrectionTarget, session: Session | None = None) -> None:
    """Make ``target`` the sentence being corrected.

    The draft of its labels lives in the browser's span editor, keyed by the sentence,
    so only the target is remembered here.
    """
    _session(session)[CORRECTION_TARGET] = target


def annotator(session: Session | None = None) -> str:
    return str(_session(session).get(ANNOTATOR, "") or "").strip()


def remember_save(correction_id: int, session: Session | None = None) -> None:
    store = _session(session)
    store[SAVED_IDS] = [*store.get(SAVED_IDS, []), correction_id]


def saved_ids(session: Session | None = None) -> list[int]:
    return list(_session(session).get(SAVED_IDS, []))


def forget_last_save(session: Session | None = None) -> int | None:
    store = _session(session)
    ids = list(store.get(SAVED_IDS, []))
    last = ids.pop() if ids else None
    store[SAVED_IDS] = ids
    return last


def flash(kind: str, message: str, session: Session | None = None) -> None:
    """Queue a message for the next render: callbacks run before the page draws."""
    store = _session(session)
    store[FLASH] = [*store.get(FLASH, []), (kind, message)]


def take_flashes(session: Session | None = None) -> list[tuple[str, str]]:
    store = _session(session)
    messages = list(store.get(FLASH, []))
    store[FLASH] = []
    return messages
