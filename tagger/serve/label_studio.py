"""Label Studio's ML-backend protocol, so Label Studio can pre-annotate with the tagger.

In Label Studio, connect a model (project Settings → Model) at this service's URL. It
then calls:

- ``GET /health``: any 200 answer means connected (the service's own route answers it);
- ``POST /setup`` with ``{"project", "schema": <the labeling config XML>, ...}``: answered
  ``{"model_version": version}``, or 422 when the config has nothing the tagger can fill;
- ``POST /predict`` with ``{"tasks": [{"id", "data": {...}}], "label_config": <XML>}``:
  answered ``{"results": [prediction per task, in order], "model_version": version}``.

The labeling config needs a ``<Text name=... value="$key"/>`` and a ``<Labels name=...
toName=...>`` on it with a ``<Label value="Disease"/>`` (any case); the text to tag is
each task's ``data[key]``. A prediction is ``{"result": [region, ...], "score",
"model_version"}``, a region ``{"id", "from_name", "to_name", "type": "labels", "value":
{"start", "end", "text", "labels": [label]}, "score"}``. ``start``/``end`` count UTF-16
code units, as Label Studio's browser side indexes text (they differ from Python's
character offsets only after a character outside the BMP). A prediction's ``score`` is
its least confident mention's, so Label Studio's "sort by prediction score" puts the
doubtful tasks first; a task with no mention has no score.

Example:

>>> config = '''<View><Text name="abstract" value="$text"/>
...   <Labels name="mention" toName="abstract"><Label value="Disease"/></Labels></View>'''
>>> target = label_target(config, route="POST /predict")
>>> target.from_name, target.to_name, target.data_key, target.label
('mention', 'abstract', 'text', 'Disease')
>>> tasks = [{"id": 1, "data": {"text": "Cocaine-induced seizures."}}]
>>> task_texts(tasks, target, route="POST /predict")
['Cocaine-induced seizures.']
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

from tagger.bio import ENTITY_TYPE
from tagger.serve.body import PAYLOAD_TOO_LARGE, RequestError
from tagger.spans import Span

SETUP_ROUTE = "POST /setup"
PREDICT_ROUTE = "POST /predict"
CONFIG_EXAMPLE = (
    f'<Text name="text" value="$text"/><Labels name="label" toName="text"><Label '
    f'value="{ENTITY_TYPE}"/></Labels>'
)


@dataclass(frozen=True)
class LabelTarget:
    """Where the tagger's mentions go in a labeling config.

    Args:
        from_name: the ``Labels`` tag's name.
        to_name: the ``Text`` tag's name it labels.
        data_key: the task ``data`` key that the ``Text`` tag shows (``$key``).
        label: the config's spelling of the tagger's label.
    """

    from_name: str
    to_name: str
    data_key: str
    label: str


def label_target(config: str, *, route: str) -> LabelTarget:
    """The ``Labels`` and ``Text`` tags of ``config`` that take disease mentions.

    Args:
        config: Label Studio's labeling config (XML).
        route: the route, for error messages.

    Raises:
        RequestError: the config is not XML, or has no such pair of tags (422).
    """
    fix = f"give the project a labeling config with {CONFIG_EXAMPLE}"
    try:
        root = ElementTree.fromstring(config)
    except ElementTree.ParseError as error:
        line, column = error.position
        raise RequestError(
            f"the labeling config is not XML ({error.msg.split(':')[0]} at line {line} "
            f"column {column + 1})",
            where=route,
            fix=fix,
        ) from None
    texts = {
        element.get("name"): element.get("value", "")
        for element in root.iter("Text")
        if element.get("name")
    }
    seen: list[str] = []
    for labels in root.iter("Labels"):
        values = [label.get("value", "") for label in labels.iter("Label")]
        seen += values
        matching = [value for value in values if value.casefold() == ENTITY_TYPE.casefold()]
        to_name = labels.get("toName", "")
        if not matching or to_name not in texts:
            continue
        data_key = texts[to_name]
        if not data_key.startswith("$") or len(data_key) < 2:
            raise RequestError(
                f'the Text tag "{to_name}" shows {data_key!r}, not a task field such as "$text"',
                where=route,
                fix=f'give it value="$<field>" (e.g. {CONFIG_EXAMPLE})',
            )
        return LabelTarget(labels.get("name", ""), to_name, data_key[1:], matching[0])
    found = f"its labels are {', '.join(map(repr, seen))}" if seen else "it has no Labels tag"
    raise RequestError(
        f'the labeling config has no Labels with a "{ENTITY_TYPE}" label on a Text tag ({found})',
        where=route,
        fix=fix,
    )


def parse_request(body: bytes, *, route: str) -> dict[str, Any]:
    """A Label Studio request body as a JSON object.

    Args:
        body: the request body.
        route: the route, for error messages.
    """
    try:
        content = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestError(
            f"the body is not UTF-8 JSON ({error})",
            where=route,
            fix="send the request Label Studio sends (a JSON object)",
        ) from None
    if not isinstance(content, dict):
        raise RequestError("the body is not a JSON object", where=route, fix="send a JSON object")
    return content


def config_of(content: dict[str, Any], key: str, *, route: str) -> LabelTarget:
    """The target named by the request's labeling config (``schema`` or ``label_config``)."""
    config = content.get(key)
    if not isinstance(config, str) or not config.strip():
        raise RequestError(
            f'the request has no "{key}" (the labeling config)',
            where=route,
            fix=f'send the project\'s labeling config as "{key}"',
        )
    return label_target(config, route=route)


