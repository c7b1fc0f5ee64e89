"""A tenant's recent events are read from the log once for all its subscriptions, and a page
answered from memory is exactly the page the log would give: nothing skipped, nothing twice."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import free_port
from tests.support.receiver import Receiver
from tests.webhooks.test_fairness import WAIT, A, emit, receivers, running, subscribe
from zapgate.events.model import Event, EventType
from zapgate.webhooks import recent as recent_module
from zapgate.webhooks import worker as worker_module
from zapgate.webhooks.recent import RecentEvents

T = "t1"


def event(seq: int, tenant: str = T) -> Event:
    return Event(f"evt_{tenant}_{seq}", seq, tenant, "s", EventType.MESSAGE_RECEIVED, {}, seq)


class FakeLog:
    """The log's two reads over a list of events, counted."""

    def __init__(self, events: list[Event]) -> None:
        self.events = events
        self.reads = 0
        self.id_reads: list[set[str]] = []

    async def read_after(self, _db: Any, tenant: str, after: int, limit: int) -> list[Event]:
        self.reads += 1
        return [e for e in self.events if e.tenant == tenant and e.seq > after][:limit]

    async def by_ids(self, _db: Any, tenant: str, ids: Collection[str]) -> list[Event]:
        self.id_reads.append(set(ids))
        return [e for e in self.events if e.tenant == tenant and e.id in ids]


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> FakeLog:
    fake = FakeLog([event(seq) for seq in range(1, 301)])
    monkeypatch.setattr(recent_module.event_log, "read_after", fake.read_after)
    monkeypatch.setattr(recent_module.event_log, "by_ids", fake.by_ids)
    return fake


def seqs(events: list[Event]) -> list[int]:
    return [e.seq for e in events]


async def read_all(recent: RecentEvents, after: int, limit: int) -> list[int]:
    """Every seq after ``after``, page by page, as a worker plans them."""
    found: list[int] = []
    while page := await recent.read_after(T, after, limit):
        found += seqs(page)
        after = page[-1].seq
    return found


async def test_subscriptions_reading_the_same_pages_read_the_log_once(log: FakeLog) -> None:
    recent = RecentEvents(None)  # type: ignore[arg-type]  # the log is faked
    first = await recent.read_after(T, 0, 100)
    for _ in range(99):
        assert await recent.read_after(T, 0, 100) == first
    assert log.reads == 1
    assert all(a is b for a, b in zip(first, await recent.read_after(T, 0, 100), strict=True))


@pytest.mark.parametrize("start", [0, 1, 37, 99, 100, 150, 299])
async def test_pages_from_memory_are_the_logs_pages(log: FakeLog, start: int) -> None:
    recent = RecentEvents(None)  # type: ignore[arg-type]
    await recent.read_after(T, 50, 100)  # a run (50, 150] from another subscription's read
    assert await read_all(recent, start, 30) == list(range(start + 1, 301))


async def test_published_batches_extend_the_run_and_a_gap_replaces_it(log: FakeLog) -> None:
    recent = RecentEvents(None)  # type: ignore[arg-type]
    await recent.read_after(T, 0, 10)  # run (0, 10]
    recent.published(T, [event(11), event(12)])  # adjoins: (0, 12]
    reads = log.reads
    assert seqs(await recent.read_after(T, 5, 100)) == list(range(6, 13))
    assert log.reads == reads, "a page inside the run read the log"
    recent.published(T, [event(20)])  # a gap (13-19 not seen): the run is now (19, 20]
    assert seqs(await recent.read_after(T, 12, 3)) == [13, 14, 15]  # from the log
    assert log.reads == reads + 1


async def test_an_older_stretch_read_late_never_hides_the_newer_events(log: FakeLog) -> None:
    """After a restart: the bus publishes the newest events while workers far behind read old
    stretches of the log. A page is short only where the newest event seen is."""
    recent = RecentEvents(None)  # type: ignore[arg-type]
    recent.published(T, [event(seq) for seq in range(290, 301)])
    assert seqs(await recent.read_after(T, 100, 100)) == list(range(101, 201))
    assert seqs(await recent.read_after(T, 150, 100)) == list(range(151, 251))
    assert await read_all(recent, 150, 100) == list(range(151, 301))


async def test_an_evicted_stretch_is_read_from_the_log_again(log: FakeLog) -> None:
    recent = RecentEvents(None, capacity=1000, run_max=40)  # type: ignore[arg-type]
    assert await read_all(recent, 0, 25) == list(range(1, 301))
    reads = log.reads
    assert await read_all(recent, 0, 25) == list(range(1, 301))  # nothing lost, nothing twice
    assert log.reads > reads


async def test_the_least_recently_used_tenant_goes_first(log: FakeLog) -> None:
    log.events += [event(seq, "t2") for seq in range(1, 11)]
    recent = RecentEvents(None, capacity=15)  # type: ignore[arg-type]
    await recent.read_after(T, 0, 10)
    await recent.read_after("t2", 0, 10)  # 20 held: t1's run goes
    reads = log.reads
    await recent.read_after("t2", 0, 10)
    assert log.reads == reads
    await recent.read_after(T, 0, 10)
    assert log.reads == reads + 1


async def test_bodies_come_from_the_run_and_the_rest_from_the_log(log: FakeLog) -> None:
    recent = RecentEvents(None)  # type: ignore[arg-type]
    await recent.read_after(T, 0, 10)
    found = await recent.by_ids(T, ["evt_t1_3", "evt_t1_200", "evt_t1_999"])
    assert sorted(seqs(found)) == [3, 200]
    assert log.id_reads == [{"evt_t1_200", "evt_t1_999"}]


async def test_many_subscriptions_drain_a_backlog_once_each_in_order(
    database: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twelve subscriptions behind by the same events (more than a planning window): each
    receives every event once, in order per session, while the log is read a few times for
    all of them, not a few times each."""
    reads: list[int] = []
    real_read = recent_module.event_log.read_after

    async def counted_read(*args: Any, **kwargs: Any) -> Any:
        reads.append(1)
        return await real_read(*args, **kwargs)

    monkeypatch.setattr(recent_module.event_log, "read_after", counted_read)
    count = worker_module.PLAN_AHEAD * 3 + 7
    targets = [Receiver(free_port()) for _ in range(12)]
    async with running(database, tmp_path) as services, receivers(*targets):
        for target in targets:
            await subscribe(services, A, target.url)
            target.hold()  # the outage: the first deliveries wait, the rest stay in the log
        await emit(services, A, "a", count)
        await emit(services, A, "b", count)
        for target in targets:
            await target.wait_until(lambda r: len(r.waiting) >= 1, WAIT)
        for target in targets:
            target.release()
        for target in targets:
            await target.wait_until(lambda r: len(r.successes()) == 2 * count, WAIT)
    for target in targets:
        ids = [r.headers["webhook-id"] for r in target.successes()]
        assert len(set(ids)) == len(ids), "an event was delivered twice"
        for session in ("a", "b"):
            got = [
                r.json["payload"]["n"] for r in target.successes() if r.json["session"] == session
            ]
            assert got == list(range(count)), session
    assert len(reads) < 4 * len(targets), f"the log was read {len(reads)} times"
