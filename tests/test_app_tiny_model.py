"""AppTest with the real Tagger: the tiny trained model served through the app's own loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tagger import Tagger
from tagger.bio import format_bio
from tests.app_fakes import APP_SCRIPT, isolate_app, shown
from tests.tiny import tiny_corpus

TEXT = "Patients developed seizures after cocaine. No hepatitis was seen with lithium treatment."


@pytest.fixture
def app(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("TAGGER_MODEL_DIR", str(tiny_model_dir))
    isolate_app(tmp_path, monkeypatch)
    st.cache_resource.clear()
    app = AppTest.from_file(str(APP_SCRIPT), default_timeout=180)
    app.session_state["annotator"] = "tester"
    return app.run()


def test_the_tiny_model_tags_text_and_reports_its_version(
    app: AppTest, tiny_model_dir: Path
) -> None:
    version = json.loads((tiny_model_dir / "model.json").read_text())["version"]
    assert not app.exception
    assert any(version in shown(caption.value) for caption in app.sidebar.caption)
    app.text_area(key="tag_text").input(TEXT)
    app.button[0].click().run()
    assert not app.exception
    caption = shown(" ".join(c.value for c in app.caption))
    assert f"Model **{version}** on **CPU" in caption and "2 sentences" in caption
    # The app shows exactly the spans the Tagger API finds (a few training steps may
    # or may not find any, so compare rather than hard-code them).
    expected = [(s.start, s.end, s.text) for s in Tagger.load(tiny_model_dir).tag(TEXT)]
    if expected:
        frame = app.dataframe[0].value
        assert list(zip(frame["start"], frame["end"], frame["mention"], strict=True)) == expected
    else:
        assert any("No disease mentions" in info.value for info in app.info)


def test_the_tiny_model_scores_a_bio_file(app: AppTest) -> None:
    data = format_bio(tiny_corpus()[:20]).encode()
    app.switch_page("app/page_inspect.py").run()
    app.file_uploader(key="inspect_upload").set_value(("tiny.tsv", data, "text/plain")).run()
    assert not app.exception
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Sentences"] == "20"
    assert metrics["F1"].endswith("%")
