"""Property: text mixing NFC and NFD forms splits into the words of its NFC form, and every
word's and span's offsets slice the original string, as the text was given."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tagger.bio import token_problem
from tagger.text import split_text

PIECES = [
    "Sjögren", "Ménière", "café", "naïve", "São", "Ångström", "Đặng", "ệ", "ẹ́", "한국어",
    "Ωmega", "hépatite", "α-synuclein", "fever", "renal", "failure", "5-FU", "q\u0301",
    "हिन्दी", "ﬁbrosis", "Å", "é\u0323", "(", ")", ".", ",", "-", "'s", "\u00ad", "\u200b",
]
SEPARATORS = [" ", " ", "  ", "\n", "\t", ". ", ", ", "", "\r\n", "\u00a0"]
MIXED = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mixed_text(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 14))):
        piece = draw(st.sampled_from(PIECES) | st.text(min_size=1, max_size=3))
        form = draw(st.sampled_from(["NFC", "NFD", "NFKD", "as is"]))
        parts.append(piece if form == "as is" else unicodedata.normalize(form, piece))
        parts.append(draw(st.sampled_from(SEPARATORS)))
    return "".join(parts).replace("\ud800", "")  # a lone surrogate is an error (test_text)


def no_surrogates(text: str) -> bool:
    return not any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


def words_of(text: str) -> list[tuple[str, ...]]:
    return [sentence.words for sentence in split_text(text)]


@MIXED
@given(mixed_text().filter(no_surrogates))
def test_words_are_those_of_the_nfc_text_and_offsets_slice_the_original(text: str) -> None:
    sentences = split_text(text)
    assert [s.words for s in sentences] == words_of(unicodedata.normalize("NFC", text))
    previous_end = 0
    for sentence in sentences:
        for word, (start, end) in zip(sentence.words, sentence.offsets, strict=True):
            assert previous_end <= start < end <= len(text)
            assert unicodedata.normalize("NFC", text[start:end]) == word
            assert token_problem(word) is None  # every word can be saved as a BIO token
            previous_end = end


@pytest.fixture(scope="module")
def tiny_tagger(tiny_model_dir: Path):
    from tagger.tagger import Tagger

    return Tagger.load(tiny_model_dir)


TAGGED = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@TAGGED
@given(mixed_text().filter(no_surrogates))
def test_tagged_spans_slice_the_original_and_match_the_nfc_text(tiny_tagger, text: str) -> None:
    nfc = unicodedata.normalize("NFC", text)
    spans, nfc_spans = tiny_tagger.tag_many([text, nfc])
    for span in spans:
        assert span.text == text[span.start : span.end]
    assert [(unicodedata.normalize("NFC", s.text), s.label, s.sentence) for s in spans] == [
        (s.text, s.label, s.sentence) for s in nfc_spans
    ]
    assert [round(s.score, 4) for s in spans] == [round(s.score, 4) for s in nfc_spans]


def test_a_lone_surrogate_is_a_tagger_error_not_a_spacy_crash(tiny_tagger) -> None:
    from tagger.errors import TaggerError

    with pytest.raises(TaggerError, match=r"U\+DC00.* at character 7"):
        tiny_tagger.tag("Fever \udc00 and rash.")
    with pytest.raises(TaggerError, match="character 1"):
        tiny_tagger.tag_many(["fine", "\ud800"])
