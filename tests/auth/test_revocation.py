"""A revoked key loses every channel at once: its Socket.IO sockets (the real JS client), its
Server-Sent Events stream and its long-poll end when it is revoked, not at their next check;
a socket of a key that expires is disconnected at the expiry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import RunningServer
from tests.realtime.support import connected, until
from tests.support.js_client import JsSocketClient
from zapgate.events import stream as stream_module

STREAM_END = 10.0
"""A generous bound for what happens at once (the machine may be loaded): the periodic checks
this replaces are made longer than it here, or are (the Socket.IO ping) already."""


async def issued(api: httpx.AsyncClient, **body: object) -> tuple[str, str]:
    created = await api.post("/api/v1/keys", json={"name": "revocable", "scopes": ["read"], **body})
    assert created.status_code == 201, created.text
    return str(created.json()["id"]), str(created.json()["key"])


@pytest.mark.node
async def test_revoking_a_key_disconnects_its_sockets(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    key_id, key = await issued(api)
    async with JsSocketClient(server.url, auth={"token": key}) as client:
        assert (await client.wait_for(connected, timeout=20))["kind"] == "connect"
        assert (await api.delete(f"/api/v1/keys/{key_id}")).status_code == 204
        line = await client.wait_for(lambda line: line["kind"] == "disconnect", timeout=5)
        assert line["reason"] == "io server disconnect"
    assert server.services.realtime.principals() == []


@pytest.mark.node
async def test_a_socket_is_disconnected_when_its_key_expires(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    expiry = datetime.now(UTC) + timedelta(seconds=2)
    _key_id, key = await issued(api, expires_at=expiry.isoformat())
    async with JsSocketClient(server.url, auth={"token": key}) as client:
        assert (await client.wait_for(connected, timeout=20))["kind"] == "connect"
        line = await client.wait_for(lambda line: line["kind"] == "disconnect", timeout=10)
        assert line["reason"] == "io server disconnect"
        assert datetime.now(UTC) >= expiry - timedelta(milliseconds=50), "not before it"


async def test_revoking_a_key_ends_its_event_stream_and_long_poll(
    server: RunningServer, api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream_module, "GONE_CHECK_SECONDS", 60.0)  # only the revocation ends them
    key_id, key = await issued(api)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
        long_poll = asyncio.create_task(
            client.get("/api/v1/events", params={"after": 10**9, "wait": 30})
        )
        async with client.stream(
            "GET",
            "/api/v1/events",
            params={"after": 10**9},
            headers={"Accept": "text/event-stream"},
        ) as stream:
            lines = stream.aiter_lines()
            assert (await anext(lines)).startswith("retry:")
            streams = server.services.limits.streams
            await until(lambda: streams.open(key_id) == 2)  # the long-poll waits too
            assert (await api.delete(f"/api/v1/keys/{key_id}")).status_code == 204
            async with asyncio.timeout(STREAM_END):
                rest = [line async for line in lines]
        assert not [line for line in rest if line and not line.startswith(":")], "no event after"
        async with asyncio.timeout(STREAM_END):
            polled = await long_poll
        assert polled.status_code == 200
        assert polled.json()["data"] == []
        refused = await client.get("/api/v1/events")
        assert refused.status_code == 401
