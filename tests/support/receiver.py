"""Real HTTP webhook receivers on 127.0.0.1: one with scripted (and holdable) answers, one dead."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

JSON = "application/json"


@dataclass
class Received:
    """One request the receiver got (``answered`` is 0 until it is answered)."""

    path: str
    headers: dict[str, str]
    body: bytes
    answered: int = 0

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """Answers the next scripted status (then ``default``); records every request.

    ``hold()`` keeps every answer back until ``release()``: the requests wait in ``waiting``,
    so a test can await "a request is in flight" and decide when it ends (no sleeps).
    """

    port: int
    default: int = 200
    script: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    requests: list[Received] = field(default_factory=list)
    waiting: list[Received] = field(default_factory=list)
    timeline: list[tuple[str, Received]] = field(default_factory=list)
    """("start" | "end", request) in the order they happened."""
    respond: Callable[[Received], tuple[int, Any]] | None = None
    """When set: the status and JSON document (None: no body) of each answer."""
    _runner: web.AppRunner | None = None
    _gate: asyncio.Event | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def answer(self, status: int, times: int = 1, **headers: str) -> None:
        """Queue ``times`` answers of ``status``."""
        for _ in range(times):
            self.script.append((status, headers))

    def hold(self) -> None:
        """Answer nothing until :meth:`release`."""
        if self._gate is None:
            self._gate = asyncio.Event()

    def release(self) -> None:
        """Answer what is held, and from now on at once."""
        if self._gate is not None:
            self._gate.set()
            self._gate = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        self.release()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        headers = {name.lower(): value for name, value in request.headers.items()}
        got = Received(request.path, headers, await request.read())
        self._note("start", got)
        self.waiting.append(got)
        try:
            if self._gate is not None:
                await self._gate.wait()
        finally:
            self.waiting.remove(got)
        if self.respond is not None:  # a scripted JSON answer (a bot's)
            status, document = self.respond(got)
            got.answered = status
            self.requests.append(got)
            self._note("end", got)
            if document is None:
                return web.Response(status=status)
            return web.Response(status=status, body=orjson.dumps(document), content_type=JSON)
        status, answer_headers = self.script.popleft() if self.script else (self.default, {})
        got.answered = status
        self.requests.append(got)
        self._note("end", got)
        return web.Response(
            status=status, headers=answer_headers, text="ok" if status < 300 else "no"
        )

    def _note(self, kind: str, got: Received) -> None:
        self.timeline.append((kind, got))
        self._changed.set()

    def successes(self) -> list[Received]:
        """Requests that were answered 2xx."""
        return [r for r in self.requests if 200 <= r.answered < 300]

    def peak(self, key: Any = None) -> int:
        """Most requests in flight at once (with ``key``: at once for one ``key(request)``)."""
        current: dict[Any, int] = {}
        peak = 0
        for kind, got in self.timeline:
            group = key(got) if key else None
            current[group] = current.get(group, 0) + (1 if kind == "start" else -1)
            peak = max(peak, current[group])
        return peak

    async def wait_until(self, predicate: Any, timeout: float = 10.0) -> None:
        """Wait until ``predicate(self)`` holds."""
        async with asyncio.timeout(timeout):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()


@dataclass
class DeadReceiver:
    """Accepts connections and never answers: every request ends in the client's timeout."""

    port: int
    connections: int = 0
    _server: asyncio.Server | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        self.connections += 1
        self._changed.set()
        await reader.read()  # until the client gives up and closes

    async def wait_for_connections(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` connections were accepted."""
        async with asyncio.timeout(timeout):
            while self.connections < count:
                self._changed.clear()
                await self._changed.wait()

    async def stop(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
