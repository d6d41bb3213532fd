"""WordPiece alignment: a non-empty piece list per word, first piece first, casing, vocab errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagger.tokenization import SPECIAL_TOKENS, VocabularyError, WordPieceEncoder, read_vocab

VOCAB = [
    *SPECIAL_TOKENS,
    "park",
    "##inson",
    "Park",
    "'",
    "s",
    "##s",
    "disease",
    "cafe",
    "-",
    "induced",
    "co",
    "##caine",
]


def ids(*tokens: str) -> list[int]:
    return [VOCAB.index(token) for token in tokens]


@pytest.fixture()
def uncased() -> WordPieceEncoder:
    return WordPieceEncoder({token: i for i, token in enumerate(VOCAB)}, lowercase=True)


@pytest.fixture()
def cased() -> WordPieceEncoder:
    return WordPieceEncoder({token: i for i, token in enumerate(VOCAB)}, lowercase=False)


def test_first_piece_of_each_word_comes_first(uncased: WordPieceEncoder) -> None:
    pieces = uncased.encode_words(["Parkinson", "'", "s", "disease", "parkinsons"])
    assert pieces == [
        ids("park", "##inson"),
        ids("'"),
        ids("s"),
        ids("disease"),
        ids("park", "##inson", "##s"),
    ]
    assert uncased.pieces_as_text(pieces[0]) == ["park", "##inson"]


def test_word_that_bert_splits_further_stays_one_word(uncased: WordPieceEncoder) -> None:
    # BERT's pre-tokenizer splits on punctuation inside a word; the pieces still belong
    # to that one word, so the word count and the labels stay aligned.
    pieces = uncased.encode_words(["cocaine-induced", "disease"])
    assert pieces == [ids("co", "##caine", "-", "induced"), ids("disease")]


@pytest.mark.parametrize("word", ["", " ", "\x00", "\u200b", "\t", "\x7f"])
def test_words_that_normalise_to_nothing_get_one_unk(uncased: WordPieceEncoder, word: str) -> None:
    pieces = uncased.encode_words(["disease", word, "disease"])
    assert pieces == [ids("disease"), [uncased.unk_id], ids("disease")]


def test_every_word_gets_at_least_one_piece(uncased: WordPieceEncoder) -> None:
    words = ["xyz", "", "Park", "\n", "é", "§", "a" * 150, "disease"]
    pieces = uncased.encode_words(words)
    assert len(pieces) == len(words)
    assert all(len(word_pieces) >= 1 for word_pieces in pieces)
    assert pieces[0] == [uncased.unk_id]  # unknown word
    assert pieces[6] == [uncased.unk_id]  # longer than WordPiece's 100 characters


def test_lowercase_encoder_lowercases_and_strips_accents(uncased: WordPieceEncoder) -> None:
    assert uncased.encode_words(["PARK", "Café", "DISEASE"]) == [
        ids("park"),
        ids("cafe"),
        ids("disease"),
    ]


def test_cased_encoder_keeps_case_and_accents(cased: WordPieceEncoder) -> None:
    assert cased.encode_words(["Park", "park", "Parkinson", "Café", "DISEASE"]) == [
        ids("Park"),
        ids("park"),
        ids("Park", "##inson"),
        [cased.unk_id],  # "café" is not in the vocabulary, and accents are kept
        [cased.unk_id],
    ]


def test_encode_sentences_matches_encode_words(uncased: WordPieceEncoder) -> None:
    sentences = [["Parkinson", "disease"], [], ["s", "", "s"]]
    batched = uncased.encode_sentences(sentences)
    assert batched == [uncased.encode_words(words) for words in sentences]
    assert batched[1] == []


def test_special_token_ids_come_from_the_vocabulary(uncased: WordPieceEncoder) -> None:
    assert (uncased.pad_id, uncased.unk_id, uncased.cls_id, uncased.sep_id) == (0, 1, 2, 3)


def test_missing_special_tokens_are_named() -> None:
    with pytest.raises(VocabularyError, match=r"\[CLS\], \[SEP\]"):
        WordPieceEncoder({"[PAD]": 0, "[UNK]": 1, "disease": 2}, lowercase=True)


def test_read_vocab_numbers_lines_from_zero(tmp_path: Path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_bytes("[PAD]\r\n[UNK]\r\n[CLS]\n[SEP]\ndisease\nd\u00e9j\u00e0\n".encode())
    assert read_vocab(path) == {
        "[PAD]": 0,
        "[UNK]": 1,
        "[CLS]": 2,
        "[SEP]": 3,
        "disease": 4,
        "d\u00e9j\u00e0": 5,
    }


def test_from_vocab_file_encodes(tmp_path: Path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    encoder = WordPieceEncoder.from_vocab_file(path, lowercase=True)
    assert encoder.encode_words(["Disease"]) == [ids("disease")]


def test_missing_vocab_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(VocabularyError, match=r"nope\.txt: no such vocabulary file"):
        read_vocab(tmp_path / "nope.txt")


def test_non_utf8_vocab_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"[PAD]\n\xff\xfe\n")
    with pytest.raises(VocabularyError, match=r"vocab\.txt: not UTF-8"):
        read_vocab(path)


def test_vocab_file_without_specials_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_text("disease\nfever\n", encoding="utf-8")
    with pytest.raises(VocabularyError, match=r"use the vocab\.txt of a BERT encoder"):
        WordPieceEncoder.from_vocab_file(path, lowercase=True)
