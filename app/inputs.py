"""Checks on what a curator pastes or uploads, with messages that say what to do.

A problem is an :class:`InputProblem` whose message the page shows as is; the app
never crashes on input. Pasted text keeps its length (control characters become
spaces) so that character offsets still point into what the curator pasted.

Example:

>>> clean_text("Fever\\x00 and rash", max_chars=1000).text
'Fever  and rash'
>>> clean_text("   ", max_chars=1000)
Traceback (most recent call last):
...
app.inputs.InputProblem: The text is empty. Paste an abstract or pick a sample abstract.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from dataclasses import dataclass

from tagger.bio import (
    BioFormatError,
    BioRepairWarning,
    Sentence,
    describe_character,
    parse_bio,
)
from tagger.errors import TaggerError

# C0/C1 control characters except tab, newline and carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # only in text that Python code built badly
_GARBAGE_SHARE = 0.1  # above this share of junk characters the input is not text...
_GARBAGE_MIN = 5  # ...unless there are only a few, as a stray copy-paste leaves
_NON_LATIN_SHARE = 0.3  # above this share of letters outside Latin, warn about the language


class InputProblem(TaggerError, ValueError):
    """Input the app cannot use; ``str(problem)`` is the message for the curator."""


@dataclass(frozen=True)
class CleanText:
    text: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class BioUpload:
    sentences: tuple[Sentence, ...]
    notes: tuple[str, ...] = ()


def _non_latin_share(text: str) -> float:
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 0.0
    non_latin = sum(1 for ch in letters if "LATIN" not in unicodedata.name(ch, ""))
    return non_latin / len(letters)


def clean_text(text: str | None, *, max_chars: int) -> CleanText:
    """Pasted text ready to tag, or an :class:`InputProblem` saying what is wrong."""
    if text is None or not text.strip():
        raise InputProblem("The text is empty. Paste an abstract or pick a sample abstract.")
    if len(text) > max_chars:
        raise InputProblem(
            f"The text has {len(text):,} characters; the limit is {max_chars:,}. "
            "Paste one abstract at a time, or upload a BIO file on the Inspect page "
            "(TAGGER_MAX_TEXT_CHARS raises the limit)."
        )
    surrogate = _SURROGATE.search(text)
    if surrogate is not None:
        raise InputProblem(
            f"The text has a broken character at character {surrogate.start() + 1} "
            f"({describe_character(surrogate.group())}, a lone surrogate: half of a character "
            "that did not decode). Delete it, or copy the text again from its source."
        )
    junk = len(_CONTROL.findall(text)) + text.count("\ufffd")
    if junk >= _GARBAGE_MIN and junk > _GARBAGE_SHARE * len(text):
        raise InputProblem(
            f"This does not look like text: {junk:,} of its {len(text):,} characters are "
            "control characters or undecodable bytes. Paste plain text (copy the abstract "
            "from the article page, not from a binary file)."
        )
    notes: list[str] = []
    cleaned = _CONTROL.sub(" ", text)
    if cleaned != text:
        notes.append("Control characters in the text were replaced by spaces.")
    if not any(ch.isalnum() for ch in cleaned):
        raise InputProblem("The text has no letters or digits, so there are no words to tag.")
    if _non_latin_share(cleaned) > _NON_LATIN_SHARE:
        notes.append(
            "Most letters are not Latin script. The model was trained on English "
            "biomedical abstracts, so its tags on this text are unreliable."
        )
    return CleanText(cleaned, tuple(notes))


def read_bio_upload(name: str, data: bytes, *, max_bytes: int) -> BioUpload:
    """Sentences of an uploaded BIO file, or an :class:`InputProblem` naming the line."""
    if len(data) > max_bytes:
        raise InputProblem(
            f"{name} is {len(data) / 1024 / 1024:.1f} MB; the upload limit is "
            f"{max_bytes / 1024 / 1024:.0f} MB. Split the file or raise TAGGER_MAX_UPLOAD_MB."
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BioRepairWarning)
        try:
            sentences = parse_bio(data, source=name)
        except BioFormatError as error:
            raise InputProblem(f"Cannot read {error}") from error
    notes = tuple(str(w.message) for w in caught if issubclass(w.category, BioRepairWarning))
    return BioUpload(tuple(sentences), notes)
