"""The Tagger API: spans with exact character offsets, batch tagging, long texts, valid IOB2."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagger.decoding import DecoderError
from tagger.tagger import Span, Tagger
from tagger.windows import WindowSettingsError
from tests.helpers import is_valid_iob2
from tests.tiny import DISEASES, DRUGS, tiny_corpus
from training.evaluate import evaluate_tagger

WORDS = [*sorted({w for s in tiny_corpus() for w in s.words}), "Renal", "HYPOTENSION", "zzz"]
ODD_TEXTS = [
    "Patients developed renal failure after cocaine.",
    "  patients   developed\trenal failure\n\nafter  cocaine .  ",
    "Lithium induced hepatitis in two patients.\r\nNo seizures were seen with heparin treatment.",
    "cisplatin-induced nephrotoxicity (renal failure); hypotension, seizures: hepatitis!",
    "Café patients — developed “seizures” after cocaine… naïve ＮＯ hepatitis 東京 😀 seizures",
    "\u00a0\u2003hypotension\u2028after lithium\x00 and \x07 seizures\u200b.",
    "no\nhepatitis\nwas\nseen\nwith\nselegiline\ntreatment\n.",
    "Renal failure",
]


@pytest.fixture(scope="module")
def tagger(tiny_model_dir: Path) -> Tagger:
    return Tagger.load(tiny_model_dir)


def rounded(spans: list[Span]) -> list[tuple[int, int, str, str, float, int]]:
    return [(s.start, s.end, s.text, s.label, round(s.score, 4), s.sentence) for s in spans]


def check_spans(text: str, spans: list[Span]) -> None:
    for span in spans:
        assert span.text == text[span.start : span.end]
        assert 0 <= span.start < span.end <= len(text)
        assert span.text == span.text.strip() and span.text
        assert span.label == "Disease"
        assert 0.0 <= span.score <= 1.0
    starts = [span.start for span in spans]
    assert starts == sorted(starts)
    assert all(a.end <= b.start for a, b in itertools.pairwise(spans))


@pytest.mark.parametrize("text", ODD_TEXTS)
def test_span_text_is_the_original_slice(tagger: Tagger, text: str) -> None:
    check_spans(text, tagger.tag(text))
    for sentence in tagger.analyze(text):
        assert len(sentence.words) == len(sentence.labels) == len(sentence.scores)
        assert all(
            text[start:end] == word
            for word, (start, end) in zip(sentence.words, sentence.offsets, strict=True)
        )
        assert is_valid_iob2(sentence.labels)


def test_the_tiny_model_finds_diseases(tagger: Tagger) -> None:
    spans = tagger.tag(ODD_TEXTS[0])
    assert spans, "the trained tiny model should find at least one disease"
    assert all(span.text in " ".join(DISEASES) for span in spans)
    assert evaluate_tagger(tagger, tiny_corpus())["f1"] >= 50.0


@settings(max_examples=40, deadline=None)
@given(
    pieces=st.lists(
        st.tuples(
            st.sampled_from(WORDS),
            st.sampled_from([" ", "  ", "\n", "\t", " . ", ", ", "\n\n", "-", "\u00a0", "; "]),
        ),
        min_size=0,
        max_size=30,
    ),
    lead=st.sampled_from(["", " ", "\n", "(\u00e9) "]),
)
def test_random_texts_give_exact_offsets(
    tagger: Tagger, pieces: list[tuple[str, str]], lead: str
) -> None:
    text = lead + "".join(word + separator for word, separator in pieces)
    check_spans(text, tagger.tag(text))


def test_tag_many_equals_tagging_each_text(tagger: Tagger) -> None:
    # Context may come from neighbouring sentences of the same text, never of another text.
    texts = [*ODD_TEXTS, "", "Seizures. Hypotension after lithium."]
    together = tagger.tag_many(texts)
    assert len(together) == len(texts)
    for text, spans in zip(texts, together, strict=True):
        assert rounded(spans) == rounded(tagger.tag(text))


def test_progress_is_reported(tagger: Tagger) -> None:
    calls: list[tuple[int, int]] = []
    tagger.tag_many(ODD_TEXTS, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1][0] == calls[-1][1]


@pytest.mark.parametrize("text", ["", " ", "\n\n\t ", "\u00a0\u2003"])
def test_empty_text_has_no_spans(tagger: Tagger, text: str) -> None:
    assert tagger.tag(text) == []
    assert tagger.analyze(text) == []


def test_a_sentence_longer_than_a_window_is_tagged_whole(tagger: Tagger) -> None:
    words: list[str] = []
    for index in range(60):
        words += ["patients", "developed", *DISEASES[index % len(DISEASES)].split()]
        words += ["after", DRUGS[index % len(DRUGS)]]
    words = words[:300]
    assert len(words) == 300
    text = " ".join(words)
    sentences = tagger.analyze(text)
    assert len(sentences) == 1
    assert sentences[0].words == tuple(words)
    assert len(sentences[0].labels) == 300
    assert is_valid_iob2(sentences[0].labels)
    windows = tagger._predictor.windows_for([words])
    assert len(windows) >= 300 // (tagger.info.windows.max_tokens - 2)
    assert max(len(window.token_ids) for window in windows) <= tagger.info.windows.max_tokens
    # Words far past the first window are still recognised.
    spans = tagger.tag(text)
    check_spans(text, spans)
    assert max(span.start for span in spans) > len(text) // 2


def test_tag_words_labels_every_word_with_valid_iob2(tagger: Tagger) -> None:
    sentences = [s.words for s in tiny_corpus()] + [(), ("zzz",), ("I",) * 100]
    results = tagger.tag_words(sentences, batch_size=7)
    assert len(results) == len(sentences)
    for words, (labels, scores) in zip(sentences, results, strict=True):
        assert len(labels) == len(scores) == len(words)
        assert set(labels) <= {"O", "B-Disease", "I-Disease"}
        assert is_valid_iob2(labels)
        assert all(0.0 <= score <= 1.0 for score in scores)


@settings(max_examples=30, deadline=None)
@given(sentences=st.lists(st.lists(st.sampled_from(WORDS), max_size=40), min_size=1, max_size=4))
def test_tag_words_is_valid_for_random_sentences(
    tagger: Tagger, sentences: list[list[str]]
) -> None:
    results = tagger.tag_words(sentences)
    for words, (labels, _) in zip(sentences, results, strict=True):
        assert len(labels) == len(words)
        assert is_valid_iob2(labels)


def test_decoder_override(tiny_model_dir: Path) -> None:
    argmax = Tagger.load(tiny_model_dir, decoder="argmax")
    labels, _ = argmax.tag_words([tiny_corpus()[0].words])[0]
    assert is_valid_iob2(labels)
    with pytest.raises(DecoderError, match=r"unknown decoder 'beam'\. Fix: use --decoder"):
        Tagger.load(tiny_model_dir, decoder="beam")


@pytest.mark.parametrize("packed_context", ["wide", -1])
def test_an_impossible_packed_context_is_a_clear_error(
    tagger: Tagger, packed_context: object
) -> None:
    from tagger.model_folder import load_model_folder

    with pytest.raises(WindowSettingsError, match=r"packed_context=.* is not a context size"):
        Tagger(load_model_folder(tagger.folder), packed_context=packed_context)  # type: ignore[arg-type]


def test_load_takes_a_version_id_or_current(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = json.loads((tiny_model_dir / "model.json").read_text(encoding="utf-8"))["version"]
    shutil.copytree(tiny_model_dir, tmp_path / "versions" / version)
    (tmp_path / "current").write_text(version, encoding="utf-8")
    monkeypatch.setenv("TAGGER_REGISTRY_DIR", str(tmp_path))
    for reference in (version, "current", None):
        loaded = Tagger.load(reference, runtime="keras")
        assert loaded.version == version
        assert loaded.folder == tmp_path / "versions" / version


def test_tagger_describes_itself(tagger: Tagger, tiny_model_dir: Path) -> None:
    assert tagger.version == tagger.metadata["version"] and tagger.version
    assert tagger.labels == ["O", "B-Disease", "I-Disease"]
    assert tagger.folder == tiny_model_dir
    assert tagger.device in ("CPU", "CPU (ONNX Runtime)") or tagger.device.startswith("GPU: ")
