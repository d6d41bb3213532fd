"""The app's pure helpers: escaping renderer, span edits, file scoring, input checks, settings."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from app import inputs, render
from app.evaluation import compare
from app.settings import AppSettings, SettingsError
from tagger.bio import Sentence
from tests.app_fakes import shown

ATTACKS = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>", '" onmouseover="alert(1)')


def span(start: int, end: int, score: float = 0.9) -> SimpleNamespace:
    return SimpleNamespace(start=start, end=end, score=score, label="Disease")


@pytest.mark.parametrize("attack", ATTACKS)
def test_highlighting_escapes_text_inside_and_outside_mentions(attack: str) -> None:
    text = f"{attack} {attack}"
    html = render.highlight_html(text, [span(0, len(attack))])
    assert "<script" not in html and "<img" not in html and 'onmouseover="' not in html
    assert html.count(render.escape(attack)) == 2


def test_highlighting_marks_low_confidence_and_skips_overlaps() -> None:
    text = "renal failure and fever"
    html = render.highlight_html(text, [span(0, 13, 0.95), span(6, 13), span(18, 23, 0.3)], 0.6)
    assert html.count("<mark") == 2
    assert '<mark class="mention" style="--confidence: 0.95"' in html
    assert '<mark class="mention low" style="--confidence: 0.30"' in html
    assert "low confidence, please check" in html


def test_words_html_escapes_words_and_marks_ranges() -> None:
    marks = render.label_marks(["B-Disease", "I-Disease", "O"], "draft", "yours")
    html = render.words_html(["<b>", "fever", "&"], marks, numbered=True)
    assert '<mark class="draft" title="yours">&lt;b&gt;' in html
    assert "&amp;" in html and "<b>" not in html


def test_mentions_frame_counts_repeats_case_insensitively() -> None:
    spans = [
        SimpleNamespace(text=t, start=s, end=s + len(t), score=0.9, sentence=0)
        for t, s in (("Fever", 0), ("fever", 10), ("rash", 20))
    ]
    frame = render.mentions_frame(spans)
    assert list(frame["repeats"]) == [2, 2, 1]


def test_compare_counts_exact_matches_only() -> None:
    gold = [
        Sentence(["a", "b", "c"], ["B-Disease", "I-Disease", "O"]),
        Sentence(["d", "e"], ["O", "B-Disease"]),
    ]
    result = compare(gold, [("B-Disease", "O", "B-Disease"), ("O", "B-Disease")])
    assert (result.true_positives, result.gold_count, result.predicted_count) == (1, 2, 3)
    assert [m.text for m in result.false_positives] == ["a", "c"]
    assert [m.text for m in result.false_negatives] == ["a b"]
    assert result.disagreeing == (0,)
    # percent, from tagger.scoring (seqeval strict IOB2), as training.evaluate reports them
    assert (result.precision, result.recall, result.f1) == (33.33, 50.0, 40.0)
    with pytest.raises(ValueError, match="2 file sentences but 1 predictions"):
        compare(gold, [("O", "O", "O")])


def test_compare_reads_a_stray_inside_label_as_no_mention() -> None:
    gold = [Sentence(["a", "b", "c"], ["O", "B-Disease", "O"])]
    result = compare(gold, [("O", "I-Disease", "O")])
    assert (result.true_positives, result.gold_count, result.predicted_count) == (0, 1, 0)
    assert result.false_positives == () and [m.text for m in result.false_negatives] == ["b"]
    assert (result.precision, result.recall, result.f1) == (None, 0.0, 0.0)


def test_compare_without_any_mention_is_undefined() -> None:
    result = compare([Sentence(["a"], ["O"])], [("O",)])
    assert (result.precision, result.recall, result.f1) == (None, None, None)
    assert result.disagreeing == ()


def test_clean_text_keeps_offsets_when_it_replaces_control_characters() -> None:
    cleaned = inputs.clean_text("Fever\x07 and\x00 rash", max_chars=1000)
    assert cleaned.text == "Fever  and  rash"
    assert len(cleaned.text) == len("Fever\x07 and\x00 rash")
    assert cleaned.notes == ("Control characters in the text were replaced by spaces.",)


def test_clean_text_refuses_a_lone_surrogate_saying_where_it_is() -> None:
    with pytest.raises(inputs.InputProblem) as caught:
        inputs.clean_text("Fever and \ud800 rash", max_chars=1000)
    message = str(caught.value)
    assert "U+D800" in message and "character 11" in message and "Delete" in message


def test_a_bio_upload_in_utf16_says_how_to_resave_it() -> None:
    for encoding in ("utf-16", "utf-16-le"):
        data = "fever\tB-Disease\n".encode(encoding)
        with pytest.raises(inputs.InputProblem) as caught:
            inputs.read_bio_upload("cases.tsv", data, max_bytes=1000)
        message = str(caught.value)
        assert message.startswith("Cannot read cases.tsv: the file is UTF-16")
        assert "Save As → CSV UTF-8" in message


def test_a_bio_upload_with_a_no_break_space_in_a_token_names_the_line() -> None:
    with pytest.raises(inputs.InputProblem) as caught:
        inputs.read_bio_upload("cases.tsv", "a\tO\nNew\u00a0York\tO\n".encode(), max_bytes=1000)
    assert str(caught.value).startswith("Cannot read cases.tsv:2: the token")
    assert "U+00A0 NO-BREAK SPACE" in str(caught.value)


def test_clean_text_refuses_text_without_words() -> None:
    with pytest.raises(inputs.InputProblem, match="no letters or digits"):
        inputs.clean_text("... !!! ---", max_chars=1000)


def test_settings_refuse_unusable_values_with_the_fix() -> None:
    with pytest.raises(SettingsError, match=r"TAGGER_MAX_UPLOAD_MB='lots' is not a whole number"):
        AppSettings.from_env({"TAGGER_MAX_UPLOAD_MB": "lots"})
    settings = AppSettings.from_env({"TAGGER_MODEL_DIR": "m", "TAGGER_DATA_DIR": "d"})
    assert (str(settings.model_dir), str(settings.data_dir), settings.max_upload_mb) == (
        "m",
        "d",
        20,
    )


@pytest.mark.parametrize(
    "text", [*ATTACKS, "file_$x$_:red[a]_`b`.tsv", "**bold** [link](javascript:x)"]
)
def test_md_makes_every_markdown_character_literal(text: str) -> None:
    escaped = render.md(text)
    assert all(escaped[i - 1] == "\\" for i, ch in enumerate(escaped) if ch in "<>*$[]`:_(")
    assert shown(escaped) == text


@pytest.mark.parametrize(
    "text",
    ["data/logs/job_1.log", "C:\\tagger\\*new*_run`1`.log", "`starts", "ends`", "a``b", " x ", ""],
)
def test_code_shows_text_verbatim_in_one_code_span(text: str) -> None:
    code = render.code(text)
    assert "\\" not in code.replace(text, "")  # no backslash escaping inside a code span
    fence = code[: len(code) - len(code.lstrip("`"))]
    assert code.endswith(fence) and fence not in text  # a fence no backtick run inside matches
    inner = code[len(fence) : len(code) - len(fence)]
    # CommonMark strips one space from each side when both are there and not all spaces.
    if inner.startswith(" ") and inner.endswith(" ") and inner.strip():
        inner = inner[1:-1]
    assert inner == (text or " ")


def test_the_training_page_shows_the_worker_log_path_verbatim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.app_fakes import make_app

    data_dir = tmp_path / "my_data*dir\\with`tick`"
    app = make_app(tmp_path, monkeypatch, env={"TAGGER_DATA_DIR": str(data_dir)}).run()
    app.switch_page("app/page_training.py").run()
    assert not app.exception
    warning = next(w.value for w in app.warning if "No training worker is running yet" in w.value)
    from app import services
    from app.settings import AppSettings

    log = str(services.worker_log(AppSettings.from_env()))
    assert render.code(log) in warning
    assert "_" in log and "*" in log and "\\" in log and "`" in log
