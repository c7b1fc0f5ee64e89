"""A JSON response rendered with orjson (fast, and handles the wire dicts we build)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send


class Json(JSONResponse):
    """``application/json`` via orjson.

    A ``JSONResponse`` subclass, so FastAPI publishes each route's ``response_model`` as the
    schema of its success body (for any other response class it writes ``{"type": "string"}``).
    """

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def json_body(payload: Any, headers: dict[str, str]) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The body and headers ``Json`` renders for ``payload`` (same headers, in its order)."""
    body = orjson.dumps(payload)
    raw = [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
    ]
    raw += [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    return body, raw


def direct_json(status: int, payload: Any, headers: dict[str, str]) -> ASGIApp:
    """The response ``Json`` renders, without its machinery: for the fast lanes, whose answers
    must not differ from the routes'."""
    body, raw = json_body(payload, headers)
    start = {"type": "http.response.start", "status": status, "headers": raw}
    end = {"type": "http.response.body", "body": body}

    async def answer(_scope: Scope, _receive: Receive, send: Send) -> None:
        await send(start)
        await send(end)

    return answer
