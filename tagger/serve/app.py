"""The HTTP tagging service: a FastAPI app around one served model.

Routes:

- ``POST /tag``: JSON ``{"texts": ["...", ...]}`` → ``{"model": version, "results":
  [{"spans": [{"start", "end", "text", "label", "score", "sentence"}, ...]}, ...]}``,
  one result per text, in order; ``start`` and ``end`` are character offsets
  (``text[start:end] == span["text"]``), ``sentence`` the index of the sentence.
- ``POST /tag-bio``: the body is a BIO document itself (``token<TAB>label`` lines, a
  blank line after each sentence, UTF-8; ``curl --data-binary @file.tsv``), not JSON. The
  answer is the same document as BIO with the predicted labels (``text/plain``), as
  ``python -m tagger --format bio`` prints it; the ``X-Model-Version`` header names the
  version. The input's labels are read and then replaced.
- ``POST /setup``, ``POST /predict``: Label Studio's ML-backend protocol
  (:mod:`tagger.serve.label_studio`), so a Label Studio project pre-annotates with it.
- ``GET /health``: ``{"status": "ok", "model": version, "serving": "ONNX Runtime int8
  on CPU", "serving_note": null, "follows_registry": bool, "problem": null}``;
  ``problem`` says why the version in service is not the one served, if it is not.

Every mistake in a request is answered with JSON ``{"detail": message, "what", "where",
"fix"}``: 413 for a body over ``max_body_bytes`` or more than ``max_texts`` texts, 422 for
a body that cannot be tagged (not JSON, no texts, a BIO line that is not BIO: the message
names the line). Requests that arrive together share ``Tagger.tag_many`` calls
(:mod:`tagger.serve.batcher`), on one thread, so the event loop never waits for the model.

Example:

>>> from fastapi.testclient import TestClient
>>> from tagger.tagger import Tagger
>>> app = create_app(Tagger.load(tiny_model_dir))
>>> text = "Cocaine induced seizures in two patients."
>>> with TestClient(app) as client:
...     tagged = client.post("/tag", json={"texts": [text]})
...     health = client.get("/health").json()
>>> tagged.status_code, list(tagged.json()), health["status"], health["serving"]
(200, ['model', 'results'], 'ok', 'ONNX Runtime int8 on CPU')
>>> spans = tagged.json()["results"][0]["spans"]
>>> all(text[span["start"] : span["end"]] == span["text"] for span in spans)
True
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from tagger.errors import TaggerError
from tagger.serve.batcher import MicroBatcher
from tagger.serve.body import (
    TEXTS_EXAMPLE,
    UNPROCESSABLE,
    RequestError,
    read_body,
    texts_from_json,
)
from tagger.serve.label_studio import (
    PREDICT_ROUTE,
    SETUP_ROUTE,
    config_of,
    parse_request,
    prediction,
    task_texts,
)
from tagger.serve.model_watch import ServedModel

if TYPE_CHECKING:
    from tagger.tagger import Tagger

TAG_ROUTE = "POST /tag"
TAG_BIO_ROUTE = "POST /tag-bio"
BIO_SOURCE = "request body"  # BIO errors read "request body:3: ..."
VERSION_HEADER = "X-Model-Version"


@dataclass(frozen=True)
class ServeSettings:
    """The service's limits and batching.

    Args:
        max_body_bytes: the largest request body; a larger one is answered 413.
        max_texts: the most texts one ``POST /tag`` may send; more are answered 413.
        max_batch_texts: the most texts one ``tag_many`` call takes from several requests.
        batch_wait_s: how long a request waits for others to share its call.
    """

    max_body_bytes: int = 1 << 20
    max_texts: int = 256
    max_batch_texts: int = 64
    batch_wait_s: float = 0.005


class SpanOut(BaseModel):
    """A mention: ``text == the_text[start:end]``; ``score`` in [0, 1]."""

    start: int
    end: int
    text: str
    label: str
    score: float
    sentence: int


class TextResult(BaseModel):
    spans: list[SpanOut]


class TagResponse(BaseModel):
    model: str
    results: list[TextResult]


class HealthResponse(BaseModel):
    status: str
    model: str
    serving: str
    serving_note: str | None
    follows_registry: bool
    problem: str | None


class ErrorResponse(BaseModel):
    detail: str
    what: str
    where: str | None
    fix: str | None


_TEXTS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["texts"],
                    "properties": {"texts": {"type": "array", "items": {"type": "string"}}},
                },
                "example": {"texts": ["Cocaine induced seizures in two patients."]},
            }
        },
    }
}
_BIO_BODY = {
    "requestBody": {
        "required": True,
        "content": {"text/plain": {"example": "Heart\tO\nfailure\tO\n.\tO\n"}},
    }
}
_ERRORS = {413: {"model": ErrorResponse}, 422: {"model": ErrorResponse}}


def error_content(error: TaggerError) -> dict[str, str | None]:
    """The JSON of an error answer: the whole message, and its parts.

    Args:
        error: the problem, as the rest of the project raises it.
    """
    return {"detail": str(error), "what": error.what, "where": error.where, "fix": error.fix}


def create_app(model: Tagger | ServedModel, settings: ServeSettings | None = None) -> FastAPI:
    """The service for ``model``: a tagger served as it is, or a followed registry.

    Args:
        model: a loaded tagger (never swapped), or a served model such as
            :class:`~tagger.serve.model_watch.RegistryModel`, which swaps in the
            registry's new version in service while the app runs.
        settings: limits and batching; default :class:`ServeSettings`.
    """
    settings = settings or ServeSettings()
    served = model if isinstance(model, ServedModel) else ServedModel(model)
    batcher = MicroBatcher(
        lambda: served.tagger,
        max_batch_texts=settings.max_batch_texts,
        max_wait_s=settings.batch_wait_s,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        watch = asyncio.create_task(served.watch(), name="tagger-serve-model-watch")
        try:
            yield
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            await batcher.stop()

    app = FastAPI(
        title="Disease tagger",
        summary="Disease mentions in text and BIO documents (python -m tagger.serve)",
        lifespan=lifespan,
    )
    app.state.served = served
    app.state.batcher = batcher

    @app.exception_handler(TaggerError)
    async def answer_user_error(_: Request, error: TaggerError) -> JSONResponse:
        status = error.status_code if isinstance(error, RequestError) else UNPROCESSABLE
        return JSONResponse(error_content(error), status_code=status)

    @app.get("/health")
    async def health() -> HealthResponse:
        """The version served, how it is served, and any problem following the registry."""
        tagger = served.tagger
        return HealthResponse(
            status="ok",
            model=tagger.version,
            serving=tagger.describe_serving(),
            serving_note=tagger.serving_note,
            follows_registry=served.follows_registry,
            problem=served.problem,
        )

    @app.post("/tag", openapi_extra=_TEXTS_BODY, responses=_ERRORS)
    async def tag(request: Request) -> TagResponse:
        """Disease mentions of each text, with character offsets and scores."""
        body = await read_body(
            request,
            max_bytes=settings.max_body_bytes,
            route=TAG_ROUTE,
            split_hint="send the texts in several requests",
        )
        texts = texts_from_json(body, max_texts=settings.max_texts, route=TAG_ROUTE)
        tagged = await batcher.tag_texts(texts)
        return TagResponse(
            model=tagged.version,
            results=[
                TextResult(spans=[SpanOut(**asdict(span)) for span in spans])
                for spans in tagged.spans
            ],
        )

    @app.post(
        "/tag-bio", openapi_extra=_BIO_BODY, responses=_ERRORS, response_class=PlainTextResponse
    )
    async def tag_bio(request: Request) -> PlainTextResponse:
        """The BIO document sent as the body, back with the predicted labels."""
        if request.headers.get("content-type", "").startswith("application/json"):
            raise RequestError(
                "the body is JSON, but this route reads a BIO document",
                where=TAG_BIO_ROUTE,
                fix="send the BIO file itself as the body (`curl --data-binary @file.tsv`, "
                f"Content-Type text/plain), or send texts to POST /tag as {TEXTS_EXAMPLE}",
            )
        body = await read_body(
            request,
            max_bytes=settings.max_body_bytes,
            route=TAG_BIO_ROUTE,
            split_hint="split the document at blank lines between sentences and send the "
            "parts in several requests",
        )
        tagged = await batcher.tag_bio(body, BIO_SOURCE)
        return PlainTextResponse(tagged.bio, headers={VERSION_HEADER: tagged.version})

    @app.post("/setup", responses=_ERRORS, tags=["Label Studio"])
    async def label_studio_setup(request: Request) -> dict[str, str]:
        """Label Studio connecting: checks the labeling config, names the version."""
        body = await read_body(
            request, max_bytes=settings.max_body_bytes, route=SETUP_ROUTE, split_hint="send less"
        )
        config_of(parse_request(body, route=SETUP_ROUTE), "schema", route=SETUP_ROUTE)
        return {"model_version": served.tagger.version}

    @app.post("/predict", responses=_ERRORS, tags=["Label Studio"])
    async def label_studio_predict(request: Request) -> dict[str, Any]:
        """Label Studio's pre-annotation: one prediction per task, in order."""
        body = await read_body(
            request,
            max_bytes=settings.max_body_bytes,
            route=PREDICT_ROUTE,
            split_hint="lower the ML backend's batch size",
        )
        content = parse_request(body, route=PREDICT_ROUTE)
        target = config_of(content, "label_config", route=PREDICT_ROUTE)
        texts = task_texts(
            content.get("tasks"), target, route=PREDICT_ROUTE, max_tasks=settings.max_texts
        )
        tagged = await batcher.tag_texts(texts)
        return {
            "results": [
                prediction(text, spans, target, tagged.version, number)
                for number, (text, spans) in enumerate(zip(texts, tagged.spans, strict=True))
            ],
            "model_version": tagged.version,
        }

    return app
