"""tagger.text: sentences and words of raw text, offsets into the text as given."""

from __future__ import annotations

import unicodedata

import pytest

from tagger.bio import token_problem
from tagger.errors import TaggerError
from tagger.text import TextError, split_text


def words_and_surfaces(text: str) -> list[tuple[str, str]]:
    return [
        (word, text[start:end])
        for sentence in split_text(text)
        for word, (start, end) in zip(sentence.words, sentence.offsets, strict=True)
    ]


def test_a_decomposed_accent_is_one_word_with_offsets_into_the_original() -> None:
    text = "Cafe\u0301 fever."
    assert words_and_surfaces(text) == [("Café", "Cafe\u0301"), ("fever", "fever"), (".", ".")]
    assert split_text(text)[0].offsets == ((0, 5), (6, 11), (11, 12))


def test_nfc_and_nfd_texts_give_the_same_words() -> None:
    nfc = "Sjögren syndrome and Ménière disease in São Paulo."
    nfd = "Sjo\u0308gren syndrome and Me\u0301nie\u0300re disease in Sa\u0303o Paulo."
    assert [s.words for s in split_text(nfd)] == [s.words for s in split_text(nfc)]
    for word, surface in words_and_surfaces(nfd):
        assert word == unicodedata.normalize("NFC", surface)


def test_combining_marks_without_a_precomposed_form_stay_in_their_word() -> None:
    assert [w for w, _ in words_and_surfaces("q\u0301x and हिन्दी.")] == [
        "q\u0301x",
        "and",
        "हिन्दी",
        ".",
    ]


def test_invisible_and_control_characters_are_never_words() -> None:
    text = "fe\u200bver \x01 rash\u202e \u00ad ok"
    words = [w for w, _ in words_and_surfaces(text)]
    assert words == ["fe", "ver", "rash", "ok"]
    assert all(token_problem(word) is None for word in words)


def test_a_lone_surrogate_is_a_tagger_error_naming_where_it_is() -> None:
    with pytest.raises(TextError) as caught:
        split_text("Fever and \ud800 rash.")
    error = caught.value
    assert isinstance(error, TaggerError) and isinstance(error, ValueError)
    assert "U+D800" in str(error) and "character 11" in str(error)
    assert error.fix and "delete" in error.fix.lower()
