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
from dataclasses import dataclass

import spacy

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
