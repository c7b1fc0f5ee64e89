"""The Cloud API engine on its own, against the fake Graph API: it stays alive without asking
Meta more than its ``health_seconds`` say, and an unreachable Meta is a DISCONNECTED session
that comes back by itself."""

from __future__ import annotations

import pytest

from tests.cloudapi.conftest import config_for
from tests.support.fake_graph import FakeGraph
from tests.support.sink import RecordingSink, is_status
from zapgate.clock import SystemClock
from zapgate.engines import account as engine_module
from zapgate.engines.base import SessionConfig, SessionStatus
from zapgate.engines.cloudapi.engine import CloudApiEngine
from zapgate.webhooks.ssrf import Allowlist


async def test_a_long_health_period_still_gives_signs_of_life(
    graph: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "HEARTBEAT_SECONDS", 0.02)
    engine = CloudApiEngine(Allowlist.parse("127.0.0.1"), SystemClock(), 1024)
    sink = RecordingSink()
    config = config_for(graph, health_seconds=3600)
    await engine.start(SessionConfig("default", "meta", config), sink)
    try:
        await sink.wait_for(is_status(SessionStatus.WORKING))
        for _ in range(3):
            count = len([r for r in sink.reports if r.kind == "heartbeat"])
            await sink.wait_for(
                lambda r, seen=count: (
                    r.kind == "heartbeat"
                    and len([x for x in sink.reports if x.kind == "heartbeat"]) > seen
                )
            )
        assert graph.requests == 1  # the phone number, once: heartbeats cost Meta nothing
    finally:
        await engine.stop()


async def test_a_start_while_meta_is_down_waits_disconnected_then_works(graph: FakeGraph) -> None:
    graph.outage = True
    engine = CloudApiEngine(Allowlist.parse("127.0.0.1"), SystemClock(), 1024)
    sink = RecordingSink()
    await engine.start(SessionConfig("default", "meta", config_for(graph)), sink)
    try:
        await sink.wait_for(is_status(SessionStatus.DISCONNECTED))
        graph.outage = False
        await sink.wait_for(is_status(SessionStatus.WORKING))
        assert sink.statuses() == [
            SessionStatus.STARTING,
            SessionStatus.DISCONNECTED,
            SessionStatus.WORKING,
        ]
    finally:
        await engine.stop()
