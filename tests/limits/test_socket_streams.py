"""Socket.IO connections count as streams of their key, together with SSE and long-polls."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import ADMIN_KEY, require_service
from tests.limits.test_quotas import limited
from tests.support.js_client import JsSocketClient, ensure_node_harness

pytestmark = pytest.mark.node


def connected(line: dict[str, object]) -> bool:
    return line["kind"] in ("connect", "connect_error")


async def test_sockets_and_sse_share_the_streams_of_a_key(tmp_path: Path) -> None:
    require_service(ensure_node_harness())
    async with limited(tmp_path, max_streams_per_key=2) as (server, api):
        auth = {"token": ADMIN_KEY}
        async with (
            api.stream("GET", "/api/v1/events", headers={"Accept": "text/event-stream"}) as sse,
            JsSocketClient(server.url, auth=auth, events=["event"]) as first,
        ):
            assert sse.status_code == 200
            assert (await first.wait_for(connected))["kind"] == "connect"
            async with JsSocketClient(server.url, auth=auth, events=["event"]) as refused:
                line = await refused.wait_for(connected)
                assert line["kind"] == "connect_error", line
                assert "quota_exceeded" in str(line)
            await first.kill()
            async with asyncio.timeout(5):  # a slot is free again within 5 s
                while server.services.limits.streams.open(key_id(server)) > 1:
                    await asyncio.sleep(0.02)
            async with JsSocketClient(server.url, auth=auth, events=["event"]) as again:
                assert (await again.wait_for(connected))["kind"] == "connect"


async def test_socket_connections_count_against_the_key_rate(tmp_path: Path) -> None:
    require_service(ensure_node_harness())
    async with limited(tmp_path, rate_limit_per_key=0.001, rate_limit_burst=1) as (server, api):
        assert (await api.get("/api/v1/sessions")).status_code == 200
        async with JsSocketClient(server.url, auth={"token": ADMIN_KEY}) as client:
            line = await client.wait_for(connected)
            assert line["kind"] == "connect_error"
            assert "rate_limited" in str(line)


def key_id(server: object) -> str:
    cached = server.services.auth.cached(ADMIN_KEY)  # type: ignore[attr-defined]
    assert cached is not None
    return str(cached.key_id)
