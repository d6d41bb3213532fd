"""Raw text to sentences and words with character offsets (spaCy), the way BC5CDR splits them.

spaCy's rule-based English tokenizer and sentencizer need no trained pipeline. BC5CDR's
tokenisation splits every punctuation character off (`Parkinson ' s`, `5 - FU`), so each
spaCy token is split once more into runs of word characters and single punctuation marks.

The text is split in its NFC form, so a decomposed accent (`e` + U+0301) is one word as
`é` is, and the words are those of the NFC text; the offsets still index the text as
given. A combining mark stays in the word it follows; a control or invisible format
character (a zero-width space, a bidirectional control) is no word, so every word is a
valid BIO token (:func:`tagger.bio.token_problem`). A lone surrogate is a
:class:`TextError`.

Example:
    >>> [s.words for s in split_text("Cocaine-induced seizures. No rash.")]
    [('Cocaine', '-', 'induced', 'seizures', '.'), ('No', 'rash', '.')]
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

from tagger.bio import WORD_FORMAT_CHARACTERS, describe_character, token_problem
from tagger.errors import TaggerError


def _import_spacy_without_torch() -> ModuleType:
    """spaCy's thinc imports PyTorch whenever it is installed (a second and hundreds of MB
    in a serving process); sentence splitting needs none of it, so thinc is shown none."""
    if "torch" in sys.modules:
        import spacy

        return spacy
    sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` now fails
    try:
        import spacy
    finally:
        del sys.modules["torch"]
    return spacy


spacy = _import_spacy_without_torch()

_SURROGATE = re.compile("[\ud800-\udfff]")
# A run of non-ASCII characters with the ASCII character before it, which an accent may join.
_NON_ASCII_RUN = re.compile(r"[\x00-\x7f]?[^\x00-\x7f]+")


class TextError(TaggerError, ValueError):
    """Text that cannot be split into words, with where in it and what to do."""


@functools.cache
def _word_pattern() -> re.Pattern[str]:
    """Runs of word characters and single punctuation marks (`\\w+|[^\\w\\s]`), each with
    the combining marks and in-word format characters (soft hyphen, joiners) that follow."""
    joiners = "".join(sorted(WORD_FORMAT_CHARACTERS))
    ranges: list[str] = []
    start: int | None = None
    # Combining marks (categories Mn, Mc, Me) live in planes 0, 1 and 14 only.
    for code in [*range(0x20000), *range(0xE0000, 0xE1000), -1]:
        mark = code >= 0 and unicodedata.category(chr(code)).startswith("M")
        if mark and start is None:
            start = code
        elif not mark and start is not None:
            end = code - 1
            last = "" if end == start else f"-{re.escape(chr(end))}"
            ranges.append(re.escape(chr(start)) + last)
            start = None
    joining = f"[{''.join(ranges)}{re.escape(joiners)}]"
    return re.compile(rf"(?:\w|{joining})+|[^\w\s]{joining}*")


@dataclass(frozen=True)
class TextSentence:
    """One sentence: its words and each word's `(start, end)` character offsets."""

    words: tuple[str, ...]
    offsets: tuple[tuple[int, int], ...]

    @property
    def start(self) -> int:
        return self.offsets[0][0]

    @property
    def end(self) -> int:
        return self.offsets[-1][1]


@functools.cache
def sentence_splitter() -> spacy.language.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.max_length = 50_000_000  # the tokenizer is linear; the limit guards parsers we don't run
    return nlp


def _check_surrogates(text: str) -> None:
    found = _SURROGATE.search(text)
    if found is not None:
        raise TextError(
            f"the text has a lone surrogate {describe_character(found.group())} at character "
            f"{found.start() + 1}: half of a character that did not decode, not text",
            fix="delete that character, or decode the text again from its file as UTF-8",
        )


