"""Long-polling clients that go away are noticed at once, not at the next ping timeout.

engine.io's ASGI driver reads a polling request once and then waits up to ``ping_interval +
ping_timeout`` (45 s) for packets to answer with, never reading ``http.disconnect``; a polling
client that vanished kept its socket (and whatever it holds) that long. :class:`PollWatch`
reads ``http.disconnect`` while a poll is pending and closes that Engine.IO session, which
runs the Socket.IO ``disconnect`` handler.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class PollWatch:
    """ASGI middleware in front of the Socket.IO app."""

    def __init__(self, app: ASGIApp, engineio: Any, path: str = "/socket.io/") -> None:
        self._app = app
        self._engineio = engineio
        self._path = path
        self.pending: dict[str, int] = {}
        """Polls waiting for packets now, per Engine.IO session."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sid = self._pending_poll(scope)
        if sid is None:
            await self._app(scope, receive, send)
            return
        self.pending[sid] = self.pending.get(sid, 0) + 1
        try:
            await _Poll(self._engineio, sid, receive, send).run(self._app, scope)
        finally:
            self.pending[sid] -= 1
            if not self.pending[sid]:
                del self.pending[sid]

    def _pending_poll(self, scope: Scope) -> str | None:
        """The session id of a polling GET, or None for any other request."""
        if scope["type"] != "http" or scope.get("method") != "GET":
            return None
        if not str(scope.get("path", "")).startswith(self._path):
            return None
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get("transport") != ["polling"] or len(query.get("sid", [])) != 1:
            return None
        return str(query["sid"][0])


class _Poll:
    """One pending poll: the app reads the request, then this watches the connection."""

    def __init__(self, engineio: Any, sid: str, receive: Receive, send: Send) -> None:
        self._engineio = engineio
        self._sid = sid
        self._receive = receive
        self._send = send
        self._read = asyncio.Event()
        self._answered = False

    async def run(self, app: ASGIApp, scope: Scope) -> None:
        watcher = asyncio.create_task(self._watch())
        try:
            await app(scope, self._receive_request, self._send_answer)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _receive_request(self) -> Message:
        message = await self._receive()
        if not message.get("more_body"):
            self._read.set()
        return message

    async def _send_answer(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body"):
            self._answered = True
        await self._send(message)

    async def _watch(self) -> None:
        await self._read.wait()
        while (await self._receive())["type"] != "http.disconnect":
            pass
        if not self._answered:
            await self._engineio.disconnect(self._sid)
