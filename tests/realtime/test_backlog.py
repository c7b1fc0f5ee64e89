"""A socket that stops reading is closed once too much waits for it and does not drain;
readers are untouched."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest

from tests.conftest import RunningServer
from tests.realtime.support import (
    connected,
    emit_many,
    got_seq,
    open_streams,
    tenant_with_key,
    until,
)
from tests.support.js_client import JsSocketClient
from zapgate.realtime import backlog

pytestmark = pytest.mark.node
POLLING = "/socket.io/?EIO=4&transport=polling"


async def silent_polling_socket(http: httpx.AsyncClient, key: str) -> str:
    """Connect a Socket.IO client by hand over long-polling, then never poll again."""
    opened = (await http.get(POLLING)).text
    sid = orjson.loads(opened[opened.index("{") :])["sid"]
    answer = await http.post(f"{POLLING}&sid={sid}", content=b"40" + orjson.dumps({"token": key}))
    assert answer.text.lower() == "ok"
    acknowledged = (await http.get(f"{POLLING}&sid={sid}")).text
    assert acknowledged.startswith("40"), acknowledged
    return str(sid)


async def test_a_socket_that_stops_reading_is_closed_and_its_slot_freed(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backlog, "MAX_QUEUED", 20)
    key = await tenant_with_key(server, "stuck")
    realtime = server.services.realtime
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=10) as http,
        JsSocketClient(server.url, auth={"token": key}, events=["event"]) as reader,
    ):
        assert (await reader.wait_for(connected, timeout=20))["kind"] == "connect"
        await silent_polling_socket(http, key)
        await until(lambda: len(realtime.principals()) == 2)
        assert open_streams(server, key) == 2
        assert await realtime.backlogs.check() == 0, "nothing waits yet"

        await emit_many(server, "stuck", 50)
        await reader.wait_for(got_seq(50), timeout=20)
        async with asyncio.timeout(10):
            await realtime.drain()
        assert await realtime.backlogs.check() == 0, "over the limit: it may be draining"
        assert await realtime.backlogs.check() == 1, "not drained since: the silent one closed"
        await until(lambda: len(realtime.principals()) == 1)
        assert open_streams(server, key) == 1, "its stream slot is free again"

        await emit_many(server, "stuck", 1)
        await reader.wait_for(got_seq(51), timeout=20)  # the reader goes on as before
        assert await realtime.backlogs.check() == 0
