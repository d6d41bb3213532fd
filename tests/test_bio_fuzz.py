"""Fuzzing the BIO reader: any bytes either parse or raise the project's one error type.

Random bytes and near-valid BIO (valid lines with random mutations: control characters,
tabs, CR, BOMs, bad labels, I- after O, empty tokens, very long lines) are fed to
``parse_bio``. It must return sentences or raise a :class:`TaggerError` (naming the file),
never a bare ``UnicodeDecodeError``, ``IndexError`` or ``ValueError``; and whatever it
returns must be writable and read back as the same sentences, so nothing read is lost
at save time.
"""

from __future__ import annotations

import warnings

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tagger.bio import BioRepairWarning, format_bio, parse_bio
from tagger.errors import TaggerError

FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

WORDS = ["fever", "renal", "failure", ".", "Sjögren", "α-synuclein", "5-FU", "(", "-DOCSTART-"]
LABELS = ["O", "B-Disease", "I-Disease", "B", "I", "B-Chemical", "X", "", "o"]
INSERTS = [
    "\x00", "\x01", "\x0b", "\x0c", "\x1c", "\x1f", "\x7f", "\x85", "\x9f", "\t", "\r",
    "\r\n", "\n", " ", "\u00a0", "\u2028", "\u2029", "\u200b", "\u200d", "\u00ad", "\ufeff",
    "\u202e", "\u0301", "\u0378", "\ufffd", "-DOCSTART-", "I-Disease",
]
BYTE_INSERTS = [
    b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"
]


def _read(data: str | bytes) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BioRepairWarning)
        try:
            sentences = parse_bio(data, "fuzz.tsv")
        except TaggerError as error:
            assert str(error).startswith("fuzz.tsv")
            return
        # Whatever the reader accepts, the writer writes and the reader reads back.
        again = parse_bio(format_bio(sentences), "again.tsv")
        assert [(s.words, s.labels) for s in again] == [(s.words, s.labels) for s in sentences]


@st.composite
def near_valid_bio(draw: st.DrawFn) -> str | bytes:
    lines = draw(
        st.lists(
            st.one_of(
                st.just(""),
                st.builds(
                    lambda w, label, sep: f"{w}{sep}{label}",
                    st.sampled_from(WORDS),
                    st.sampled_from(LABELS),
                    st.sampled_from(["\t", " ", "\t\t", "  ", "\tNN\t"]),
                ),
                st.text(min_size=0, max_size=5000).map(lambda long: f"{long}\tO"),
            ),
            min_size=1,
            max_size=12,
        )
    )
    text = "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n", "\r\n"]))
    for _ in range(draw(st.integers(0, 4))):
        position = draw(st.integers(0, len(text)))
        text = text[:position] + draw(st.sampled_from(INSERTS)) + text[position:]
    if not draw(st.booleans()):
        return text
    data = text.encode("utf-8", errors="surrogatepass")
    for _ in range(draw(st.integers(0, 2))):
        position = draw(st.integers(0, len(data)))
        data = data[:position] + draw(st.sampled_from(BYTE_INSERTS)) + data[position:]
    return data


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes_parse_or_raise_a_tagger_error(data: bytes) -> None:
    _read(data)


@FUZZ
@given(st.text(max_size=500))
def test_random_text_parses_or_raises_a_tagger_error(text: str) -> None:
    _read(text)


@FUZZ
@given(near_valid_bio())
def test_near_valid_bio_parses_or_raises_a_tagger_error(data: str | bytes) -> None:
    _read(data)


def test_a_utf16_file_in_fuzzing_is_a_tagger_error() -> None:
    _read("fever\tB-Disease\n".encode("utf-16"))
