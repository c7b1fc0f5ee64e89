"""The boundary: every request's body, path and query checked once, before any route runs.

JSON bodies are parsed here and checked with ``zapgate.validation`` (NUL, lone surrogates,
depth, 64-bit integers, finite numbers); malformed JSON or text that is not UTF-8 is a 422, not
the framework's 400. The checked body is then handed on unchanged.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zapgate.http.errors import error_response
from zapgate.validation import clearly_fine, problems, text_problem

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BoundaryMiddleware:
    """422 ``invalid_input`` for input that could never be stored and read back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = url_problems(scope)
        if not found and scope["method"] in BODY_METHODS and is_json_body(scope):
            try:
                body = await _read(receive)
            except HTTPException as too_large:
                refusal = error_response(413, "payload_too_large", too_large.detail)
                await refusal(scope, receive, send)
                return
            found = body_problems(body)
            receive = _replay(body, receive)
        if found:
            await error_response(422, "invalid_input", found)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def url_problems(scope: Scope) -> list[dict[str, Any]]:
    found = []
    if problem := text_problem(scope["path"]):
        found.append({"loc": ["path"], "msg": problem, "type": "boundary_text"})
    query: bytes = scope.get("query_string", b"")
    if (b"%" in query or b"\x00" in query) and b"\x00" in unquote_to_bytes(query):
        found.append(
            {"loc": ["query"], "msg": "NUL characters are not allowed", "type": "boundary_text"}
        )
    return found


def is_json_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return True  # the framework reads a body without a content type as JSON


def body_problems(body: bytes) -> list[dict[str, Any]]:
    if not body or clearly_fine(body):
        return []  # malformed JSON is still the route's 422; nothing here can hide in it
    try:
        value = json.loads(body, parse_constant=_no_constants)
    except RecursionError:
        return [{"loc": ["body"], "msg": "JSON nested too deep", "type": "boundary_depth"}]
    except ValueError as error:
        return [{"loc": ["body"], "msg": f"malformed JSON: {error}", "type": "json_invalid"}]
    return problems(value, ("body",))


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def _read(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that yields ``body`` once, then waits on the real one (for a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
