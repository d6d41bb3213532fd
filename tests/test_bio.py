"""Tests for tagger.bio: reading every accepted form, each error with its line, writing."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import pytest

from tagger.bio import (
    BioFormatError,
    BioRepairWarning,
    Sentence,
    entity_spans,
    format_bio,
    parse_bio,
    read_bio,
    repair_bio,
    token_problem,
    write_bio,
)
from tests.helpers import modules_loaded_after

FIXTURES = Path(__file__).parent / "fixtures" / "bio"

CANONICAL = FIXTURES / "canonical.tsv"
CANONICAL_SENTENCES = [
    Sentence(
        ("Torsade", "de", "pointes", "during", "treatment", "."),
        ("B-Disease", "I-Disease", "I-Disease", "O", "O", "O"),
        line=1,
    ),
    Sentence(("The", "patient", "recovered", "."), ("O", "O", "O", "O"), line=8),
    Sentence(
        ("Congestive", "heart", "failure", "and", "asthma"),
        ("B-Disease", "I-Disease", "I-Disease", "O", "B-Disease"),
        line=13,
    ),
]


def _parse_error(data: str | bytes, **kwargs: object) -> BioFormatError:
    with pytest.raises(BioFormatError) as caught:
        parse_bio(data, "sample.tsv", **kwargs)  # type: ignore[arg-type]
    return caught.value


# ---------------------------------------------------------------------------
# Sentence
# ---------------------------------------------------------------------------


def test_sentence_stores_lists_as_tuples() -> None:
    sentence = Sentence(["a", "b"], ["O", "B-Disease"])  # type: ignore[arg-type]
    assert sentence.words == ("a", "b")
    assert sentence.labels == ("O", "B-Disease")
    assert sentence.line == 0
    assert hash(sentence) == hash(Sentence(("a", "b"), ("O", "B-Disease")))


def test_sentence_rejects_unequal_lengths_and_names_the_line() -> None:
    with pytest.raises(ValueError, match=r"line 7\) has 2 words but 1 labels"):
        Sentence(("a", "b"), ("O",), line=7)


def test_sentence_rejects_negative_line() -> None:
    with pytest.raises(ValueError, match="1-based"):
        Sentence(("a",), ("O",), line=-1)


# ---------------------------------------------------------------------------
# Reading: accepted forms
# ---------------------------------------------------------------------------


def test_read_canonical_file() -> None:
    assert read_bio(CANONICAL) == CANONICAL_SENTENCES


def test_read_accepts_str_path() -> None:
    assert read_bio(str(CANONICAL)) == CANONICAL_SENTENCES


def test_parse_str_and_bytes_agree() -> None:
    text = CANONICAL.read_text(encoding="utf-8")
    assert parse_bio(text) == parse_bio(text.encode("utf-8")) == CANONICAL_SENTENCES


@pytest.mark.parametrize(("line_end", "name"), [("\r\n", "CRLF"), ("\r", "CR"), ("\n", "LF")])
def test_line_ends_are_all_accepted_with_the_same_line_numbers(line_end: str, name: str) -> None:
    data = CANONICAL.read_text(encoding="utf-8").replace("\n", line_end).encode("utf-8")
    assert parse_bio(data, name) == CANONICAL_SENTENCES


def test_bom_is_ignored_for_bytes_and_str() -> None:
    raw = CANONICAL.read_bytes()
    assert parse_bio(b"\xef\xbb\xbf" + raw) == CANONICAL_SENTENCES
    assert parse_bio("\ufeff" + raw.decode("utf-8")) == CANONICAL_SENTENCES


def test_bom_and_crlf_together(tmp_path: Path) -> None:
    path = tmp_path / "windows.tsv"
    path.write_bytes(b"\xef\xbb\xbf" + CANONICAL.read_bytes().replace(b"\n", b"\r\n"))
    assert read_bio(path) == CANONICAL_SENTENCES


def test_file_without_trailing_blank_line_or_newline() -> None:
    assert parse_bio("a\tO\nb\tB-Disease") == [Sentence(("a", "b"), ("O", "B-Disease"), line=1)]
    assert parse_bio("a\tO\n") == [Sentence(("a",), ("O",), line=1)]


def test_several_and_whitespace_only_blank_lines_separate_sentences() -> None:
    sentences = parse_bio("\n\na\tO\n \t \n\n\nb\tO\n\n\n")
    assert sentences == [Sentence(("a",), ("O",), line=3), Sentence(("b",), ("O",), line=7)]


def test_bare_labels_get_the_first_entity_type() -> None:
    sentences = read_bio(FIXTURES / "biobert_bare.tsv")
    assert sentences == [
        Sentence(
            ("Hypertension", "and", "renal", "failure"),
            ("B-Disease", "O", "B-Disease", "I-Disease"),
            line=1,
        ),
        Sentence(("No", "symptoms"), ("O", "O"), line=6),
    ]


def test_bare_labels_use_entity_types_first_entry() -> None:
    sentences = parse_bio("Aspirin B\n", entity_types=("Chemical", "Disease"))
    assert sentences[0].labels == ("B-Chemical",)


def test_conll_multicolumn_with_docstart() -> None:
    sentences = read_bio(FIXTURES / "conll_multicolumn.txt")
    assert sentences == [
        Sentence(
            ("Severe", "asthma", "was", "treated"), ("B-Disease", "I-Disease", "O", "O"), line=3
        ),
        Sentence(("No", "fever"), ("O", "B-Disease"), line=10),
    ]


def test_conll_tab_separated_columns_take_first_and_last() -> None:
    assert parse_bio("fever\tNN\tB-NP\tB-Disease\n")[0] == Sentence(
        ("fever",), ("B-Disease",), line=1
    )


def test_docstart_without_blank_line_still_ends_the_sentence() -> None:
    sentences = parse_bio("a\tO\n-DOCSTART-\tO\nb\tO\n")
    assert sentences == [Sentence(("a",), ("O",), line=1), Sentence(("b",), ("O",), line=3)]


def test_other_entity_types_when_allowed() -> None:
    text = "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n"
    sentences = parse_bio(text, entity_types=("ORG", "MISC"))
    assert sentences[0].labels == ("B-ORG", "O", "B-MISC")
    assert entity_spans(sentences[0].labels) == [(0, 1, "ORG"), (2, 3, "MISC")]


BAD_CHARACTERS = [
    ("\u0020", "U+0020 SPACE"),
    ("\u00a0", "U+00A0 NO-BREAK SPACE"),
    ("\u2028", "U+2028 LINE SEPARATOR"),
    ("\x0c", "U+000C FORM FEED"),
    ("\x85", "U+0085 NEXT LINE"),
    ("\x1f", "U+001F UNIT SEPARATOR"),
    ("\x07", "U+0007 BELL"),
    ("\u200b", "U+200B ZERO WIDTH SPACE"),
    ("\ufeff", "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
    ("\u202e", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ("\u0378", "U+0378 (an unassigned code point)"),
    ("\ud800", "U+D800 (a lone surrogate"),
]


@pytest.mark.parametrize(("character", "named"), BAD_CHARACTERS)
def test_a_token_with_whitespace_or_a_control_character_is_refused_at_its_line(
    character: str, named: str
) -> None:
    error = _parse_error(f"a\tO\n\nNew{character}York\tB-Disease\n")
    assert (error.source, error.line) == ("sample.tsv", 3)
    message = str(error)
    assert message.startswith(f"sample.tsv:3: the token {'New' + character + 'York'!r} contains ")
    assert named in message
    assert "column 4" in message
    assert "delete the character" in message.lower() and "re-save the file as UTF-8" in message


def test_whitespace_separated_lines_split_on_plain_spaces_only() -> None:
    # str.split() would have cut "New\xa0York O" into three columns and dropped "York".
    error = _parse_error("New\u00a0York O\n")
    assert error.line == 1 and "U+00A0 NO-BREAK SPACE" in str(error)


def test_a_bad_character_in_the_label_or_another_column_is_refused() -> None:
    assert "the label 'B-Disease\\xa0'" in str(_parse_error("fever\tB-Disease\u00a0\n"))
    error = _parse_error("a\tO\nfever\tN\u200bN\tO\n")
    assert error.line == 2 and "column 2 'N\\u200bN'" in str(error)


def test_a_line_of_only_unusual_whitespace_is_not_a_blank_line() -> None:
    error = _parse_error("a\tO\n\u00a0\nb\tO\n")
    assert error.line == 2 and "U+00A0 NO-BREAK SPACE" in str(error)


@pytest.mark.parametrize("character", ["\u00ad", "\u200c", "\u200d", "\u2060", "\u0301"])
def test_soft_hyphens_joiners_and_combining_marks_inside_words_are_kept(character: str) -> None:
    word = f"fe{character}ver"
    assert parse_bio(f"{word}\tB-Disease\n")[0].words == (word,)


def test_a_token_of_only_invisible_format_characters_is_refused() -> None:
    assert "no visible character" in str(_parse_error("\u00ad\u200d\tO\n"))


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("fever", None),
        ("Sjögren", None),
        ("", "is empty"),
        ("New York", "contains U+0020 SPACE (a whitespace character) at character 4"),
        ("a\x00", "contains U+0000 NULL (a control character) at character 2"),
        ("x\x9f", "contains U+009F (a control character) at character 2"),
    ],
)
def test_token_problem_is_the_one_rule(token: str, problem: str | None) -> None:
    assert token_problem(token) == problem


def test_trailing_tab_and_spaces_after_label_are_ignored() -> None:
    assert parse_bio("fever\tB-Disease\t\nx\tO  \n")[0].labels == ("B-Disease", "O")


def test_non_ascii_words_survive() -> None:
    sentences = parse_bio("Sjögren\tB-Disease\nα-synuclein\tO\n".encode())
    assert sentences[0].words == ("Sjögren", "α-synuclein")


# ---------------------------------------------------------------------------
# Reading: errors name file and line
# ---------------------------------------------------------------------------


def test_one_column_line_is_an_error_with_its_line() -> None:
    error = _parse_error(FIXTURES.joinpath("one_column.tsv").read_bytes())
    assert (error.source, error.line) == ("sample.tsv", 2)
    assert str(error).startswith("sample.tsv:2: expected a token and a label, got one column")
    assert "token<TAB>label" in str(error)


def test_read_bio_errors_name_the_path() -> None:
    path = FIXTURES / "one_column.tsv"
    with pytest.raises(BioFormatError) as caught:
        read_bio(path)
    assert caught.value.source == str(path)
    assert str(caught.value).startswith(f"{path}:2: ")


def test_unknown_label_lists_the_allowed_labels() -> None:
    error = _parse_error(FIXTURES.joinpath("unknown_label.tsv").read_bytes())
    assert error.line == 1
    message = str(error)
    assert message.startswith("sample.tsv:1: unknown label 'B-Chemical'. Allowed labels: ")
    assert "O, B-Disease, I-Disease" in message
    # The fix is for whoever edits the file (CLI and app users), not a Python parameter.
    assert "entity_types" not in message and "=" not in message
    assert "change the label to one of these" in message


@pytest.mark.parametrize("label", ["X", "o", "B-disease", "E-Disease", "B-", "S"])
def test_unknown_label_spellings(label: str) -> None:
    error = _parse_error(f"a\tO\n\nb\tO\nc\t{label}\n")
    assert error.line == 4
    assert f"unknown label {label!r}" in str(error)


def test_empty_token_is_an_error() -> None:
    error = _parse_error("a\tO\n\tO\n")
    assert error.line == 2
    assert "token is empty" in str(error)


def test_error_line_numbers_count_crlf_once() -> None:
    error = _parse_error(b"a\tO\r\n\r\nb\tO\r\nc\r\n")
    assert error.line == 4


def test_error_line_numbers_after_bom_and_docstart() -> None:
    error = _parse_error(b"\xef\xbb\xbf-DOCSTART- O\n\na O\nb\n")
    assert error.line == 4


def test_non_utf8_bytes_name_the_line_of_the_bad_byte() -> None:
    error = _parse_error("a\tO\n\nSjögren\tB-Disease\n".encode("latin-1"))
    assert error.line == 3
    assert "not valid UTF-8" in str(error)
    assert "0xf6" in str(error)
    assert "column 3" in str(error)
    assert "Re-save the file as UTF-8" in str(error)


def test_non_utf8_line_counts_cr_line_ends() -> None:
    assert _parse_error(b"a\tO\rb\tO\r\r\xff\tO\r").line == 4


def test_binary_file_is_an_error_with_the_line_of_the_nul() -> None:
    error = _parse_error(b"a\tO\nb\x00\x01\x02\tO\n")
    assert error.line == 2
    assert "NUL bytes" in str(error)
    assert "looks binary" in str(error)


def test_binary_str_is_also_rejected() -> None:
    assert _parse_error("a\x00\tO\n").line == 1


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_files_are_named_as_such_with_the_fix(encoding: str) -> None:
    error = _parse_error("fever\tB-Disease\n.\tO\n".encode(encoding))
    assert error.line is None
    message = str(error)
    assert message.startswith("sample.tsv: the file is UTF-16")
    assert "Re-save it as UTF-8" in message
    assert "Save As → CSV UTF-8" in message and "encoding UTF-8" in message


def test_a_str_with_a_lone_surrogate_names_it_not_utf8() -> None:
    error = _parse_error("a\tO\nb\ud800\tO\n")
    assert error.line == 2 and "U+D800" in str(error) and "not valid UTF-8" not in str(error)


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n\n  \r\n", ""])
def test_empty_file_is_an_error(data: str | bytes) -> None:
    error = _parse_error(data)
    assert error.line is None
    assert str(error).startswith("sample.tsv: the file is empty. ")


def test_file_with_only_docstart_has_no_sentences() -> None:
    error = _parse_error("-DOCSTART- -X- O\n\n")
    assert error.line is None
    assert "no sentences" in str(error)


def test_read_empty_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "empty.tsv"
    path.write_bytes(b"")
    with pytest.raises(BioFormatError, match=r"empty\.tsv: the file is empty"):
        read_bio(path)


def test_bio_format_error_is_a_value_error_and_pickles() -> None:
    error = _parse_error("a\n")
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.source, copy.line, str(copy)) == (error.source, error.line, str(error))


def test_entity_types_must_be_a_sequence_of_names() -> None:
    with pytest.raises(TypeError, match=r"\('Disease',\)"):
        parse_bio("a\tO\n", entity_types="Disease")
    with pytest.raises(ValueError, match="at least one type"):
        parse_bio("a\tO\n", entity_types=())


# ---------------------------------------------------------------------------
# IOB1 repair
# ---------------------------------------------------------------------------


def test_iob1_labels_are_repaired_with_one_warning_per_file() -> None:
    path = FIXTURES / "iob1.tsv"
    with pytest.warns(BioRepairWarning) as record:
        sentences = read_bio(path)
    assert len(record) == 1
    message = str(record[0].message)
    assert message.startswith(f"{path}:2: repaired 2 IOB1 label(s) to IOB2")
    assert "first at line 2" in message
    assert "write_bio" not in message and "B-" in message.split(". ", 1)[1]
    assert [s.labels for s in sentences] == [
        ("O", "B-Disease", "I-Disease", "O"),
        ("O", "O", "O", "B-Disease"),
        ("B-Disease", "I-Disease"),
    ]


def test_repair_warning_points_at_the_caller() -> None:
    with pytest.warns(BioRepairWarning) as record:
        parse_bio("a\tI-Disease\n")
    assert record[0].filename == __file__


def test_i_label_at_sentence_start_is_repaired() -> None:
    with pytest.warns(BioRepairWarning, match=r"<string>:3: repaired 1 "):
        sentences = parse_bio("a\tO\n\nfever\tI-Disease\n")
    assert sentences[1].labels == ("B-Disease",)


def test_bare_i_after_o_is_repaired() -> None:
    with pytest.warns(BioRepairWarning, match="repaired 1 "):
        assert parse_bio("a O\nb I\n")[0].labels == ("O", "B-Disease")


def test_valid_files_raise_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_bio(CANONICAL)


def test_repair_bio_rules() -> None:
    assert repair_bio([]) == ((), 0)
    assert repair_bio(["B-Disease", "I-Disease", "O"]) == (("B-Disease", "I-Disease", "O"), 0)
    assert repair_bio(["I-Disease", "I-Disease", "O", "I-Disease"]) == (
        ("B-Disease", "I-Disease", "O", "B-Disease"),
        2,
    )
    # An I- of another type starts a new entity.
    assert repair_bio(["B-Chemical", "I-Disease", "I-Disease"]) == (
        ("B-Chemical", "B-Disease", "I-Disease"),
        1,
    )


def test_repair_bio_rejects_non_canonical_labels() -> None:
    with pytest.raises(ValueError, match="not a canonical IOB2 label"):
        repair_bio(["O", "I"])


# ---------------------------------------------------------------------------
# entity_spans
# ---------------------------------------------------------------------------


def test_entity_spans() -> None:
    assert entity_spans([]) == []
    assert entity_spans(["O", "O"]) == []
    assert entity_spans(CANONICAL_SENTENCES[0].labels) == [(0, 3, "Disease")]
    assert entity_spans(CANONICAL_SENTENCES[2].labels) == [(0, 3, "Disease"), (4, 5, "Disease")]
    # B after B starts a new entity; types can differ.
    assert entity_spans(["B-Disease", "B-Disease", "I-Disease", "B-Chemical"]) == [
        (0, 1, "Disease"),
        (1, 3, "Disease"),
        (3, 4, "Chemical"),
    ]


@pytest.mark.parametrize(
    "labels",
    [["I-Disease"], ["O", "I-Disease"], ["B-Chemical", "I-Disease"]],
)
def test_entity_spans_rejects_invalid_iob2(labels: list[str]) -> None:
    with pytest.raises(ValueError, match=r"continues no entity.*repair_bio"):
        entity_spans(labels)


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------


def test_format_bio_is_canonical() -> None:
    assert format_bio(CANONICAL_SENTENCES) == CANONICAL.read_text(encoding="utf-8")
    assert format_bio([Sentence(("a",), ("O",))]).endswith("a\tO\n\n")


def test_read_write_round_trip_is_byte_exact(tmp_path: Path) -> None:
    out = tmp_path / "out.tsv"
    write_bio(read_bio(CANONICAL), out)
    assert out.read_bytes() == CANONICAL.read_bytes()


def test_write_canonicalises_other_forms(tmp_path: Path) -> None:
    out = tmp_path / "out.tsv"
    write_bio(read_bio(FIXTURES / "conll_multicolumn.txt"), out)
    assert out.read_text(encoding="utf-8") == (
        "Severe\tB-Disease\nasthma\tI-Disease\nwas\tO\ntreated\tO\n\nNo\tO\nfever\tB-Disease\n\n"
    )


def test_write_accepts_a_generator_and_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "out.tsv"
    out.write_text("old", encoding="utf-8")
    write_bio((s for s in CANONICAL_SENTENCES[:1]), out)
    assert read_bio(out) == CANONICAL_SENTENCES[:1]
    assert [p.name for p in tmp_path.iterdir()] == ["out.tsv"]


@pytest.mark.parametrize("word", ["heart failure", "", "tab\there", "nb\u00a0sp", "new\nline"])
def test_write_rejects_words_with_whitespace_or_empty(word: str) -> None:
    sentences = [Sentence(("ok",), ("O",)), Sentence(("fine", word), ("O", "O"), line=12)]
    with pytest.raises(ValueError, match=r"sentence 2 \(line 12\), word 2 .*whitespace"):
        format_bio(sentences)


def test_write_rejects_non_canonical_labels() -> None:
    with pytest.raises(ValueError, match=r"sentence 1, word 1 'fever' has label 'B'"):
        format_bio([Sentence(("fever",), ("B",))])


def test_write_rejects_empty_sentence_and_no_sentences() -> None:
    with pytest.raises(ValueError, match="sentence 1 has no words"):
        format_bio([Sentence((), ())])
    with pytest.raises(ValueError, match="no sentences to write"):
        format_bio([])


def test_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    out = tmp_path / "out.tsv"
    out.write_bytes(CANONICAL.read_bytes())
    with pytest.raises(ValueError):
        write_bio([Sentence(("bad word",), ("O",))], out)
    assert out.read_bytes() == CANONICAL.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["out.tsv"]


def test_write_keeps_existing_permissions(tmp_path: Path) -> None:
    out = tmp_path / "out.tsv"
    out.write_text("x", encoding="utf-8")
    out.chmod(0o640)
    write_bio(CANONICAL_SENTENCES, out)
    assert out.stat().st_mode & 0o777 == 0o640


# ---------------------------------------------------------------------------
# Module hygiene and the real data
# ---------------------------------------------------------------------------


def test_importing_bio_pulls_in_no_ml_framework() -> None:
    heavy = ["tensorflow", "keras", "spacy", "numpy"]
    assert modules_loaded_after("import tagger.bio", heavy) == []


def test_real_test_split_round_trips_byte_for_byte(bc5cdr_dir: Path, tmp_path: Path) -> None:
    source = bc5cdr_dir / "test.tsv"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sentences = read_bio(source)
    assert len(sentences) > 1000
    out = tmp_path / "test.tsv"
    write_bio(sentences, out)
    assert out.read_bytes() == source.read_bytes()
