"""Replays run beside the live fan-out: they never hold up other clients' live events."""

from __future__ import annotations

import pytest

from tests.conftest import RunningServer
from tests.realtime.support import (
    HeldReads,
    connected,
    emit,
    emit_many,
    got_seq,
    seqs,
    tenant_with_key,
    until,
)
from tests.support.js_client import JsSocketClient

pytestmark = pytest.mark.node


async def test_a_live_event_of_another_tenant_arrives_while_replays_are_held(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    busy_key = await tenant_with_key(server, "busy")
    quiet_key = await tenant_with_key(server, "quiet")
    await emit_many(server, "busy", 30)
    reads = HeldReads(monkeypatch, "busy")
    replay_auth = {"token": busy_key, "offset": 0}
    async with (
        JsSocketClient(server.url, auth={"token": quiet_key}, events=["event"]) as quiet,
        JsSocketClient(server.url, auth=replay_auth, events=["event"], timeout_ms=30_000) as a1,
        JsSocketClient(server.url, auth=replay_auth, events=["event"], timeout_ms=30_000) as a2,
        JsSocketClient(server.url, auth=replay_auth, events=["event"], timeout_ms=30_000) as a3,
    ):
        for client in (quiet, a1, a2, a3):
            assert (await client.wait_for(connected, timeout=20))["kind"] == "connect"
        await reads.wait(lambda held: held.entered >= 1)

        await emit(server, "quiet", 1)
        await quiet.wait_for(got_seq(1))
        await emit(server, "busy", 31, 32)

        assert [seqs(client) for client in (a1, a2, a3)] == [[], [], []], "replays still held"
        slots = server.services.realtime.replays.slots
        await until(lambda: slots.waiting_or_holding("busy") == 3)
        await reads.wait(lambda held: held.entered == 2)
        assert reads.entered == 2, "at most two replays of one tenant at once, the third waits"
        reads.release()
        for client in (a1, a2, a3):
            await client.wait_for(got_seq(32), timeout=15)
            assert seqs(client) == list(range(1, 33))


async def test_a_tenants_replays_keep_to_its_event_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    from zapgate.limits.buckets import TokenBuckets
    from zapgate.realtime import replay

    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(replay.asyncio, "sleep", sleep)
    replays = replay.Replays(None, None, None)  # type: ignore[arg-type]
    replays._budget = TokenBuckets(lambda: now[0])
    for _ in range(100):  # 10,000 events in pages of 100
        await replays._pace("busy", 100)
    sent = 100 * 100
    expected = (sent - replay.REPLAY_EVENTS_BURST) / replay.REPLAY_EVENTS_PER_SECOND
    assert sum(slept) == pytest.approx(expected, rel=0.01)
    await replays._pace("other", 100)
    assert sum(slept) == pytest.approx(expected, rel=0.01), "another tenant does not wait"
