"""Label Studio's ML-backend protocol on the HTTP service, with real requests on loopback:
/setup and /predict as Label Studio sends them, offsets in UTF-16 code units, and each
mistake answered with what, where and the fix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tagger.serve.app import ServeSettings, create_app
from tagger.serve.label_studio import label_target, prediction, utf16_offsets
from tagger.spans import Span
from tagger.tagger import Tagger
from tests.serve_helpers import serving

CONFIG = """<View>
  <Labels name="mention" toName="abstract">
    <Label value="Chemical" background="blue"/><Label value="DISEASE" background="red"/>
  </Labels>
  <Text name="abstract" value="$body"/>
</View>"""
TEXTS = [
    "Cocaine induced seizures in two patients. No hypotension was seen.",
    "Lithium 🙂 induced hepatitis and renal failure after cisplatin.",
    "",
]


@pytest.fixture(scope="module")
def tagger(tiny_model_dir: Path) -> Tagger:
    return Tagger.load(tiny_model_dir)


@pytest.fixture(scope="module")
def url(tagger: Tagger) -> Iterator[str]:
    with serving(create_app(tagger, ServeSettings(max_texts=5))) as base:
        yield base


def predict(url: str, texts: list[str], config: str = CONFIG) -> httpx.Response:
    tasks = [{"id": 100 + n, "data": {"body": text}} for n, text in enumerate(texts)]
    body = {"tasks": tasks, "label_config": config, "project": "7.1700000000", "params": {}}
    return httpx.post(f"{url}/predict", json=body, timeout=60)


def test_setup_accepts_the_config_and_names_the_version(url: str, tagger: Tagger) -> None:
    reply = httpx.post(f"{url}/setup", json={"project": "7", "schema": CONFIG})
    assert reply.status_code == 200 and reply.json() == {"model_version": tagger.version}
    assert httpx.get(f"{url}/health").status_code == 200  # Label Studio's connection check


def test_predict_gives_one_prediction_per_task_with_the_configs_names(
    url: str, tagger: Tagger
) -> None:
    reply = predict(url, TEXTS)
    assert reply.status_code == 200
    content = reply.json()
    assert content["model_version"] == tagger.version and len(content["results"]) == len(TEXTS)
    expected = tagger.tag_many(TEXTS)
    for text, result, spans in zip(TEXTS, content["results"], expected, strict=True):
        assert result["model_version"] == tagger.version
        assert len(result["result"]) == len(spans)
        for region, span in zip(result["result"], spans, strict=True):
            assert region["from_name"] == "mention" and region["to_name"] == "abstract"
            assert region["type"] == "labels" and region["value"]["labels"] == ["DISEASE"]
            assert region["value"]["text"] == span.text == text[span.start : span.end]
            assert region["score"] == pytest.approx(span.score, abs=1e-4)
        if spans:
            assert result["score"] == pytest.approx(min(s.score for s in spans), abs=1e-4)
        else:
            assert "score" not in result
    ids = [region["id"] for result in content["results"] for region in result["result"]]
    assert len(ids) == len(set(ids))


def test_offsets_count_utf16_code_units_as_label_studio_does(url: str) -> None:
    text = "🙂🙂 hepatitis and renal failure and seizures"
    [result] = predict(url, [text]).json()["results"]
    encoded = text.encode("utf-16-le")
    assert result["result"], "the tiny model found no mention to check"
    for region in result["result"]:
        start, end = region["value"]["start"], region["value"]["end"]
        assert encoded[2 * start : 2 * end].decode("utf-16-le") == region["value"]["text"]
    assert utf16_offsets("🙂a") == [0, 2, 3] and utf16_offsets("abc") is None


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("<View><Text name='t' value='$text'/>", "the labeling config is not XML"),
        (
            "<View><Text name='t' value='$text'/><Labels name='l' toName='t'>"
            "<Label value='Gene'/></Labels></View>",
            "no Labels with a \"Disease\" label on a Text tag (its labels are 'Gene')",
        ),
        (
            "<View><Text name='t' value='text'/><Labels name='l' toName='t'>"
            "<Label value='Disease'/></Labels></View>",
            "not a task field",
        ),
    ],
)
def test_a_config_the_tagger_cannot_fill_is_a_422_saying_what_to_add(
    url: str, config: str, expected: str
) -> None:
    reply = httpx.post(f"{url}/setup", json={"schema": config})
    assert reply.status_code == 422
    content = reply.json()
    assert expected in content["what"] and content["where"] == "POST /setup"
    assert '<Label value="Disease"/>' in content["fix"] or "$<field>" in content["fix"]


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ({"tasks": [{"id": 9, "data": {"text": "x"}}], "label_config": CONFIG}, 422,
         'task 9 has no text in data["body"]'),
        ({"tasks": [{"data": {"body": "x"}}]}, 422, 'no "label_config"'),
        ({"tasks": "x", "label_config": CONFIG}, 422, '"tasks" is not a list'),
        ({"tasks": [{"data": {"body": "x"}}] * 6, "label_config": CONFIG}, 413,
         "6 tasks, over the limit of 5"),
    ],
)  # fmt: skip
def test_a_bad_predict_request_is_answered_with_what_is_wrong(
    url: str, body: dict[str, Any], status: int, expected: str
) -> None:
    reply = httpx.post(f"{url}/predict", json=body)
    assert reply.status_code == status and expected in reply.json()["what"]
    assert reply.json()["fix"]


def test_the_first_matching_labels_tag_is_used() -> None:
    config = (
        "<View><Text name='a' value='$a'/><Text name='b' value='$b'/>"
        "<Labels name='other' toName='a'><Label value='Gene'/></Labels>"
        "<Labels name='dis' toName='b'><Label value='disease'/></Labels></View>"
    )
    target = label_target(config, route="POST /predict")
    assert (target.from_name, target.to_name, target.data_key, target.label) == (
        "dis", "b", "b", "disease",
    )  # fmt: skip


def test_a_span_after_an_astral_character_is_shifted_by_one_code_unit_per_character() -> None:
    text = "🙂 renal failure"
    span = Span(start=2, end=15, text="renal failure", label="Disease", score=0.9, sentence=0)
    target = label_target(CONFIG, route="POST /predict")
    [region] = prediction(text, [span], target, "v1", 0)["result"]
    assert (region["value"]["start"], region["value"]["end"]) == (3, 16)
    assert text[span.start : span.end] == "renal failure"
