"""Webhook dispatch is fair: a slow, dead or busy receiver costs only its own subscription.

Real services on SQLite and PostgreSQL, real HTTP receivers on 127.0.0.1. Receivers that must
stay "slow" are held (they answer when the test releases them), so every assertion is about
the order of things, never about how long they took.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import bounded_teardown, free_port, make_settings
from tests.support.events import EventWatcher, status_is
from tests.support.receiver import DeadReceiver, Receiver
from tests.support.tenants import tenant_key
from zapgate.app import start, stop
from zapgate.clock import now_ms
from zapgate.db.committer import UnitOfWork
from zapgate.engines.base import SessionStatus
from zapgate.events.model import EventDraft, EventType
from zapgate.ids import new_id
from zapgate.services import Services, build_services
from zapgate.webhooks import dispatcher as dispatcher_module
from zapgate.webhooks import repository
from zapgate.webhooks.policy import Concurrency
from zapgate.webhooks.recent import RecentEvents

A, B = "default", "acme"
WAIT = 30.0  # a guard against hanging, never a measure: tests wait for events


@asynccontextmanager
async def running(
    database: AsyncEngine,
    tmp_path: Path,
    limits: Concurrency | None = None,
    schedule: tuple[float, ...] = (0, 0.05, 0.05),
) -> AsyncIterator[Services]:
    settings = make_settings(
        tmp_path,
        webhook_allowlist="127.0.0.1",
        webhook_retry_schedule=schedule,
        webhook_disable_after=100,
        webhook_timeout_seconds=120,  # a dead receiver stays "in flight" for the whole test
        max_webhooks_per_tenant=0,  # one tenant with 200 subscriptions, for the idle test
    )
    built = build_services(settings, database, webhook_concurrency=limits)
    await start(built)
    await tenant_key(built, B, B)  # the second tenant
    try:
        # the default session's start-up writes (and their read-backs) are over: the idle
        # test counts every SELECT
        async with EventWatcher(built.bus) as watcher:
            default = await built.sessions.get("default", "default")
            if default.status is not SessionStatus.WORKING:
                await watcher.wait_for(status_is("default", "WORKING"))
        yield built
    finally:
        await bounded_teardown(stop(built), "services")


@asynccontextmanager
async def receivers(*targets: Receiver | DeadReceiver) -> AsyncIterator[None]:
    for target in targets:
        await target.start()
    try:
        yield
    finally:
        for target in targets:
            await target.stop()


async def subscribe(services: Services, tenant: str, url: str, **fields: Any) -> str:
    """A subscription to the events :func:`emit` commits (not the sessions' own reports)."""
    fields = {"url": url, "events": [EventType.MESSAGE_RECEIVED], **fields}
    webhook, _secret = await services.webhooks.create(tenant, fields)
    return webhook.id


async def emit(services: Services, tenant: str, session: str, count: int = 1) -> None:
    """Commit ``count`` message.received events (one transaction), as an engine report would."""

    async def job(unit: UnitOfWork) -> None:
        for index in range(count):
            payload = {
                "id": new_id("msg"),
                "n": index,
                "from": "5511988887777",
                "to": "5511999999999",
                "text": f"m{index}",
                "type": "text",
                "timestamp": now_ms(),
            }
            unit.emit(EventDraft(tenant, session, EventType.MESSAGE_RECEIVED, payload))

    await services.committer.run(job)


def session_of(request: Any) -> str:
    return str(request.json["session"])


async def test_a_slow_receiver_of_one_tenant_does_not_delay_another_tenant(
    database: AsyncEngine, tmp_path: Path
) -> None:
    slow, fast = Receiver(free_port()), Receiver(free_port())
    async with running(database, tmp_path) as services, receivers(slow, fast):
        await subscribe(services, A, slow.url)
        await subscribe(services, B, fast.url)
        slow.hold()
        await emit(services, A, "a", 3)
        await slow.wait_until(lambda r: len(r.waiting) == 1, WAIT)
        await emit(services, B, "b", 5)
        await fast.wait_until(lambda r: len(r.successes()) == 5, WAIT)
        assert slow.requests == [], "B was delivered only after A's receiver answered"
        assert len(slow.waiting) == 1
        slow.release()
        await slow.wait_until(lambda r: len(r.successes()) == 3, WAIT)
    assert [r.json["payload"]["n"] for r in fast.successes()] == [0, 1, 2, 3, 4]
    assert [r.json["payload"]["n"] for r in slow.successes()] == [0, 1, 2]


async def test_a_dead_receiver_of_one_tenant_does_not_hold_back_another_tenant(
    database: AsyncEngine, tmp_path: Path
) -> None:
    dead, alive = DeadReceiver(free_port()), Receiver(free_port())
    async with running(database, tmp_path) as services, receivers(dead, alive):
        hook = await subscribe(services, A, dead.url)
        await subscribe(services, B, alive.url)
        await emit(services, A, "a", 2)
        await dead.wait_for_connections(1, WAIT)
        await emit(services, B, "b", 3)
        await alive.wait_until(lambda r: len(r.successes()) == 3, WAIT)
        page = await services.webhooks.deliveries(A, hook, 10, None, None)
    assert [d["attempts"] for d in page] == [0, 0], "A's request ended before B was served"
    assert all(d["status"] == "pending" for d in page)


async def test_one_tenant_cannot_take_every_slot(database: AsyncEngine, tmp_path: Path) -> None:
    held, other = Receiver(free_port()), Receiver(free_port())
    limits = Concurrency(per_subscription=4, per_tenant=2, overall=3)
    async with running(database, tmp_path, limits) as services, receivers(held, other):
        for _ in range(4):
            await subscribe(services, A, held.url)
        await subscribe(services, B, other.url)
        held.hold()
        await emit(services, A, "a")  # four requests wanted, two allowed
        await held.wait_until(lambda r: len(r.waiting) == 2, WAIT)
        await emit(services, B, "b")
        await other.wait_until(lambda r: len(r.successes()) == 1, WAIT)
        assert len(held.waiting) == 2, "tenant A went beyond its share"
        held.release()
        await held.wait_until(lambda r: len(r.successes()) == 4, WAIT)
    assert held.peak() == 2


async def test_sessions_go_side_by_side_and_each_keeps_its_order(
    database: AsyncEngine, tmp_path: Path
) -> None:
    receiver = Receiver(free_port())
    limits = Concurrency(per_subscription=2, per_tenant=16, overall=64)
    async with running(database, tmp_path, limits) as services, receivers(receiver):
        hook = await subscribe(services, A, receiver.url)
        receiver.hold()
        for session in ("s1", "s2", "s3"):
            await emit(services, A, session, 4)
        await receiver.wait_until(lambda r: len(r.waiting) == 2, WAIT)
        assert len({session_of(r) for r in receiver.waiting}) == 2, "one session sent twice at once"
        receiver.answer(503)  # the first answered fails and is retried before its session goes on
        receiver.release()
        await receiver.wait_until(lambda r: len(r.successes()) == 12, WAIT)
        async with asyncio.timeout(WAIT):
            await services.dispatcher.until_quiet()  # every attempt is stored
        counts = await repository.count_by_status(services.database, A, hook)
    assert counts == {"succeeded": 12}
    assert receiver.peak() == 2, "more sessions at once than the subscription's cap"
    assert receiver.peak(session_of) == 1, "a session's next delivery did not wait"
    for session in ("s1", "s2", "s3"):
        sent = [r.json["payload"]["n"] for r in receiver.successes() if session_of(r) == session]
        assert sent == [0, 1, 2, 3], session


NOT_THE_DISPATCHERS = ("auth_invalidations", "nodes", "fallbacks")
"""Tables every node reads or writes on a timer, whatever the webhooks do: revocations and
suspensions of other nodes (every 0.25 s), the node's heartbeat and the SMS fallbacks falling
due (every second)."""


async def test_idle_workers_read_nothing_while_other_tenants_publish(
    database: AsyncEngine, tmp_path: Path
) -> None:
    receiver = Receiver(free_port())
    async with running(database, tmp_path) as services, receivers(receiver):
        idle = [subscribe(services, A, receiver.url, sessions=["idle"]) for _ in range(199)]
        await asyncio.gather(*idle)
        await subscribe(services, A, receiver.url, sessions=["control"])
        dispatcher = services.dispatcher
        async with asyncio.timeout(WAIT):
            await dispatcher.until_quiet()
        reads: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if any(other in statement for other in NOT_THE_DISPATCHERS):
                return
            if statement.lstrip().upper().startswith("SELECT") or "webhook" in statement:
                reads.append(statement)

        sa.event.listen(database.sync_engine, "before_cursor_execute", count)
        try:
            for _ in range(20):
                await emit(services, B, "b", 5)
            await emit(services, A, "other-session")  # A's own, but wanted by none
            async with asyncio.timeout(WAIT):
                await dispatcher.until_quiet()
            assert reads == [], f"{len(reads)} reads while idle, e.g. {reads[:2]}"
            await emit(services, A, "control")  # the control: one worker wakes, reads, sends
            await receiver.wait_until(lambda r: len(r.successes()) == 1, WAIT)
            assert reads, "the statement counter saw nothing: it proves nothing"
        finally:
            sa.event.remove(database.sync_engine, "before_cursor_execute", count)
        assert len(receiver.requests) == 1


async def test_workers_start_and_stop_with_their_subscriptions(
    database: AsyncEngine, tmp_path: Path
) -> None:
    receiver = Receiver(free_port())
    async with running(database, tmp_path) as services, receivers(receiver):
        dispatcher = services.dispatcher
        hook = await subscribe(services, A, receiver.url, active=False)
        async with asyncio.timeout(WAIT):
            await dispatcher.until_quiet()
        assert not dispatcher.serving(A, hook)
        await emit(services, A, "s")  # before activation: delivered when it catches up
        await services.webhooks.update(A, hook, {"active": True})
        assert dispatcher.serving(A, hook)
        await receiver.wait_until(lambda r: len(r.successes()) == 1, WAIT)
        await services.webhooks.update(A, hook, {"active": False})
        async with asyncio.timeout(WAIT):
            await dispatcher.until_quiet()
        assert not dispatcher.serving(A, hook)
        await emit(services, A, "s")
        async with asyncio.timeout(WAIT):
            await dispatcher.until_quiet()
        assert len(receiver.requests) == 1, "an inactive subscription was served"
        await services.webhooks.update(A, hook, {"active": True})
        await receiver.wait_until(lambda r: len(r.successes()) == 2, WAIT)
        await services.webhooks.delete(A, hook)
        async with asyncio.timeout(WAIT):
            await dispatcher.until_quiet()
        assert not dispatcher.serving(A, hook)


async def test_a_failing_worker_is_logged_and_restarted(
    database: AsyncEngine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = Receiver(free_port())
    real_pending = repository.pending
    failures = [RuntimeError("the database went away")]

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return await real_pending(*args, **kwargs)

    monkeypatch.setattr(dispatcher_module, "RESTART_BASE_SECONDS", 0.01)
    async with running(database, tmp_path) as services, receivers(receiver):
        hook = await subscribe(services, A, receiver.url)
        async with asyncio.timeout(WAIT):
            await services.dispatcher.until_quiet()
        monkeypatch.setattr(repository, "pending", flaky)
        with caplog.at_level(logging.ERROR, "zapgate.webhooks.dispatcher"):
            await emit(services, A, "s", 2)
            await receiver.wait_until(lambda r: len(r.successes()) == 2, WAIT)
        assert services.dispatcher.restarts == 1
        assert services.dispatcher.serving(A, hook)
    assert any("worker failed" in r.getMessage() for r in caplog.records)
    assert [r.json["payload"]["n"] for r in receiver.successes()] == [0, 1]


async def test_stop_is_prompt_and_leaves_pending_deliveries_stored(
    database: AsyncEngine, tmp_path: Path
) -> None:
    dead = DeadReceiver(free_port())
    async with running(database, tmp_path) as services, receivers(dead):
        hook = await subscribe(services, A, dead.url)
        await emit(services, A, "s", 3)
        await dead.wait_for_connections(1, WAIT)
        async with asyncio.timeout(dispatcher_module.STOP_SECONDS):
            await services.dispatcher.stop()
        assert not services.dispatcher.serving(A, hook)
        counts = await repository.count_by_status(services.database, A, hook)
    assert counts == {"pending": 3}


async def test_a_backlogged_subscription_does_not_replan_at_every_commit(
    database: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow receiver's subscription re-read the log at every commit of its tenant (CPU that
    other tenants paid for); now it plans only as its backlog drains."""
    from zapgate.webhooks import worker as worker_module

    monkeypatch.setattr(worker_module, "PLAN_AHEAD", 100)
    reads: list[int] = []
    real_read = RecentEvents.read_after

    async def counted_read(*args: Any, **kwargs: Any) -> Any:
        reads.append(1)  # a planning pass's read, from the log or the recent events
        return await real_read(*args, **kwargs)

    monkeypatch.setattr(RecentEvents, "read_after", counted_read)
    slow = Receiver(free_port())
    async with running(database, tmp_path) as services, receivers(slow):
        await subscribe(services, A, slow.url)
        slow.hold()
        await emit(services, A, "a", 110)  # over PLAN_AHEAD, and one is in flight
        await slow.wait_until(lambda r: len(r.waiting) == 1, WAIT)
        for _ in range(300):  # three hundred commits while the receiver is stuck
            await emit(services, A, "a")
        slow.release()
        await slow.wait_until(lambda r: len(r.successes()) == 410, WAIT)
    assert [r.json["payload"]["n"] for r in slow.successes()] == [*range(110), *[0] * 300]
    # About a read per half window drained (410 / 50) and per lane ending (a lane takes a scan
    # of 100), plus a few around the first and the last, more when events arrive mid-plan:
    # 5 to 17 seen. Replanning at every commit read it 301 times.
    assert len(reads) <= 30, f"the log was read {len(reads)} times for 301 commits"
