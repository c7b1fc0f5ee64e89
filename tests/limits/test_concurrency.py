"""Requests in progress per key: beyond the limit a request waits its turn; streams do not count."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.limits.test_quotas import admin_key_id, limited
from zapgate.limits.concurrency import KeyConcurrency


async def test_a_key_runs_at_most_its_limit_and_the_rest_wait_in_order() -> None:
    turns = KeyConcurrency()
    inside: list[str] = []
    release = asyncio.Event()

    async def request(key: str, name: str) -> None:
        async with turns.turn(key, 2):
            inside.append(name)
            await release.wait()

    tasks = [asyncio.create_task(request("a", f"a{i}")) for i in range(4)]
    tasks.append(asyncio.create_task(request("b", "b0")))
    while len(inside) < 3:
        await asyncio.sleep(0)
    assert sorted(inside) == ["a0", "a1", "b0"], "a's third waits; b is not held by a"
    assert turns.running_or_waiting("a") == 4
    release.set()
    await asyncio.gather(*tasks)
    assert inside[3:] == ["a2", "a3"], "waiting requests go in arrival order"
    assert turns.running_or_waiting("a") == 0, "a key with nothing in progress leaves nothing"


async def test_zero_means_no_limit() -> None:
    turns = KeyConcurrency()
    async with turns.turn("k", 0):
        assert turns.running_or_waiting("k") == 0


async def test_open_streams_do_not_take_a_turn(tmp_path: Path) -> None:
    sse = {"Accept": "text/event-stream"}
    async with (
        limited(tmp_path, max_concurrent_requests_per_key=1) as (server, api),
        api.stream("GET", "/api/v1/events", headers=sse),
    ):
        waiting = asyncio.create_task(
            api.get("/api/v1/events", params={"after": 10**6, "wait": 30})
        )
        async with asyncio.timeout(10):  # both are inside their routes, holding a stream slot
            while server.services.limits.streams.open(admin_key_id(server)) < 2:
                await asyncio.sleep(0.01)
        async with asyncio.timeout(5):  # neither the stream nor the long-poll holds a turn
            assert (await api.get("/api/v1/sessions")).status_code == 200
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)


async def test_a_rate_limited_request_is_answered_after_a_pause(tmp_path: Path) -> None:
    async with limited(tmp_path, rate_limit_per_key=0.001, rate_limit_burst=1) as (_server, api):
        assert (await api.get("/api/v1/sessions")).status_code == 200
        started = time.monotonic()
        refused = await api.get("/api/v1/sessions")
        assert refused.status_code == 429
        assert time.monotonic() - started >= 0.5, "a flood gets few refusals a second"