def task_texts(tasks: Any, target: LabelTarget, *, route: str, max_tasks: int = 256) -> list[str]:
    """The text each task shows, in order.

    Args:
        tasks: the request's ``tasks``.
        target: where the text is (``target.data_key``).
        route: the route, for error messages.
        max_tasks: the most tasks one request may hold (413 above).
    """
    if not isinstance(tasks, list):
        raise RequestError(
            '"tasks" is not a list', where=route, fix='send {"tasks": [{"data": {...}}, ...]}'
        )
    if len(tasks) > max_tasks:
        raise RequestError(
            f"the request has {len(tasks)} tasks, over the limit of {max_tasks}",
            where=route,
            fix=f"set the ML backend's batch size to at most {max_tasks}, or start the service "
            "with a larger --max-texts",
            status_code=PAYLOAD_TOO_LARGE,
        )
    texts = []
    for index, task in enumerate(tasks):
        data = task.get("data") if isinstance(task, dict) else None
        text = data.get(target.data_key) if isinstance(data, dict) else None
        if not isinstance(text, str):
            name = f"task {task.get('id')}" if isinstance(task, dict) else f"tasks[{index}]"
            raise RequestError(
                f'{name} has no text in data["{target.data_key}"]',
                where=route,
                fix=f'give every task its text inline as data["{target.data_key}"] (a URL to '
                "the text is not fetched)",
            )
        texts.append(text)
    return texts


def utf16_offsets(text: str) -> list[int] | None:
    """For each character index of ``text``, its UTF-16 offset; None when they are equal.

    >>> utf16_offsets("fever")
    >>> utf16_offsets("a\U0001f600b")
    [0, 1, 3, 4]
    """
    if all(ord(character) < 0x10000 for character in text):
        return None
    offsets = [0]
    for character in text:
        offsets.append(offsets[-1] + (2 if ord(character) >= 0x10000 else 1))
    return offsets


def prediction(
    text: str, spans: Sequence[Span], target: LabelTarget, version: str, task: int
) -> dict[str, Any]:
    """One task's prediction: a ``labels`` region per mention.

    Args:
        text: the task's text.
        spans: its mentions.
        target: the config's tag names and label.
        version: the model version.
        task: the task's position in the request (region ids are unique within it).
    """
    offsets = utf16_offsets(text)
    regions = []
    for number, span in enumerate(spans):
        start, end = (span.start, span.end) if offsets is None else (
            offsets[span.start], offsets[span.end],
        )  # fmt: skip
        regions.append(
            {
                "id": f"t{task}m{number}",
                "from_name": target.from_name,
                "to_name": target.to_name,
                "type": "labels",
                "value": {"start": start, "end": end, "text": span.text, "labels": [target.label]},
                "score": span.score,
            }
        )
    answer: dict[str, Any] = {"result": regions, "model_version": version}
    if spans:
        answer["score"] = min(span.score for span in spans)
    return answer
