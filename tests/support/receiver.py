"""A real HTTP webhook receiver on 127.0.0.1 with scripted answers."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """Answers the next scripted status (then ``default``); records every request."""

    port: int
    default: int = 200
    script: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    requests: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def answer(self, status: int, times: int = 1, **headers: str) -> None:
        """Queue ``times`` answers of ``status``."""
        for _ in range(times):
            self.script.append((status, headers))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        status, answer_headers = self.script.popleft() if self.script else (self.default, {})
        body = await request.read()
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.requests.append(Received(request.path, headers, body, status))
        self._changed.set()
        return web.Response(
            status=status, headers=answer_headers, text="ok" if status < 300 else "no"
        )

    def successes(self) -> list[Received]:
        """Requests that were answered 2xx."""
        return [r for r in self.requests if 200 <= r.answered < 300]

    async def wait_until(self, predicate: Any, timeout: float = 10.0) -> None:
        """Wait until ``predicate(self)`` holds."""
        async with asyncio.timeout(timeout):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()
