"""What a request may send: a body of bounded size, and the texts of ``POST /tag``.

A mistake in a request is a :class:`RequestError`, a :class:`~tagger.errors.TaggerError`
with the HTTP status to answer it with; the service answers every such error as JSON
(``detail`` is the whole message, ``what``, ``where`` and ``fix`` its parts).

Example:

>>> texts_from_json(b'{"texts": ["Fever.", "No cough."]}', max_texts=10, route="POST /tag")
['Fever.', 'No cough.']
>>> try:
...     texts_from_json(b'{"texts": ["Fever.", 3]}', max_texts=10, route="POST /tag")
... except RequestError as error:
...     print(error.status_code, error)  # doctest: +NORMALIZE_WHITESPACE
422 POST /tag: texts[1] is a number, not a string. Fix: send every text as a JSON string,
e.g. {"texts": ["First text.", "Second text."]}.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tagger.errors import TaggerError

if TYPE_CHECKING:
    from starlette.requests import Request

PAYLOAD_TOO_LARGE = 413
UNPROCESSABLE = 422
TEXTS_EXAMPLE = '{"texts": ["First text.", "Second text."]}'
_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "true or false"}


class RequestError(TaggerError):
    """A request the service cannot answer as sent: what, where (the route), the fix.

    Args:
        what: what is wrong with the request.
        where: the route, e.g. ``POST /tag``.
        fix: how to send it instead.
        status_code: the HTTP status to answer with (413 too large, 422 unusable content).
    """

    def __init__(
        self, what: str, *, where: str, fix: str, status_code: int = UNPROCESSABLE
    ) -> None:
        super().__init__(what, where=where, fix=fix)
        self.status_code = status_code


def describe_size(size: int) -> str:
    """``1048576`` → ``1048576 bytes (1 MiB)``: the exact limit, and one a person reads.

    Args:
        size: a number of bytes.
    """
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size} bytes ({size / scale:.3g} {unit})"
    return f"{size} bytes"


def body_too_large(max_bytes: int, route: str, split_hint: str) -> RequestError:
    """The 413 for a body over ``max_bytes``.

    Args:
        max_bytes: the limit (``--max-body-bytes``).
        route: the route, e.g. ``POST /tag``.
        split_hint: how to split this route's body, e.g. "send the texts in several requests".
    """
    return RequestError(
        f"the request body is over the limit of {describe_size(max_bytes)}",
        where=route,
        fix=f"{split_hint}, each under {describe_size(max_bytes)}, or start the service with a "
        "larger --max-body-bytes",
        status_code=PAYLOAD_TOO_LARGE,
    )


async def read_body(request: Request, *, max_bytes: int, route: str, split_hint: str) -> bytes:
    """The request body, refused with a 413 as soon as it is known to be over ``max_bytes``.

    A declared ``Content-Length`` over the limit is refused before a byte is read; a body
    sent without one (chunked) is counted as it arrives, so neither kind is held in
    memory past the limit.

    Args:
        request: the incoming request.
        max_bytes: the most bytes a body may have.
        route: the route, for the error message.
        split_hint: how to split this route's body, for the error message.

    Raises:
        RequestError: the body is too large (413), or its declared length is not a number.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise RequestError(
                f"the Content-Length header {declared!r} is not a number of bytes",
                where=route,
                fix="send the body's length in bytes, or no Content-Length at all",
            )
        if int(declared) > max_bytes:
            raise body_too_large(max_bytes, route, split_hint)
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > max_bytes:
            raise body_too_large(max_bytes, route, split_hint)
    return bytes(received)


def texts_from_json(body: bytes, *, max_texts: int, route: str) -> list[str]:
    """The texts of a ``{"texts": [...]}`` body.

    Args:
        body: the request body, UTF-8 JSON.
        max_texts: the most texts one request may hold (``--max-texts``).
        route: the route, for error messages.

    Raises:
        RequestError: the body is not such an object (422), or has too many texts (413).
    """
    fix = f"send a JSON object with a list of strings, e.g. {TEXTS_EXAMPLE}"
    try:
        content = json.loads(body)
    except UnicodeDecodeError as error:
        raise RequestError(
            f"the body is not UTF-8 ({error.reason} at byte {error.start})",
            where=route,
            fix="send the JSON encoded as UTF-8",
        ) from None
    except json.JSONDecodeError as error:
        raise RequestError(
            f"the body is not JSON ({error.msg} at line {error.lineno} column {error.colno})",
            where=route,
            fix=fix,
        ) from None
    if not isinstance(content, dict):
        raise RequestError(
            f"the body is {_json_type(content)}, not an object with texts", where=route, fix=fix
        )
    if "texts" not in content:
        raise RequestError(
            f'the body has no "texts" (it has {", ".join(map(repr, content)) or "nothing"})',
            where=route,
            fix=fix,
        )
    texts = content["texts"]
    if not isinstance(texts, list):
        raise RequestError(f'"texts" is {_json_type(texts)}, not a list', where=route, fix=fix)
    if len(texts) > max_texts:
        raise RequestError(
            f"the request has {len(texts)} texts, over the limit of {max_texts} per request",
            where=route,
            fix=f"send the texts in several requests of at most {max_texts} each, or start "
            "the service with a larger --max-texts",
            status_code=PAYLOAD_TOO_LARGE,
        )
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise RequestError(
                f"texts[{index}] is {_json_type(text)}, not a string",
                where=route,
                fix=f"send every text as a JSON string, e.g. {TEXTS_EXAMPLE}",
            )
        surrogate = _lone_surrogate(text)
        if surrogate is not None:
            raise RequestError(
                f"texts[{index}] has half of a UTF-16 pair (\\u{ord(text[surrogate]):04x}) at "
                f"character {surrogate}, which no text can hold",
                where=route,
                fix="escape characters outside the BMP as both halves of their pair, or send "
                "them as plain UTF-8",
            )
    return texts


def _lone_surrogate(text: str) -> int | None:
    """Where JSON's ``\\ud800``-style escapes left half a pair; tagging needs real text."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return error.start
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return _JSON_TYPES.get(type(value), type(value).__name__)
