"""Raw text to sentences and words with character offsets (spaCy), the way BC5CDR splits them.

spaCy's rule-based English tokenizer and sentencizer need no trained pipeline. BC5CDR's
tokenisation splits every punctuation character off (`Parkinson ' s`, `5 - FU`), so each
spaCy token is split once more into runs of word characters and single punctuation marks.

Example:
    >>> [s.words for s in split_text("Cocaine-induced seizures. No rash.")]
    [('Cocaine', '-', 'induced', 'seizures', '.'), ('No', 'rash', '.')]
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType


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

WORD_PATTERN = re.compile(r"\w+|[^\w\s]")


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


def split_text(text: str) -> list[TextSentence]:
    """Sentences and words of `text`; offsets index into `text` itself."""
    if not text.strip():
        return []
    sentences: list[TextSentence] = []
    for sentence in sentence_splitter()(text).sents:
        words: list[str] = []
        offsets: list[tuple[int, int]] = []
        for token in sentence:
            for match in WORD_PATTERN.finditer(token.text):
                words.append(match.group())
                offsets.append((token.idx + match.start(), token.idx + match.end()))
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