class _Normalized:
    """The NFC form of a text and, for each of its positions, the position in the text.

    The text is cut where NFC cannot join across the cut (before each ASCII character
    not followed by a combining mark, then between groups whose NFC forms simply
    concatenate); each piece is normalised on its own. A piece that NFC leaves as it is
    maps character by character; one that NFC changes maps its start and end only (a
    position inside it goes to the piece's start for a word start, its end for a word end).
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.identity = unicodedata.is_normalized("NFC", text)
        if self.identity:
            self.normal = text
            return
        pieces: list[str] = []
        self._starts: list[int] = []
        self._ends: list[int] = []
        position = 0
        for run in _NON_ASCII_RUN.finditer(text):
            self._keep(text[position : run.start()], position, pieces)
            for start, end in _nfc_groups(text, run.start(), run.end()):
                self._group(text[start:end], start, end, pieces)
            position = run.end()
        self._keep(text[position:], position, pieces)
        self._starts.append(len(text))
        self._ends.append(len(text))
        self.normal = "".join(pieces)

    def _keep(self, piece: str, offset: int, pieces: list[str]) -> None:
        pieces.append(piece)
        self._starts.extend(range(offset, offset + len(piece)))
        self._ends.extend(range(offset, offset + len(piece)))

    def _group(self, piece: str, start: int, end: int, pieces: list[str]) -> None:
        normal = unicodedata.normalize("NFC", piece)
        if normal == piece:
            self._keep(piece, start, pieces)
            return
        pieces.append(normal)
        self._starts.extend([start] * len(normal))
        self._ends.extend([start] + [end] * (len(normal) - 1))

    def original(self, start: int, end: int) -> tuple[int, int]:
        """The offsets in the text of `normal[start:end]`."""
        if self.identity:
            return start, end
        return self._starts[start], self._ends[end]


def _nfc_groups(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Cut `text[start:end]` into pieces whose NFC forms concatenate to that of the whole."""
    chunks: list[int] = [start]
    for index in range(start + 1, end):
        if unicodedata.combining(text[index]) == 0:
            chunks.append(index)
    chunks.append(end)
    groups: list[tuple[int, int]] = []
    group_start, group_end = chunks[0], chunks[1]
    for next_end in chunks[2:]:
        group, chunk = text[group_start:group_end], text[group_end:next_end]
        joined = unicodedata.normalize("NFC", group + chunk)
        if joined == unicodedata.normalize("NFC", group) + unicodedata.normalize("NFC", chunk):
            groups.append((group_start, group_end))
            group_start = group_end
        group_end = next_end
    groups.append((group_start, group_end))
    return groups


def split_text(text: str) -> list[TextSentence]:
    """Sentences and words of `text` (in NFC); offsets index into `text` itself."""
    _check_surrogates(text)
    if not text.strip():
        return []
    normalized = _Normalized(text)
    pattern = _word_pattern()
    sentences: list[TextSentence] = []
    for sentence in sentence_splitter()(normalized.normal).sents:
        words: list[str] = []
        offsets: list[tuple[int, int]] = []
        for token in sentence:
            for match in pattern.finditer(token.text):
                word = match.group()
                if token_problem(word) is not None:
                    continue  # a control or invisible character between words is no word
                words.append(word)
                offsets.append(
                    normalized.original(token.idx + match.start(), token.idx + match.end())
                )
        if words:
            sentences.append(TextSentence(tuple(words), tuple(offsets)))
    return sentences


NO_SPACE_BEFORE = frozenset(".,;:!?)]}%'")
NO_SPACE_AFTER = frozenset("([{")


def detokenize(words: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """Plain text for pre-split words, and each word's offsets in it.

    A space goes between words except before closing punctuation, after opening brackets
    and around hyphens and slashes inside a word run (`5-FU`, `and/or`), as written text.
    """
    pieces: list[str] = []
    offsets: list[tuple[int, int]] = []
    position = 0
    previous = ""
    for word in words:
        glued = (
            not previous
            or word[0] in NO_SPACE_BEFORE
            or previous[-1] in NO_SPACE_AFTER
            or word in ("-", "/")
            or previous in ("-", "/")
            or (previous == "'" and word in ("s", "t"))
        )
        if not glued:
            pieces.append(" ")
            position += 1
        pieces.append(word)
        offsets.append((position, position + len(word)))
        position += len(word)
        previous = word
    return "".join(pieces), offsets


def labels_for_words(
    offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int, str]]
) -> list[str]:
    """IOB2 labels of words at `offsets` from character spans `(start, end, type)`.

    A word that overlaps a span is inside it; the first such word begins it.
    """
    labels = ["O"] * len(offsets)
    for start, end, kind in spans:
        inside = [i for i, (s, e) in enumerate(offsets) if s < end and e > start]
        for rank, index in enumerate(inside):
            labels[index] = f"{'B' if rank == 0 else 'I'}-{kind}"
    return labels
