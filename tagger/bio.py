"""Read and write BIO (IOB2) token files such as BC5CDR-disease.

A BIO file holds one token per line, ``token<TAB>label``, and a blank line after
each sentence. Reading is forgiving about the many copies of such corpora found in
the wild (whitespace or multi-column CoNLL lines, bare ``B``/``I`` labels,
``-DOCSTART-`` lines, a BOM, CRLF or CR line ends, IOB1 labels); writing always
produces the one canonical form, so a canonical file survives a read and a write
byte for byte.

Reading is strict about the characters of a token (see :func:`token_problem`): a
token is one word, so whitespace of any kind (a space, a no-break space, a form feed,
a line separator) and invisible control characters are errors naming the line, not
words that fail later when the file is written back.

This module is pure standard library on purpose: benchmark environments without
TensorFlow import it.

Example:

>>> sentences = parse_bio("Heart\\tB-Disease\\nfailure\\tI-Disease\\n.\\tO\\n")
>>> sentences[0].words
('Heart', 'failure', '.')
>>> entity_spans(sentences[0].labels)
[(0, 2, 'Disease')]
>>> format_bio(sentences)
'Heart\\tB-Disease\\nfailure\\tI-Disease\\n.\\tO\\n\\n'
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tagger.errors import TaggerError

ENTITY_TYPE = "Disease"

OUTSIDE = "O"
BEGIN = "B"
INSIDE = "I"
DOCSTART = "-DOCSTART-"

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF32_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")
_ENCODING_SAMPLE = 4096  # bytes looked at to tell UTF-16 without a BOM
RESAVE_AS_UTF8 = (
    "Re-save it as UTF-8 (in Excel: Save As → CSV UTF-8; in an editor: encoding UTF-8)"
)
_CANONICAL_LABEL = re.compile(r"O|[BI]-\S+")
_BIO_LINE_HINT = "Write one `token<TAB>label` per line and a blank line after each sentence"


@dataclass(frozen=True)
class Sentence:
    """One sentence: its words and their canonical IOB2 labels.

    ``line`` is the 1-based line of the first token in the file the sentence came
    from, or 0 when it was built in code. Lists are accepted and stored as tuples.

    >>> Sentence(["Fever", "."], ["B-Disease", "O"])
    Sentence(words=('Fever', '.'), labels=('B-Disease', 'O'), line=0)
    """

    words: tuple[str, ...]
    labels: tuple[str, ...]
    line: int = 0

    def __post_init__(self) -> None:
        # Frozen, so coerce through object.__setattr__: callers often pass lists.
        object.__setattr__(self, "words", tuple(self.words))
        object.__setattr__(self, "labels", tuple(self.labels))
        if len(self.words) != len(self.labels):
            where = f" (line {self.line})" if self.line else ""
            raise ValueError(
                f"Sentence{where} has {len(self.words)} words but {len(self.labels)} labels. "
                "Give exactly one label per word."
            )
        if self.line < 0:
            raise ValueError(
                f"Sentence line must be 0 (unknown) or a 1-based line, got {self.line}."
            )


class BioFormatError(TaggerError, ValueError):
    """A BIO file that cannot be read, with the file and line to look at.

    ``str(error)`` reads ``"source:line: message. how to fix"``; ``line`` is None
    when the problem concerns the whole file (for example an empty file).

    >>> str(BioFormatError("train.tsv", 3, "unknown label 'X'", "Use O, B-Disease or I-Disease"))
    "train.tsv:3: unknown label 'X'. Use O, B-Disease or I-Disease"
    """

    def __init__(self, source: str, line: int | None, message: str, fix: str) -> None:
        self.source = source
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(message, where=where, fix=fix)

    @property
    def message(self) -> str:
        # The fixes here are whole sentences ("Re-save the file as UTF-8 ..."), so they
        # follow the problem as they are, without TaggerError's "Fix:".
        return f"{self.where}: {self.what}. {self.fix}"

    def __reduce__(self) -> tuple[type[BioFormatError], tuple[str, int | None, str, str]]:
        # The custom __init__ signature would otherwise break pickling (multiprocessing).
        return (type(self), (self.source, self.line, self.what, self.fix or ""))


class BioRepairWarning(UserWarning):
    """IOB1-style labels (an ``I-`` that starts an entity) were rewritten to IOB2 ``B-``."""


# ---------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------

# Format characters (Unicode category Cf) that occur inside words of real text, so a
# token may contain them: the soft hyphen (left by copies from PDFs and web pages), the
# zero-width (non-)joiners that Persian, Indic scripts and emoji sequences need, the word
# joiner, the prepended number signs of Arabic, Syriac and Kaithi, and the tag characters
# of emoji flag sequences. Every other Cf character is refused: the zero-width space and
# U+FEFF hide a word boundary or are a stray byte-order mark, and the bidirectional
# controls (U+202A-U+202E, U+2066-U+2069, LRM/RLM) make a token display differently from
# what is stored, which no curator can see or fix on screen.
WORD_FORMAT_CHARACTERS = frozenset(
    "\u00ad\u200c\u200d\u2060\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u070f"
    "\u0890\u0891\u08e2\U000110bd\U000110cd"
    + "".join(chr(code) for code in range(0xE0020, 0xE0080))
)

# C0 control characters, DEL and NEXT LINE have no Unicode name, only these aliases.
_C0_NAMES = (
    "NULL, START OF HEADING, START OF TEXT, END OF TEXT, END OF TRANSMISSION, ENQUIRY, "
    "ACKNOWLEDGE, BELL, BACKSPACE, CHARACTER TABULATION, LINE FEED, LINE TABULATION, "
    "FORM FEED, CARRIAGE RETURN, SHIFT OUT, SHIFT IN, DATA LINK ESCAPE, "
    "DEVICE CONTROL ONE, DEVICE CONTROL TWO, DEVICE CONTROL THREE, DEVICE CONTROL FOUR, "
    "NEGATIVE ACKNOWLEDGE, SYNCHRONOUS IDLE, END OF TRANSMISSION BLOCK, CANCEL, "
    "END OF MEDIUM, SUBSTITUTE, ESCAPE, FILE SEPARATOR, GROUP SEPARATOR, "
    "RECORD SEPARATOR, UNIT SEPARATOR"
)
_CONTROL_NAMES = {
    **dict(enumerate(_C0_NAMES.split(", "))),
    0x7F: "DELETE",
    0x85: "NEXT LINE",
}

_KINDS = {
    "Cc": "a control character",
    "Cf": "an invisible format character",
    "Cs": "a lone surrogate, half of a character that did not decode",
    "Cn": "an unassigned code point",
}


def describe_character(character: str) -> str:
    """``U+XXXX NAME`` for messages, the name in brackets where Unicode gives none.

    >>> describe_character("\\u00a0")
    'U+00A0 NO-BREAK SPACE'
    >>> describe_character("\\x0c")
    'U+000C FORM FEED'
    """
    code = ord(character)
    name = unicodedata.name(character, "") or _CONTROL_NAMES.get(code, "")
    return f"U+{code:04X} {name}" if name else f"U+{code:04X}"


def _character_problem(character: str) -> str | None:
    if character.isspace():
        return "a whitespace character"
    category = unicodedata.category(character)
    if category == "Cf" and character in WORD_FORMAT_CHARACTERS:
        return None
    return _KINDS.get(category)


def _bad_character(token: str) -> tuple[int, str] | None:
    """The 0-based index of the first character a token may not hold, and why."""
    if token.isascii() and token.isprintable() and " " not in token:
        return None  # the common case, decided without a look at each character
    for index, character in enumerate(token):
        kind = _character_problem(character)
        if kind is not None:
            return index, f"{describe_character(character)} ({kind})"
    return None


def token_problem(token: str) -> str | None:
    """Why ``token`` cannot be one token of a BIO file, or None when it can.

    The one rule shared by the reader, the writer and the corrections store. A token
    is one word: not empty, no whitespace of any kind (``str.isspace``: spaces, tabs,
    no-break spaces, line and paragraph separators, form feeds, U+0085 and the
    information separators U+001C-U+001F), no control characters (Unicode category Cc),
    no lone surrogates (Cs), no unassigned code points (Cn), and no format characters
    (Cf) except :data:`WORD_FORMAT_CHARACTERS`, which occur inside real words; a token
    made only of those has no visible character and is refused too.

    >>> token_problem("Sjögren") is None
    True
    >>> token_problem("New\\u00a0York")
    'contains U+00A0 NO-BREAK SPACE (a whitespace character) at character 4'
    """
    if not token:
        return "is empty"
    bad = _bad_character(token)
    if bad is not None:
        index, detail = bad
        return f"contains {detail} at character {index + 1}"
    if all(character in WORD_FORMAT_CHARACTERS for character in token):
        return "has no visible character, only invisible format characters"
    return None


TOKEN_FIX = (
    "Delete the character, or replace it so that the token is one word without spaces "
    "(a second word goes on a line of its own), then re-save the file as UTF-8"
)


# ---------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------


def _split_label(label: str) -> tuple[str, str | None]:
    """Return (prefix, type) of a canonical label: ("O", None), ("B", "Disease")..."""
    if not _CANONICAL_LABEL.fullmatch(label):
        raise ValueError(
            f"{label!r} is not a canonical IOB2 label. Use 'O', 'B-<type>' or 'I-<type>' "
            "(read files with read_bio, which canonicalises bare and IOB1 labels)."
        )
    if label == OUTSIDE:
        return OUTSIDE, None
    prefix, _, entity_type = label.partition("-")
    return prefix, entity_type


def _label_table(entity_types: Sequence[str]) -> dict[str, str]:
    """Map every accepted spelling of a label to its canonical IOB2 form."""
    if isinstance(entity_types, str):
        raise TypeError(
            f"entity_types must be a sequence of type names such as ({entity_types!r},), "
            f"not the string {entity_types!r}."
        )
    if not entity_types:
        raise ValueError(f"entity_types must name at least one type, such as ({ENTITY_TYPE!r},).")
    for entity_type in entity_types:
        if not entity_type or any(ch.isspace() for ch in entity_type):
            raise ValueError(f"entity type {entity_type!r} must be non-empty with no whitespace.")
    table = {OUTSIDE: OUTSIDE}
    for prefix in (BEGIN, INSIDE):
        # Bare B/I (BioBERT's copies of the corpora) mean the first type.
        table[prefix] = f"{prefix}-{entity_types[0]}"
        for entity_type in entity_types:
            table[f"{prefix}-{entity_type}"] = f"{prefix}-{entity_type}"
    return table


def _allowed_labels_text(entity_types: Sequence[str]) -> str:
    typed = [f"{prefix}-{t}" for t in entity_types for prefix in (BEGIN, INSIDE)]
    return (
        f"Allowed labels: {', '.join([OUTSIDE, *typed])} (bare B and I mean {entity_types[0]}); "
        "change the label to one of these (a mention of another entity type is O)"
    )


def repair_bio(labels: Sequence[str]) -> tuple[tuple[str, ...], int]:
    """Rewrite IOB1-style labels to IOB2 and count the rewrites.

    An ``I-X`` that follows ``O``, the sentence start, or an entity of another type
    starts a new entity, so it becomes ``B-X``.

    >>> repair_bio(["O", "I-Disease", "I-Disease"])
    (('O', 'B-Disease', 'I-Disease'), 1)
    """
    repaired: list[str] = []
    n_repaired = 0
    previous_type: str | None = None
    for label in labels:
        prefix, entity_type = _split_label(label)
        if prefix == INSIDE and entity_type != previous_type:
            label = f"{BEGIN}-{entity_type}"
            n_repaired += 1
        repaired.append(label)
        previous_type = entity_type
    return tuple(repaired), n_repaired


def entity_spans(labels: Sequence[str]) -> list[tuple[int, int, str]]:
    """Entities of valid IOB2 labels as ``(start_word, end_word_exclusive, type)``.

    Raises ValueError on an ``I-`` label that continues no entity; run
    :func:`repair_bio` first on labels that may be IOB1.

    >>> entity_spans(["B-Disease", "I-Disease", "O", "B-Disease"])
    [(0, 2, 'Disease'), (3, 4, 'Disease')]
    """
    spans: list[tuple[int, int, str]] = []
    start = 0
    current: str | None = None
    for index, label in enumerate(labels):
        prefix, entity_type = _split_label(label)
        if prefix == INSIDE and entity_type == current:
            continue
        if current is not None:
            spans.append((start, index, current))
            current = None
        if prefix == INSIDE:
            previous = labels[index - 1] if index else "the sentence start"
            raise ValueError(
                f"label {index} {label!r} continues no entity (it follows {previous!r}), so the "
                "labels are not IOB2. Run repair_bio(labels) first."
            )
        if prefix == BEGIN:
            start, current = index, entity_type
    if current is not None:
        spans.append((start, len(labels), current))
    return spans


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------


def _line_of_offset(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def utf16_problem(data: bytes) -> str | None:
    """How ``data`` shows it is UTF-16 (or UTF-32) rather than UTF-8, or None."""
    for boms, encoding in ((_UTF32_BOMS, "UTF-32"), (_UTF16_BOMS, "UTF-16")):
        if data.startswith(boms):
            return f"the file is {encoding} (it starts with a {encoding} byte-order mark)"
    sample = data[:_ENCODING_SAMPLE]
    pairs = len(sample) // 2
    if pairs < 2:
        return None
    even_nuls = sample[0 : 2 * pairs : 2].count(0)
    odd_nuls = sample[1 : 2 * pairs : 2].count(0)
    # ASCII text in UTF-16 has a NUL in every other byte, and almost none in between.
    if max(even_nuls, odd_nuls) >= pairs / 2 and min(even_nuls, odd_nuls) <= pairs / 10:
        return "the file is UTF-16 (every other byte is NUL)"
    return None


def _decode(data: str | bytes, source: str) -> str:
    """Decode to text with ``\\n`` line ends, rejecting binary and non-UTF-8 input."""
    if isinstance(data, str):
        # A str is already text: only line ends and NUL matter (a lone surrogate in it
        # is reported at its token by the reader, not as a decoding error).
        text = data.replace("\r\n", "\n").replace("\r", "\n")
        nul = text.find("\x00")
        if nul != -1:
            _raise_binary(source, text.count("\n", 0, nul) + 1)
        return text.removeprefix("\ufeff")
    utf16 = utf16_problem(data)
    if utf16 is not None:
        raise BioFormatError(source, None, utf16, RESAVE_AS_UTF8)
    # Safe on raw UTF-8: CR and LF bytes never occur inside a multi-byte character,
    # and normalising first keeps byte offsets aligned with line numbers.
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    nul = data.find(b"\x00")
    if nul != -1:
        _raise_binary(source, _line_of_offset(data, nul))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = _line_of_offset(data, error.start)
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise BioFormatError(
            source,
            line,
            f"the file is not valid UTF-8 (byte 0x{data[error.start]:02x} at column {column})",
            "Re-save the file as UTF-8 (for example `iconv -f latin1 -t utf-8`)",
        ) from None
    return text.removeprefix(_UTF8_BOM.decode("utf-8"))


def _raise_binary(source: str, line: int) -> None:
    raise BioFormatError(
        source,
        line,
        "the file contains NUL bytes, so it looks binary rather than a BIO text file",
        f"Pass a UTF-8 text file. {_BIO_LINE_HINT}",
    )


def _columns(line: str) -> list[tuple[int, str]]:
    """The columns of a token line with the 0-based offset in the line where each starts.

    Tabs separate columns when the line has one, else runs of plain spaces. No other
    whitespace separates anything: a no-break space or a form feed stays inside its
    column, where :func:`token_problem` names it.
    """
    separator = "\t" if "\t" in line else " "
    columns: list[tuple[int, str]] = []
    offset = 0
    for part in line.split(separator):
        stripped = part.strip(" ")
        if stripped or separator == "\t":
            columns.append((offset + len(part) - len(part.lstrip(" ")), stripped))
        offset += len(part) + 1
    while columns and not columns[-1][1]:
        columns.pop()
    return columns


def _is_blank(line: str) -> bool:
    return not line.strip(" \t")


def _is_docstart(line: str) -> bool:
    first = line.split(maxsplit=1)
    return bool(first) and first[0] == DOCSTART


def _sentence_blocks(text: str) -> Iterator[list[tuple[int, str]]]:
    """Group non-blank lines into sentences of (line_number, line)."""
    block: list[tuple[int, str]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if _is_blank(line) or _is_docstart(line):
            if block:
                yield block
            block = []
            continue
        block.append((number, line))
    if block:
        yield block


def _check_columns(
    number: int, line: str, columns: list[tuple[int, str]], source: str
) -> None:
    """Refuse a token, label or other column with a character no token may hold."""
    if not columns:  # a line of unusual whitespace only, such as a no-break space
        columns = [(0, line)]
    for position, (offset, column) in enumerate(columns):
        bad = _bad_character(column)
        if bad is None:
            continue
        index, detail = bad
        if position == 0:
            what = f"the token {column!r}"
        elif position == len(columns) - 1:
            what = f"the label {column!r}"
        else:
            what = f"column {position + 1} {column!r}"
        raise BioFormatError(
            source,
            number,
            f"{what} contains {detail} at column {offset + index + 1}",
            TOKEN_FIX,
        )


def _parse_token(
    number: int, line: str, source: str, labels: Mapping[str, str], entity_types: Sequence[str]
) -> tuple[str, str]:
    columns = _columns(line)
    _check_columns(number, line, columns, source)
    if len(columns) < 2:
        raise BioFormatError(
            source,
            number,
            f"expected a token and a label, got one column {line.strip()!r}",
            _BIO_LINE_HINT,
        )
    word, label = columns[0][1], columns[-1][1]
    if not word:
        raise BioFormatError(
            source, number, f"the token is empty in {line!r}", "Remove the leading tab"
        )
    problem = token_problem(word)
    if problem is not None:
        raise BioFormatError(source, number, f"the token {word!r} {problem}", TOKEN_FIX)
    if label not in labels:
        raise BioFormatError(
            source, number, f"unknown label {label!r}", _allowed_labels_text(entity_types)
        )
    return word, labels[label]


def _parse_block(
    block: list[tuple[int, str]],
    source: str,
    labels: Mapping[str, str],
    entity_types: Sequence[str],
) -> Sentence:
    tokens = [_parse_token(number, line, source, labels, entity_types) for number, line in block]
    return Sentence(
        words=tuple(word for word, _ in tokens),
        labels=tuple(label for _, label in tokens),
        line=block[0][0],
    )


def _repair_sentences(sentences: list[Sentence], source: str, stacklevel: int) -> list[Sentence]:
    """Repair IOB1 labels in place of the sentences; warn once for the whole file."""
    repaired_sentences: list[Sentence] = []
    total = 0
    first_line: int | None = None
    for sentence in sentences:
        labels, n_repaired = repair_bio(sentence.labels)
        if n_repaired:
            total += n_repaired
            if first_line is None:
                first_index = next(
                    i
                    for i, pair in enumerate(zip(labels, sentence.labels, strict=True))
                    if pair[0] != pair[1]
                )
                # Tokens of a sentence sit on consecutive lines.
                first_line = sentence.line + first_index
            sentence = Sentence(sentence.words, labels, sentence.line)
        repaired_sentences.append(sentence)
    if total:
        warnings.warn(
            BioRepairWarning(
                f"{source}:{first_line}: repaired {total} IOB1 label(s) to IOB2 (an I- label that "
                f"starts an entity became B-), the first at line {first_line}. "
                "To store the file as IOB2, label the first word of each such mention B- "
                "instead of I-."
            ),
            stacklevel=stacklevel + 1,
        )
    return repaired_sentences


def _parse(
    data: str | bytes, source: str, entity_types: Sequence[str], stacklevel: int
) -> list[Sentence]:
    labels = _label_table(entity_types)
    text = _decode(data, source)
    if not text.strip():
        raise BioFormatError(source, None, "the file is empty", _BIO_LINE_HINT)
    sentences = [
        _parse_block(block, source, labels, entity_types) for block in _sentence_blocks(text)
    ]
    if not sentences:
        raise BioFormatError(
            source,
            None,
            f"the file has no sentences, only blank and {DOCSTART} lines",
            _BIO_LINE_HINT,
        )
    return _repair_sentences(sentences, source, stacklevel + 1)


def parse_bio(
    data: str | bytes,
    source: str = "<string>",
    *,
    entity_types: Sequence[str] = (ENTITY_TYPE,),
) -> list[Sentence]:
    """Parse BIO text or bytes into sentences with canonical IOB2 labels.

    ``source`` names the data in error messages. Bare ``B``/``I`` labels get the
    type ``entity_types[0]``; IOB1 labels are repaired with one
    :class:`BioRepairWarning`. Raises :class:`BioFormatError` naming the line.

    >>> [s.labels for s in parse_bio("-DOCSTART- O\\n\\nasthma B\\n")]
    [('B-Disease',)]
    """
    return _parse(data, source, entity_types, stacklevel=2)


def read_bio(
    path: str | os.PathLike[str],
    *,
    entity_types: Sequence[str] = (ENTITY_TYPE,),
) -> list[Sentence]:
    """Read a BIO file; see :func:`parse_bio` for the accepted forms and errors.

    Example: ``read_bio(Path(os.environ["BC5CDR_DIR"]) / "test.tsv")``.
    """
    return _parse(Path(path).read_bytes(), os.fspath(path), entity_types, stacklevel=2)


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------


def _describe(sentence: Sentence, number: int) -> str:
    where = f" (line {sentence.line})" if sentence.line else ""
    return f"sentence {number}{where}"


def _check_writable(sentence: Sentence, number: int) -> None:
    if not sentence.words:
        raise ValueError(
            f"{_describe(sentence, number)} has no words; a BIO file cannot store an empty "
            "sentence. Drop it before writing."
        )
    for index, (word, label) in enumerate(
        zip(sentence.words, sentence.labels, strict=True), start=1
    ):
        problem = token_problem(word)
        if problem is not None:
            raise ValueError(
                f"{_describe(sentence, number)}, word {index} {word!r} {problem}; a BIO token "
                "is one word without whitespace or control characters, so the token<TAB>label "
                "file could not be read back. Split it into separate words or remove the "
                "character."
            )
        if not _CANONICAL_LABEL.fullmatch(label):
            raise ValueError(
                f"{_describe(sentence, number)}, word {index} {word!r} has label {label!r}, "
                "which is not canonical IOB2. Use 'O', 'B-<type>' or 'I-<type>'."
            )


def format_bio(sentences: Iterable[Sentence]) -> str:
    """Format sentences canonically: ``word<TAB>label`` lines, a blank line after each.

    >>> format_bio([Sentence(("Fever",), ("B-Disease",))])
    'Fever\\tB-Disease\\n\\n'
    """
    parts: list[str] = []
    for number, sentence in enumerate(sentences, start=1):
        _check_writable(sentence, number)
        parts.extend(
            f"{word}\t{label}\n"
            for word, label in zip(sentence.words, sentence.labels, strict=True)
        )
        parts.append("\n")
    if not parts:
        raise ValueError("no sentences to write; a BIO file needs at least one sentence.")
    return "".join(parts)


def write_bytes_atomic(path: Path, payload: bytes) -> None:
    """Write via a temp file in the same folder, so readers never see half a file."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    descriptor, temp_name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def write_bio(sentences: Iterable[Sentence], path: str | os.PathLike[str]) -> None:
    """Write sentences canonically (see :func:`format_bio`), atomically, as UTF-8.

    Example: ``write_bio(read_bio("in.tsv"), "out.tsv")`` canonicalises a file.
    """
    payload = format_bio(sentences).encode("utf-8")
    write_bytes_atomic(Path(path), payload)
