"""With ZAPGATE_AUTH=off: loopback Host values only, and no requests from foreign web pages.

Before: any Host was accepted (a DNS-rebinding page got full access) and a cross-site
``POST .../stop`` with a foreign Origin stopped the session.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from tests.conftest import RunningServer, make_settings, serve
from zapgate.services import build_services


@pytest.fixture
async def open_server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    settings = make_settings(tmp_path, auth="off", api_key=None)
    async with serve(build_services(settings)) as running:
        yield running


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "localhost:{port}"])
async def test_loopback_hosts_work_without_a_key(open_server: RunningServer, host: str) -> None:
    port = open_server.services.settings.port
    async with httpx.AsyncClient(base_url=open_server.url) as client:
        answer = await client.get("/api/v1/sessions", headers={"Host": host.format(port=port)})
        assert answer.status_code == 200
        assert (await client.get("/docs")).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:3000", "127.0.0.1.nip.io", ""])
async def test_other_hosts_are_refused(open_server: RunningServer, host: str) -> None:
    async with httpx.AsyncClient(base_url=open_server.url) as client:
        answer = await client.get("/api/v1/sessions", headers={"Host": host})
        assert answer.status_code == 403
        assert answer.json()["error"] == "forbidden"
        polling = await client.get(
            "/socket.io/", params={"EIO": "4", "transport": "polling"}, headers={"Host": host}
        )
        assert polling.status_code == 403, "Socket.IO is behind the same guard"


async def test_cross_site_requests_are_refused(open_server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=open_server.url) as client:
        async with asyncio.timeout(10):  # the default session is booting: let it work first
            while (await client.get("/api/v1/sessions/default")).json()["status"] != "WORKING":
                await asyncio.sleep(0.02)
        foreign = {"Origin": "https://evil.example"}
        stop = await client.post("/api/v1/sessions/default/stop", headers=foreign)
        assert stop.status_code == 403
        send = await client.post(
            "/whatsapp/send",
            headers=foreign,
            json={"number": "5511999999999", "message": "from a web page"},
        )
        assert send.status_code == 403
        assert (await client.get("/api/v1/sessions/default")).json()["status"] == "WORKING"
        same = {"Origin": open_server.url}
        assert (await client.post("/api/v1/sessions/default/stop", headers=same)).is_success


def test_cors_star_with_auth_off_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="ZAPGATE_CORS_ORIGINS"):
        make_settings(tmp_path, auth="off", api_key=None, cors_origins="*")
