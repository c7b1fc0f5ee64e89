"""A worker with more to send than its planning window: retries, many sessions, odd answers.

Real services on SQLite and PostgreSQL and real HTTP receivers, as in ``test_fairness.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import free_port
from tests.support.receiver import Receiver
from tests.webhooks.test_fairness import WAIT, A, emit, receivers, running, subscribe
from zapgate.webhooks import worker as worker_module


def numbers(receiver: Receiver, session: str) -> list[int]:
    """The ``n`` of each event of ``session`` the receiver accepted, in arrival order."""
    return [r.json["payload"]["n"] for r in receiver.successes() if r.json["session"] == session]


async def test_a_retry_inside_a_long_backlog_loses_nothing_and_keeps_the_order(
    database: AsyncEngine, tmp_path: Any
) -> None:
    """More events than the planning window, in three sessions, with failed attempts along the
    way: every event arrives, in its session's order (no worker rests with events unplanned)."""
    receiver = Receiver(free_port())
    # Three failures at the start (each session's first attempt, when the three lanes start
    # together), then two deep in the backlog. Five tries left per delivery: even when the
    # lanes do not start together (a loaded CI machine) and one delivery meets the first three
    # failures, it is not given up (with three tries it was, and the test waited in vain).
    receiver.answer(500, times=3)
    receiver.answer(200, times=60)
    receiver.answer(500)
    receiver.answer(200, times=80)
    receiver.answer(500)
    schedule = (0, 0.05, 0.05, 0.05, 0.05, 0.05)
    async with running(database, tmp_path, schedule=schedule) as services, receivers(receiver):
        await subscribe(services, A, receiver.url)
        for session in ("a", "b", "c"):
            await emit(services, A, session, worker_module.PLAN_AHEAD * 2 + 7)
        total = 3 * (worker_module.PLAN_AHEAD * 2 + 7)
        await receiver.wait_until(lambda r: len(r.successes()) >= total, WAIT)
    for session in ("a", "b", "c"):
        assert numbers(receiver, session) == list(range(worker_module.PLAN_AHEAD * 2 + 7))


async def test_sessions_behind_one_waiting_for_a_retry_are_still_served(
    database: AsyncEngine, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session whose head waits a minute for its retry is left out of the next scans, so the
    sessions after it (beyond one scan page) get their lanes at once."""
    monkeypatch.setattr(worker_module, "SCAN", 2)
    monkeypatch.setattr(worker_module, "SCAN_PAGES", 1)
    receiver = Receiver(free_port())
    receiver.answer(503, **{"Retry-After": "60"})
    async with running(database, tmp_path) as services, receivers(receiver):
        await subscribe(services, A, receiver.url)
        await emit(services, A, "waits", 3)  # its first attempt fails: back in a minute
        await receiver.wait_until(lambda r: len(r.requests) == 1, WAIT)
        await emit(services, A, "next", 3)
        await receiver.wait_until(lambda r: len(r.successes()) == 3, WAIT)
        assert numbers(receiver, "next") == [0, 1, 2]
        assert numbers(receiver, "waits") == []


async def test_a_receiver_answering_nul_characters_is_recorded_and_readable(
    database: AsyncEngine, tmp_path: Any
) -> None:
    """PostgreSQL refuses NUL in text: the stored excerpt is scrubbed, the delivery list reads."""
    answers = 0
    second = asyncio.Event()

    async def handle(_request: web.Request) -> web.Response:
        nonlocal answers
        answers += 1
        if answers == 2:
            second.set()
        status = 500 if answers == 1 else 200
        return web.Response(status=status, body=b"bad\x00answer \xed\xa0\x80 end")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with running(database, tmp_path) as services:
            hook = await subscribe(services, A, f"http://127.0.0.1:{port}/hook")
            await emit(services, A, "s")
            async with asyncio.timeout(WAIT):
                await second.wait()  # the retry is in flight: the worker rests once it is stored
                await services.dispatcher.until_quiet()
            (delivery,) = await services.webhooks.deliveries(A, hook, 10, None, None)
    finally:
        await runner.cleanup()
    responses = [attempt["response"] for attempt in delivery["attempt_log"]]
    assert len(responses) == 2
    for response in responses:
        assert "\x00" not in response
        assert response.startswith("bad")
        assert response.endswith("end")
        response.encode()  # no lone surrogate either


async def test_a_subscription_changed_while_its_worker_plans_is_not_sent_under_the_old_row(
    database: AsyncEngine, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The URL changes while the worker stores a delivery planned under the old row: the
    delivery goes to the new URL, nothing to the old one."""
    old, new = Receiver(free_port()), Receiver(free_port())
    planned, release = asyncio.Event(), asyncio.Event()
    async with running(database, tmp_path) as services, receivers(old, new):
        hook = await subscribe(services, A, old.url)
        async with asyncio.timeout(WAIT):
            await services.dispatcher.until_quiet()
        real_run = services.committer.run

        async def run(job: Any, background: str | None = None) -> Any:
            result = await real_run(job, background=background)
            if background is not None and not planned.is_set():  # the worker's planning write
                planned.set()
                await release.wait()
            return result

        monkeypatch.setattr(services.committer, "run", run)
        await emit(services, A, "s")
        async with asyncio.timeout(WAIT):
            await planned.wait()
        await services.webhooks.update(A, hook, {"url": new.url})
        release.set()
        await new.wait_until(lambda r: len(r.successes()) == 1, WAIT)
    assert old.requests == [], "nothing went to the old URL"
