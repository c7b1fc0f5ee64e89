"""A JWKS served over HTTPS on 127.0.0.1, with a certificate of a throwaway CA (trustme)."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from aiohttp import web

from tests.conftest import free_port

NAMES = ("127.0.0.1", "jwks.idp.example")
"""What the certificate is valid for."""


@dataclass
class JwksServer:
    """Answers ``GET /jwks.json`` with ``body`` and ``status``; counts the requests.

    Not started, it is a provider that is down (nothing listens on ``port``).
    """

    ca: trustme.CA
    body: bytes = b'{"keys": []}'
    status: int = 200
    port: int = field(default_factory=free_port)
    requests: int = 0
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.port}/jwks.json"

    def write_ca(self, path: Path) -> Path:
        """The CA's certificate as a PEM file (for ``ZAPGATE_JWT_JWKS_CA_FILE``)."""
        self.ca.cert_pem.write_to_path(str(path))
        return path

    async def start(self) -> None:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(*NAMES).configure_cert(tls)
        app = web.Application()
        app.router.add_get("/jwks.json", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=tls).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def until_requests(self, count: int) -> None:
        """Return once ``count`` requests have come (wrap in a timeout)."""
        while self.requests < count:
            self._arrived.clear()
            await self._arrived.wait()

    async def _handle(self, _request: web.Request) -> web.Response:
        self.requests += 1
        self._arrived.set()
        return web.Response(body=self.body, status=self.status, content_type="application/json")
