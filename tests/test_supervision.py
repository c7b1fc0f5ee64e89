"""Supervision with an injected clock: restore on boot, restart backoff, stale detection, chaos."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import httpx
import pytest

from tests.conftest import RunningServer, make_settings
from tests.support.engines import BrokenEngine
from tests.support.events import EventWatcher, status_is
from zapgate.app import start, stop
from zapgate.clock import ManualClock
from zapgate.engines.base import WrongEngineState
from zapgate.engines.registry import EngineSpec
from zapgate.engines.simulator import SimulatorEngine
from zapgate.services import Services, build_services

TERMINAL = {"sent", "delivered", "read", "failed"}
BACKGROUND_LOOPS = 2  # the health check and the retention cleaner sleep on the clock too


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def clocked(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Services]:
    """Services on a SQLite file with a manual clock; the default session stopped."""
    built = build_services(
        make_settings(
            tmp_path,
            session_restart_limit=3,
            session_restart_base_seconds=2,
            session_health_interval_seconds=1e9,  # tests call check_health themselves
        ),
        clock=clock,
    )
    await start(built)
    await built.sessions.stop("default", "default")
    try:
        yield built
    finally:
        await stop(built)


async def test_running_sessions_restart_on_boot_without_a_new_scan(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    first = build_services(settings)
    await start(first)
    async with EventWatcher(first.bus) as watcher:
        await first.sessions.create("default", "kept", "simulator", {}, {}, start=True)
        await first.sessions.create("default", "parked", "simulator", {}, {}, start=False)
        await watcher.wait_for(status_is("kept", "WORKING"))
    await stop(first)

    second = build_services(settings)
    async with EventWatcher(second.bus) as watcher:
        await start(second)
        await watcher.wait_for(status_is("kept", "WORKING"))
        kept = [e for e in watcher.seen if e.session == "kept"]
        assert "session.qr" not in [e.type for e in kept], "a restored login needed a QR"
        assert (await second.sessions.get("default", "kept")).me is not None
        assert second.sessions.runner("default", "parked") is None
        assert (await second.sessions.get("default", "parked")).status.value == "STOPPED"
    await stop(second)


async def test_failed_starts_are_retried_with_backoff_then_given_up(
    clocked: Services, clock: ManualClock
) -> None:
    clocked.sessions.engines.register("broken", EngineSpec(BrokenEngine, BrokenEngine.capabilities))
    BrokenEngine.starts = 0
    async with asyncio.timeout(5):
        await clock.until_sleeping(BACKGROUND_LOOPS)
    async with EventWatcher(clocked.bus) as watcher:
        await clocked.sessions.create("default", "bad", "broken", {}, {}, start=True)
        failed = await watcher.wait_for(status_is("bad", "FAILED"))
        assert "browser could not be launched" in failed.payload["reason"]
        for attempt, delay in enumerate([2, 4, 8], start=2):
            async with asyncio.timeout(5):
                await clock.until_sleeping(BACKGROUND_LOOPS + 1)  # and the runner's backoff
            clock.advance(delay - 0.01)
            assert BrokenEngine.starts == attempt - 1, "restarted before its backoff"
            clock.advance(0.01)
            await watcher.wait_for(
                lambda e, n=attempt: status_is("bad", "FAILED")(e) and BrokenEngine.starts == n
            )
        gave_up = await watcher.wait_for(
            lambda e: status_is("bad", "FAILED")(e) and "gave up" in (e.payload["reason"] or "")
        )
    assert "gave up after 3 restarts" in gave_up.payload["reason"]
    assert BrokenEngine.starts == 4
    session = await clocked.sessions.get("default", "bad")
    assert session.status.value == "FAILED"
    clock.advance(10_000)
    assert BrokenEngine.starts == 4, "kept restarting after giving up"


async def test_a_silent_session_is_flagged_stale_and_restarted(
    clocked: Services, clock: ManualClock
) -> None:
    stale_after = clocked.settings.session_stale_seconds
    async with EventWatcher(clocked.bus) as watcher:
        await clocked.sessions.create("default", "deaf", "simulator", {}, {}, start=True)
        await watcher.wait_for(status_is("deaf", "WORKING"))
        runner = clocked.sessions.runner("default", "deaf")
        assert runner is not None
        silent = runner.engine
        silent.go_silent()  # type: ignore[union-attr]
        clock.advance(stale_after / 2)
        await clocked.sessions.check_health()
        assert runner.health == "ok"
        clock.advance(stale_after)
        await clocked.sessions.check_health()
        stale = await watcher.wait_for(lambda e: e.type == "session.health")
        assert stale.payload == {"health": "stale"}
        assert (await clocked.sessions.get("default", "deaf")).status.value in {
            "WORKING",
            "STARTING",
            "SCAN_QR_CODE",
        }
        await watcher.wait_for(lambda e: e.type == "session.health" and e.payload["health"] == "ok")
    assert runner.engine is not silent
    assert runner.health == "ok"
    assert (
        clocked.sessions.describe(await clocked.sessions.get("default", "deaf"))["health"] == "ok"
    )


async def test_failures_and_disconnects_lose_nothing_and_the_session_recovers(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    config = {
        "seed": 42,
        "send_failure_rate": 0.2,
        "disconnect_mean_seconds": 1,  # the shortest a session may ask for
        "reconnect_latency": {"kind": "uniform", "min": 0.005, "max": 0.02},
        "delivered_latency": {"kind": "fixed", "seconds": 0},
        "read_latency": {"kind": "fixed", "seconds": 0},
    }
    async with EventWatcher(server.services.bus) as watcher:
        created = await api.post("/api/v1/sessions", json={"name": "chaos", "config": config})
        assert created.status_code == 201, created.text
        await watcher.wait_for(status_is("chaos", "WORKING"))
        runner = server.services.sessions.runner("default", "chaos")
        assert runner is not None
        phone = cast(SimulatorEngine, runner.engine)
        ids = []
        for index in range(120):
            if index % 30 == 15:
                with contextlib.suppress(WrongEngineState):  # unless a random one came first
                    await phone.force_disconnect(0.05)
            response = await api.post(
                "/api/v1/sessions/chaos/messages", json={"to": "5511999999999", "text": f"{index}"}
            )
            assert response.status_code == 202
            ids.append(response.json()["id"])
        pending = set(ids)
        while pending:
            event = await watcher.wait_for(
                lambda e: e.payload.get("id") in pending and e.payload.get("status") in TERMINAL,
                timeout=30,
            )
            pending.discard(event.payload["id"])
        disconnects = [e for e in watcher.seen if status_is("chaos", "DISCONNECTED")(e)]
        assert disconnects, "the chaos session never disconnected"
        await watcher.wait_for(status_is("chaos", "WORKING"), timeout=10)
    stored = [(await api.get(f"/api/v1/messages/{i}")).json() for i in ids]
    assert all(m["status"] != "queued" for m in stored)
    failed = [m for m in stored if m["status"] == "failed"]
    assert all(m["error"] for m in failed)
    retried = [m for m in stored if m["status"] != "failed" and m["attempts"] > 1]
    assert retried, "with a 20% failure rate some messages should have needed a retry"
