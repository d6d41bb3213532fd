"""AppTest: the Tag text page highlights mentions, escapes input and survives bad input."""

from __future__ import annotations

from html import escape
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.samples import load_samples
from tests.app_fakes import make_app, shown

SAMPLE = "Cardiotoxicity"


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return make_app(tmp_path, monkeypatch).run()


def tag(app: AppTest, text: str) -> AppTest:
    app.text_area(key="tag_text").input(text)
    app.button[0].click()  # the form's Tag button
    return app.run()


def html_bodies(app: AppTest) -> str:
    """The highlighted texts on the page (not the legend or the style sheet)."""
    bodies = [element.proto.body for element in app.get("html")]
    return "\n".join(body for body in bodies if 'class="tagged-text"' in body)


def test_a_sample_is_tagged_and_its_spans_shown(app: AppTest) -> None:
    assert not app.exception
    app.selectbox(key="tag_sample").set_value(SAMPLE).run()
    assert app.text_area(key="tag_text").value == load_samples()[SAMPLE]
    app.button[0].click().run()
    assert not app.exception
    body = html_bodies(app)
    assert '<mark class="mention"' in body and ">cardiomyopathy<" in body
    assert '<mark class="mention low"' in body  # "dysfunction" is scored 0.45 by the fake
    assert "low confidence, please check" in body
    mentions = app.dataframe[0].value
    assert {"mention", "start", "end", "score", "repeats"} <= set(mentions.columns)
    text = load_samples()[SAMPLE]
    for row in mentions.itertuples():
        assert text[row.start : row.end] == row.mention
    assert mentions.loc[mentions["mention"] == "cardiomyopathy", "repeats"].iloc[0] >= 2
    caption = shown(" ".join(c.value for c in app.caption))
    assert "fake-1" in caption and "CPU (fake)" in caption
    assert [b.label for b in app.get("download_button")] == [
        "Download mentions (JSON)",
        "Download sentences (BIO)",
    ]


@pytest.mark.parametrize("markup", ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"])
def test_markup_in_the_text_is_shown_as_text(app: AppTest, markup: str) -> None:
    tag(app, f"{markup} with fever")
    body = html_bodies(app)
    assert "<script" not in body and "<img" not in body
    assert f"{escape(markup)} with " in body  # the characters, escaped, right where typed
    assert ">fever<" in body


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "The text is empty"),
        ("   \n\t  ", "The text is empty"),
        ("x" * 1_048_576, "1,048,576 characters; the limit is 100,000"),
        ("\x00\x01\x02\x03 binary \ufffd\ufffd\ufffd\ufffd", "does not look like text"),
    ],
)
def test_bad_text_gives_a_clear_message_and_the_app_stays_up(
    app: AppTest, text: str, message: str
) -> None:
    tag(app, text)
    assert not app.exception
    assert any(message in error.value for error in app.error)
    tag(app, "Fever again.")  # still works afterwards
    assert ">Fever<" in html_bodies(app)


def test_a_decomposed_accent_is_tagged_as_one_word_at_its_place_in_the_text(app: AppTest) -> None:
    text = "Signs of he\u0301patitis and fever."  # "é" typed as "e" + U+0301, as macOS pastes
    tag(app, text)
    assert not app.exception
    mentions = app.dataframe[0].value
    assert list(mentions["mention"]) == ["he\u0301patitis", "fever"]
    for row in mentions.itertuples():
        assert text[row.start : row.end] == row.mention


def test_non_english_text_is_tagged_with_a_warning(app: AppTest) -> None:
    tag(app, "患者出现发热和咳嗽。Fever.")
    assert not app.exception
    assert any("not Latin script" in warning.value for warning in app.warning)


def test_without_a_model_the_app_starts_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path, monkeypatch, with_model=False).run()
    assert not app.exception
    assert any("No model is available yet" in warning.value for warning in app.warning)
    assert app.button[0].disabled


def test_a_serving_fallback_is_shown_in_the_sidebar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.app_fakes import FakeTagger

    def falling_back(folder: Path) -> FakeTagger:
        tagger = FakeTagger.load(folder)
        tagger.serving_note = "serving with Keras float32 instead of ONNX Runtime int8"
        return tagger

    app = make_app(tmp_path, monkeypatch, factory=falling_back).run()
    assert not app.exception
    captions = " ".join(shown(caption.value) for caption in app.sidebar.caption)
    assert "serving with Keras float32 instead of ONNX Runtime int8" in captions


def test_the_page_tags_a_text_in_one_call_with_the_library_s_spans(tiny_model_dir: Path) -> None:
    """What the page shows is `Tagger.tag` of the whole text: one pass, same spans."""
    from app.tagging import tag_text
    from tagger import Tagger

    tagger = Tagger.load(tiny_model_dir, runtime="keras", precision="float32")
    text = " ".join(load_samples().values())  # every sample as one pasted text
    result = tag_text(tagger, text, source="text:x")
    assert list(result.spans) == tagger.tag(text)
    assert [s.labels for s in result.sentences] == [s.labels for s in tagger.analyze(text)]
