"""Read and write BIO (IOB2) token files such as BC5CDR-disease.

A BIO file holds one token per line, ``token<TAB>label``, and a blank line after
each sentence. Reading is forgiving about the many copies of such corpora found in
the wild (whitespace or multi-column CoNLL lines, bare ``B``/``I`` labels,
``-DOCSTART-`` lines, a BOM, CRLF or CR line ends, IOB1 labels); writing always
produces the one canonical form, so a canonical file survives a read and a write
byte for byte.

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
        "pass entity_types=... to accept other types"
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


def _decode(data: str | bytes, source: str) -> str:
    """Decode to text with ``\\n`` line ends, rejecting binary and non-UTF-8 input."""
    if isinstance(data, str):
        data = data.encode("utf-8", errors="surrogatepass")
    # Safe on raw UTF-8: CR and LF bytes never occur inside a multi-byte character,
    # and normalising first keeps byte offsets aligned with line numbers.
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    nul = data.find(b"\x00")
    if nul != -1:
        raise BioFormatError(
            source,
            _line_of_offset(data, nul),
            "the file contains NUL bytes, so it looks binary rather than a BIO text file",
            f"Pass a UTF-8 text file. {_BIO_LINE_HINT}",
        )
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


def _columns(line: str) -> list[str]:
    # Tabs win when present so that tab-separated tokens may contain spaces.
    parts = line.split("\t") if "\t" in line else line.split()
    columns = [part.strip() for part in parts]
    while columns and not columns[-1]:
        columns.pop()
    return columns


def _is_docstart(line: str) -> bool:
    first = line.split(maxsplit=1)
    return bool(first) and first[0] == DOCSTART


def _sentence_blocks(text: str) -> Iterator[list[tuple[int, str]]]:
    """Group non-blank lines into sentences of (line_number, line)."""
    block: list[tuple[int, str]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip() or _is_docstart(line):
            if block:
                yield block
            block = []
            continue
        block.append((number, line))
    if block:
        yield block


def _parse_token(
    number: int, line: str, source: str, labels: Mapping[str, str], entity_types: Sequence[str]
) -> tuple[str, str]:
    columns = _columns(line)
    if len(columns) < 2:
        raise BioFormatError(
            source,
            number,
            f"expected a token and a label, got one column {line.strip()!r}",
            _BIO_LINE_HINT,
        )
    word, label = columns[0], columns[-1]
    if not word:
        raise BioFormatError(
            source, number, f"the token is empty in {line!r}", "Remove the leading tab"
        )
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
                "Write the file back with write_bio to store it as IOB2."
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
        if not word or any(ch.isspace() for ch in word):
            raise ValueError(
                f"{_describe(sentence, number)}, word {index} {word!r} is empty or contains "
                "whitespace, which would break the token<TAB>label format. Split it into "
                "separate words or remove the whitespace."
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
