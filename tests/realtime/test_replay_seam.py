"""The seam between replay and live: every event once, in order, however they interleave."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import RunningServer
from tests.realtime.support import (
    HeldReads,
    connected,
    emit,
    emit_many,
    events_of,
    got_seq,
    named,
    seqs,
    tenant_with_key,
    until,
)
from tests.support.js_client import JsSocketClient
from zapgate.db.committer import UnitOfWork
from zapgate.events.model import Event, EventDraft, EventType

pytestmark = pytest.mark.node


async def test_events_committed_during_a_replay_arrive_once_and_in_order(
    backend_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = backend_server
    key = await tenant_with_key(server, "seam")
    await emit_many(server, "seam", 250)

    async def writer() -> None:
        for _ in range(60):
            await emit_many(server, "seam", 1)
            await asyncio.sleep(0)

    writing: list[asyncio.Task[None]] = []

    async def commit_during_replay(page: list[Event]) -> None:
        if not writing:  # the first page is read: from now on a writer commits beside the replay
            writing.append(asyncio.create_task(writer()))
        await emit_many(server, "seam", 3)

    reads = HeldReads(monkeypatch, "seam", held=False, after_read=commit_during_replay)
    async with JsSocketClient(
        server.url, auth={"token": key, "offset": 20}, events=["event"], timeout_ms=60_000
    ) as client:
        await until(lambda: bool(writing), timeout=20)
        await writing[0]
        await server.services.realtime.drain()
        assert reads.entered >= 1
        last = 250 + 3 * reads.entered + 60 + 1
        await emit_many(server, "seam", 1)
        await client.wait_for(got_seq(last), timeout=30)
        assert seqs(client) == list(range(21, last + 1))
        assert len({event["id"] for event in events_of(client)}) == last - 20


async def test_events_committed_while_a_replay_is_held_follow_it_exactly_once(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = await tenant_with_key(server, "held")
    await emit(server, "held", 1, 2, 3)
    reads = HeldReads(monkeypatch, "held")
    async with JsSocketClient(
        server.url, auth={"token": key, "offset": 1}, events=["event"], timeout_ms=30_000
    ) as client:
        await reads.wait(lambda held: held.entered == 1)
        await emit(server, "held", 4, 5)
        await server.services.realtime.fanout.drain()
        assert seqs(client) == []
        reads.release()
        await client.wait_for(got_seq(5))
        await emit(server, "held", 6)
        await client.wait_for(got_seq(6))
        assert seqs(client) == [2, 3, 4, 5, 6]


async def test_a_replay_whose_live_buffer_overflows_asks_for_a_resync_then_goes_live(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = await tenant_with_key(server, "flood")
    await emit(server, "flood", 1, 2)
    server.services.realtime.replays.buffer_max = 3
    reads = HeldReads(monkeypatch, "flood")
    async with JsSocketClient(
        server.url,
        auth={"token": key, "offset": 0},
        events=["event", "resync_required"],
        timeout_ms=30_000,
    ) as client:
        await reads.wait(lambda held: held.entered == 1)
        await emit_many(server, "flood", 5)
        await server.services.realtime.fanout.drain()
        reads.release()
        line = await client.wait_for(named("resync_required"))
        assert line["args"][0] == {"offset": 0, "oldest_seq": 1, "latest_seq": 7}
        await emit(server, "flood", 8)
        await client.wait_for(got_seq(8))
        assert seqs(client) == [8]


async def test_a_replay_starting_while_an_event_is_being_fanned_out_gets_it_once(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fan-out puts an event's ``event`` and ``message`` packets on every socket in one
    step, so a replay can only start before or after an event, never between its halves."""
    key = await tenant_with_key(server, "mid")
    fanout = server.services.realtime.fanout
    real_emit = fanout._emit
    paused = asyncio.Event()
    resume = asyncio.Event()

    async def emit_after_a_pause(event: Event) -> None:
        if event.tenant == "mid" and not resume.is_set():
            paused.set()  # the fan-out holds its turn with this event not yet sent
            await resume.wait()
        await real_emit(event)

    monkeypatch.setattr(fanout, "_emit", emit_after_a_pause)

    async def receive(unit: UnitOfWork) -> None:
        payload = {"id": "m1", "from": "1", "to": "2", "text": "hi", "type": "text"}
        unit.emit(EventDraft("mid", "s1", EventType.MESSAGE_RECEIVED, payload | {"timestamp": 1}))

    await server.services.committer.run(receive)
    await asyncio.wait_for(paused.wait(), 10)
    async with JsSocketClient(
        server.url, auth={"token": key, "offset": 0}, events=["event", "message"]
    ) as client:
        assert (await client.wait_for(connected, timeout=20))["kind"] == "connect"
        resume.set()
        await emit(server, "mid", 2)
        await client.wait_for(got_seq(2))
        assert seqs(client) == [1, 2]
        messages = [line["args"][0]["id"] for line in client.lines if line.get("name") == "message"]
        assert messages == ["m1"]
