"""A socket that goes away leaves nothing running: not its replay, not its registration."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import ADMIN_KEY, RunningServer
from tests.realtime.support import (
    HeldReads,
    connected,
    emit,
    emit_many,
    got_seq,
    open_streams,
    seqs,
    tenant_with_key,
    until,
)
from tests.support.js_client import JsSocketClient
from zapgate.auth.service import Principal

pytestmark = pytest.mark.node


async def test_a_client_that_disconnects_mid_replay_stops_its_replay_at_once(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = await tenant_with_key(server, "leaver")
    await emit_many(server, "leaver", 450)
    reads = HeldReads(monkeypatch, "leaver")
    realtime = server.services.realtime
    auth = {"token": key, "offset": 0}
    async with (
        JsSocketClient(server.url, auth=auth, events=["event"], timeout_ms=30_000) as first,
        JsSocketClient(server.url, auth=auth, events=["event"], timeout_ms=30_000) as second,
    ):
        await reads.wait(lambda held: held.entered == 2)
        await first.close()
        await second.kill()
        await reads.wait(lambda held: held.cancelled == 2)
        async with asyncio.timeout(10):
            await realtime.drain()
        assert realtime.principals() == []
        assert realtime.replays.slots.waiting_or_holding("leaver") == 0
    assert reads.entered == 2, "no page was read after the clients left"

    reads.release()
    async with JsSocketClient(server.url, auth=auth, events=["event"], timeout_ms=30_000) as third:
        await third.wait_for(got_seq(450), timeout=20)
        assert seqs(third) == list(range(1, 451))


class SlowAuthentication:
    """Holds every authentication until ``verdict`` is set."""

    def __init__(self, server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.checking = asyncio.Event()
        self.verdict = asyncio.Event()
        real = server.services.auth.authenticate

        async def authenticate(token: str | None) -> Principal:
            self.checking.set()
            await self.verdict.wait()
            return await real(token)

        monkeypatch.setattr(server.services.auth, "authenticate", authenticate)


async def test_a_socket_killed_while_connecting_is_forgotten(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = await tenant_with_key(server, "vanish")
    slow = SlowAuthentication(server, monkeypatch)
    realtime = server.services.realtime
    async with JsSocketClient(server.url, auth={"token": key}, timeout_ms=30_000) as client:
        await asyncio.wait_for(slow.checking.wait(), 20)
        await client.kill()
        slow.verdict.set()
        await until(lambda: not list(realtime.sio.manager.get_participants("/", None)))
    assert realtime.principals() == []


async def test_a_socket_whose_transport_closes_while_connecting_is_refused(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = await tenant_with_key(server, "dropped")
    slow = SlowAuthentication(server, monkeypatch)
    realtime = server.services.realtime
    async with JsSocketClient(server.url, auth={"token": key}, timeout_ms=30_000):
        await asyncio.wait_for(slow.checking.wait(), 20)
        (transport,) = list(realtime.sio.eio.sockets)
        await realtime.sio.eio.disconnect(transport)  # what a ping timeout does
        slow.verdict.set()
        await until(lambda: not list(realtime.sio.manager.get_participants("/", None)))
        assert realtime.principals() == []


async def test_principals_are_kept_from_connect_to_disconnect(server: RunningServer) -> None:
    key = await tenant_with_key(server, "kept")
    realtime = server.services.realtime
    async with JsSocketClient(server.url, auth={"token": key}) as client:
        assert (await client.wait_for(connected, timeout=20))["kind"] == "connect"
        assert [(p.tenant, p.key_id.startswith("key_")) for p in realtime.principals()] == [
            ("kept", True)
        ]
        await client.close()
        await client.wait_exit()
        await until(lambda: realtime.principals() == [])


async def test_a_polling_client_that_vanishes_is_forgotten_before_any_ping_timeout(
    server: RunningServer,
) -> None:
    realtime = server.services.realtime
    engineio = realtime.sio.eio
    assert engineio.ping_interval + engineio.ping_timeout >= 30, "what it would take without"
    async with JsSocketClient(
        server.url, auth={"token": ADMIN_KEY}, transports=["polling"], timeout_ms=60_000
    ) as client:
        assert (await client.wait_for(connected, timeout=20))["kind"] == "connect"
        assert realtime.polls is not None
        polls = realtime.polls
        await until(lambda: bool(polls.pending), timeout=10)
        await client.kill()
        await until(lambda: realtime.principals() == [], timeout=10)


async def test_a_client_upgrading_from_polling_to_websocket_stays_connected(
    server: RunningServer,
) -> None:
    key = await tenant_with_key(server, "upgrade")
    realtime = server.services.realtime
    async with JsSocketClient(
        server.url,
        auth={"token": key},
        events=["event"],
        transports=["polling", "websocket"],
        timeout_ms=60_000,
    ) as client:
        assert (await client.wait_for(connected, timeout=20))["kind"] == "connect"
        await until(lambda: all(s.upgraded for s in realtime.sio.eio.sockets.values()))
        await emit(server, "upgrade", 1)
        await client.wait_for(got_seq(1))
        assert [p.tenant for p in realtime.principals()] == ["upgrade"]


async def test_an_unexpected_failure_while_connecting_is_a_refusal_that_keeps_nothing(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = await tenant_with_key(server, "broken")
    realtime = server.services.realtime

    async def join(_client: object) -> None:
        raise RuntimeError("a bug in the fan-out")

    monkeypatch.setattr(realtime.fanout, "join", join)
    async with JsSocketClient(server.url, auth={"token": key}, timeout_ms=30_000) as client:
        line = await client.wait_for(connected, timeout=20)
        assert line["kind"] == "connect_error"
        assert line["data"]["error"] == "unavailable"
        assert "fan-out" not in str(line), "internals are logged, not told"
    assert realtime.principals() == []
    assert open_streams(server, key) == 0, "the stream slot taken before the failure is back"


async def test_a_socket_that_leaves_while_joining_its_rooms_is_forgotten(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = await tenant_with_key(server, "joiner")
    realtime = server.services.realtime
    real_join = realtime.fanout.join
    joined = asyncio.Event()

    async def join(client: object) -> None:
        (transport,) = list(realtime.sio.eio.sockets)
        await realtime.sio.eio.disconnect(transport)  # it goes away while its rooms are entered
        await real_join(client)  # type: ignore[arg-type]
        joined.set()

    monkeypatch.setattr(realtime.fanout, "join", join)
    async with JsSocketClient(server.url, auth={"token": key}, timeout_ms=30_000):
        async with asyncio.timeout(20):
            await joined.wait()
        await until(lambda: not list(realtime.sio.manager.get_participants("/", None)))
        await until(lambda: realtime.principals() == [])
        assert open_streams(server, key) == 0
