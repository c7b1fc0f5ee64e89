"""CORS on /socket.io: ``*`` never comes with credentials; no origins means same origin only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY, RunningServer, make_settings, serve
from tests.realtime.support import connected
from tests.support.js_client import JsSocketClient
from zapgate.services import build_services

pytestmark = pytest.mark.node
FOREIGN = "https://evil.example"
APP = "https://app.example"
HANDSHAKE = "/socket.io/?EIO=4&transport=polling"

Serving = Callable[[list[str]], AbstractAsyncContextManager[RunningServer]]


@pytest.fixture
def serving(tmp_path: Path) -> Serving:
    """``async with serving(origins) as server``: a server with ZAPGATE_CORS_ORIGINS set."""

    @asynccontextmanager
    async def start(origins: list[str]) -> AsyncIterator[RunningServer]:
        settings = make_settings(tmp_path, cors_origins=origins)
        async with serve(build_services(settings)) as running:
            yield running

    return start


async def handshake(server: RunningServer, origin: str, method: str = "GET") -> httpx.Response:
    headers = {"Origin": origin}
    if method == "OPTIONS":
        headers["Access-Control-Request-Method"] = "GET"
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        return await http.request(method, HANDSHAKE, headers=headers)


def credentials_for(response: httpx.Response, origin: str) -> bool:
    """Whether a browser at ``origin`` may read this response with credentials."""
    return (
        response.headers.get("access-control-allow-origin") == origin
        and response.headers.get("access-control-allow-credentials") == "true"
    )


async def test_any_origin_never_comes_with_credentials(serving: Serving) -> None:
    async with serving(["*"]) as server:
        for method in ("GET", "OPTIONS"):
            response = await handshake(server, FOREIGN, method)
            assert response.status_code == 200
            assert "access-control-allow-credentials" not in response.headers
            assert not credentials_for(response, FOREIGN)
        async with JsSocketClient(
            server.url,
            auth={"token": ADMIN_KEY},
            transports=["polling"],
            extra={"extra_headers": {"Origin": FOREIGN}},
            timeout_ms=30_000,
        ) as client:
            assert (await client.wait_for(connected, timeout=20))["kind"] == "connect"


async def test_a_star_among_origins_also_drops_credentials(serving: Serving) -> None:
    async with serving([APP, "*"]) as server:
        response = await handshake(server, FOREIGN)
        assert "access-control-allow-credentials" not in response.headers


async def test_listed_origins_keep_credentials_and_others_are_refused(serving: Serving) -> None:
    async with serving([APP]) as server:
        allowed = await handshake(server, APP)
        assert allowed.status_code == 200
        assert credentials_for(allowed, APP)
        foreign = await handshake(server, FOREIGN)
        assert foreign.status_code == 400
        assert "access-control-allow-origin" not in foreign.headers


async def test_without_origins_only_the_same_origin_is_served(serving: Serving) -> None:
    async with serving([]) as server:
        same = await handshake(server, server.url)
        assert same.status_code == 200
        foreign = await handshake(server, FOREIGN)
        assert foreign.status_code == 400
        assert "access-control-allow-origin" not in foreign.headers
        for transports in (["websocket"], ["polling"]):
            async with JsSocketClient(
                server.url,
                auth={"token": ADMIN_KEY},
                transports=transports,
                extra={"extra_headers": {"Origin": FOREIGN}},
                timeout_ms=30_000,
            ) as client:
                assert (await client.wait_for(connected, timeout=20))["kind"] == "connect_error"
