"""The corrections store keeps only what a BIO file can hold, so its export reads back.

Whatever words :meth:`CorrectionsStore.save` accepts, :meth:`CorrectionsStore.export_bio`
writes a file that :func:`tagger.bio.parse_bio` reads back as the same sentences; a word
the reader would refuse (a NUL byte, a no-break space, a zero-width space) is refused at
save time, with the same reason, and nothing is stored.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curation.corrections import CorrectionsStore, InvalidCorrectionError
from tagger.bio import BioRepairWarning, parse_bio, token_problem

LABELS = ("O", "B-Disease", "I-Disease")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CorrectionsStore]:
    yield CorrectionsStore.open(data_dir=tmp_path)


def save(store: CorrectionsStore, words: tuple[str, ...], labels: tuple[str, ...], index: int):
    return store.save(
        words=words,
        labels=labels,
        predicted=("O",) * len(words),
        source="file:fuzz.tsv",
        sentence_index=index,
        model_version="v1",
        annotator="ada",
    )


@pytest.mark.parametrize(
    ("word", "named"),
    [
        ("fe\x00ver", "U+0000 NULL"),
        ("fe\u00a0ver", "U+00A0 NO-BREAK SPACE"),
        ("fe\u200bver", "U+200B ZERO WIDTH SPACE"),
        ("fe\x85ver", "U+0085 NEXT LINE"),
        ("fe\ud800ver", "U+D800"),
        ("\u00ad", "no visible character"),
    ],
)
def test_a_word_the_bio_reader_refuses_is_not_saved(
    store: CorrectionsStore, word: str, named: str
) -> None:
    with pytest.raises(InvalidCorrectionError) as caught:
        save(store, ("Acute", word, "."), ("B-Disease", "I-Disease", "O"), 0)
    message = str(caught.value)
    assert named in message and "word 2" in message
    assert "Pass " not in message  # said for the curator, not a Python caller
    assert store.count(current_only=False) == 0
    assert store.export_bio() == ""


# Words from a wide alphabet: letters and marks of many scripts, symbols, punctuation,
# the whitespace and control characters a BIO token may not hold, format characters.
WIDE = st.characters(
    codec=None,
    categories=("L", "M", "N", "P", "S", "Zs", "Zl", "Zp", "Cc", "Cf", "Co", "Cn"),
)
WORD = st.text(WIDE, min_size=0, max_size=8) | st.sampled_from(["fever", "Sjögren", "5-FU", "."])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.lists(st.tuples(WORD, st.sampled_from(LABELS)), min_size=1, max_size=6),
        min_size=1,
        max_size=4,
    )
)
def test_whatever_the_store_accepts_its_export_reads_back_identically(
    sentences: list[list[tuple[str, str]]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = CorrectionsStore.open(data_dir=Path(folder))
        kept = []
        for index, pairs in enumerate(sentences):
            words = tuple(word for word, _ in pairs)
            labels = tuple(label for _, label in pairs)
            try:
                result = save(store, words, labels, index)
            except InvalidCorrectionError:
                assert any(token_problem(word) is not None for word in words)
                continue
            assert all(token_problem(word) is None for word in words)
            kept.append((result.correction.words, result.correction.labels))
        exported = store.export_bio()
        store.database.engine.dispose()
    if not kept:
        assert exported == ""
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error", BioRepairWarning)  # the store keeps IOB2 already
        read = parse_bio(exported, "export.tsv")
    assert [(s.words, s.labels) for s in read] == kept
