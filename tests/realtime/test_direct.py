"""Direct websocket writes: whole frames of every size, and order kept when a socket that
stops reading falls back to engine.io's queue."""

from __future__ import annotations

import asyncio
import socket
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import RunningServer
from tests.realtime.support import connected, got_seq, seqs, tenant_with_key, until
from tests.support.js_client import JsSocketClient
from zapgate.db.committer import UnitOfWork
from zapgate.events.model import EventDraft
from zapgate.realtime import backlog
from zapgate.realtime.direct import DirectQueue, frame

pytestmark = pytest.mark.node


async def emit_sized(server: RunningServer, tenant: str, sizes: list[int]) -> None:
    """Commit one event per size, its payload text that many characters long (one transaction)."""

    async def job(unit: UnitOfWork) -> None:
        for n, size in enumerate(sizes):
            unit.emit(EventDraft(tenant, "s1", "test.event", {"n": n, "text": "é" * size}))

    await server.services.committer.run(job)


def test_frame_headers_follow_rfc_6455_length_encoding() -> None:
    assert frame(b"x" * 125, 0x81)[:2] == bytes((0x81, 125))
    assert frame(b"x" * 126, 0x81)[:4] == bytes((0x81, 126, 0, 126))
    assert frame(b"x" * 65_535, 0x81)[:4] == bytes((0x81, 126, 0xFF, 0xFF))
    assert frame(b"x" * 65_536, 0x82)[:10] == bytes((0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0))
    assert len(frame(b"x" * 65_536, 0x82)) == 65_536 + 10


async def test_events_of_every_frame_size_reach_the_real_client_whole(
    server: RunningServer,
) -> None:
    key = await tenant_with_key(server, "sizes")
    sizes = [0, 20_000, 32_767, 32_768, 40_000]  # 2-byte characters: 16- and 64-bit lengths
    async with JsSocketClient(server.url, auth={"token": key}, events=["event"]) as client:
        assert (await client.wait_for(connected, timeout=20))["kind"] == "connect"
        linked = [
            s.queue
            for s in server.services.realtime.sio.eio.sockets.values()
            if isinstance(s.queue, DirectQueue) and s.queue.link is not None
        ]
        assert len(linked) == 1, "a websocket client is written to directly"
        await emit_sized(server, "sizes", sizes)
        await client.wait_for(got_seq(len(sizes)), timeout=20)
        texts = [
            line["args"][0]["payload"]["text"]
            for line in client.lines
            if line["kind"] == "event" and line["name"] == "event"
        ]
        assert [len(text) for text in texts] == sizes
        assert all(set(text) <= {"é"} for text in texts)


async def test_a_polling_client_that_upgrades_still_gets_everything_in_order(
    server: RunningServer,
) -> None:
    key = await tenant_with_key(server, "upgrade")
    async with JsSocketClient(
        server.url, auth={"token": key}, events=["event"], transports=["polling", "websocket"]
    ) as client:
        assert (await client.wait_for(connected, timeout=20))["kind"] == "connect"
        await emit_sized(server, "upgrade", [10] * 30)
        await client.wait_for(got_seq(30), timeout=20)
        assert seqs(client) == list(range(1, 31))


async def raw_socket(server: RunningServer, key: str) -> ClientConnection:
    """A Socket.IO connection by hand over a websocket with a tiny receive buffer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", urlsplit(server.url).port or 80))
    sock.setblocking(False)
    ws_url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = await connect(ws_url, sock=sock, max_queue=4, compression=None)
    opened = await ws.recv()
    assert isinstance(opened, str)
    assert opened.startswith("0{")
    await ws.send("40" + orjson.dumps({"token": key}).decode())
    while not str(await ws.recv()).startswith("40"):
        pass
    return ws


def event_seq(frame_text: str) -> int | None:
    """The seq of an ``event`` packet (``42["event",{...}]``), None for other packets."""
    if not frame_text.startswith("42"):
        return None
    name, body = orjson.loads(frame_text[2:])
    return int(body["seq"]) if name == "event" else None


async def test_a_socket_that_stops_reading_falls_back_to_its_queue_and_keeps_order(
    server: RunningServer,
) -> None:
    key = await tenant_with_key(server, "slow")
    sockets: dict[str, Any] = server.services.realtime.sio.eio.sockets
    ws = await raw_socket(server, key)
    try:
        await until(lambda: len(server.services.realtime.principals()) == 1)
        (engine_socket,) = sockets.values()
        queue = engine_socket.queue
        assert isinstance(queue, DirectQueue)
        assert queue.link is not None
        total = 0
        for _ in range(40):  # until the transport pushes back (the client reads nothing)
            await emit_sized(server, "slow", [4_000] * 50)
            total += 50
            await server.services.realtime.drain()
            if queue.link is None:
                break
        assert queue.link is None, "the transport never pushed back"
        await emit_sized(server, "slow", [4_000] * 50)  # these wait in the queue
        total += 50
        await server.services.realtime.drain()
        assert queue.qsize() > 0

        received: list[int] = []
        async with asyncio.timeout(30):
            while len(received) < total:
                seq = event_seq(str(await ws.recv()))
                if seq is not None:
                    received.append(seq)
        assert received == list(range(1, total + 1)), "every event once, in order"
    finally:
        await ws.close()


async def test_a_websocket_that_stops_reading_is_closed_once_its_queue_grows(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backlog, "MAX_QUEUED", 20)
    key = await tenant_with_key(server, "stuckws")
    realtime = server.services.realtime
    ws = await raw_socket(server, key)
    try:
        await until(lambda: len(realtime.principals()) == 1)
        (engine_socket,) = realtime.sio.eio.sockets.values()
        queue = engine_socket.queue
        for _ in range(40):  # direct writes fill the transport until it pushes back
            await emit_sized(server, "stuckws", [4_000] * 50)
            await realtime.drain()
            if queue.link is None:
                break
        assert queue.link is None, "the transport never pushed back"
        await emit_sized(server, "stuckws", [10] * 50)
        await realtime.drain()
        assert await realtime.backlogs.check() == 0, "over the limit: it may be draining"
        assert await realtime.backlogs.check() == 1, "not drained since: closed"
        await until(lambda: not realtime.principals())
    finally:
        await ws.close()


async def test_a_direct_socket_outlives_engine_ios_idle_writer_timeout(
    server: RunningServer,
) -> None:
    """engine.io's writer closes a socket whose queue stays empty for ping interval + timeout;
    a direct socket's pings still go through the queue, so it lives on."""
    engine = server.services.realtime.sio.eio
    engine.ping_interval, engine.ping_timeout = 0.3, 1.0
    key = await tenant_with_key(server, "idle")
    async with JsSocketClient(server.url, auth={"token": key}, events=["event"]) as client:
        assert (await client.wait_for(connected, timeout=20))["kind"] == "connect"
        (engine_socket,) = engine.sockets.values()
        pings = engine_socket.last_ping
        await until(lambda: engine_socket.last_ping != pings, timeout=5)  # a first ping came back
        await asyncio.sleep(3.0)  # past the writer's 1.3 s timeout, twice
        assert not engine_socket.closed
        await emit_sized(server, "idle", [10])
        await client.wait_for(got_seq(1), timeout=10)
