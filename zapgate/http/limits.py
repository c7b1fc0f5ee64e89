"""A request body limit enforced before the body is read into memory."""

from __future__ import annotations

import re

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DRAIN_FACTOR = 64


class BodyLimitMiddleware:
    """413 when Content-Length, or the streamed body, exceeds ``max_bytes``.

    A declared body up to ``DRAIN_FACTOR`` times the limit is read and dropped first, so that
    clients which send the whole body before reading get the 413 rather than a reset.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, larger: dict[re.Pattern[str], int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self._larger = larger or {}
        """Paths (matched in full) that take larger bodies, and their limit."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        declared = declared_length(scope)
        if declared is not None and declared > limit:
            if declared <= limit * DRAIN_FACTOR:
                await _drain(receive)
            await self._reject(send, limit)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, _detail(limit))
            return message

        await self.app(scope, limited_receive, send)

    def _limit(self, path: str) -> int:
        for pattern, limit in self._larger.items():
            if pattern.fullmatch(path):
                return limit
        return self.max_bytes

    async def _reject(self, send: Send, limit: int) -> None:
        body = orjson.dumps({"error": "payload_too_large", "detail": _detail(limit)})
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _detail(limit: int) -> str:
    return f"the body limit is {limit} bytes"


async def _drain(receive: Receive) -> None:
    """Read and drop the body so the client, still sending, can read the 413."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


def declared_length(scope: Scope) -> int | None:
    """``Content-Length`` as a number, or None (absent or malformed: a chunked body)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
