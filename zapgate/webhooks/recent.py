"""Recent events of each tenant, read once for all of its subscriptions' workers.

Every subscription of a tenant reads the same stretch of the log: a hundred subscriptions
behind by the same events read and decode each event a hundred times. :class:`RecentEvents`
keeps, per tenant, one *run*: a range of seqs ``(low, high]`` known to be complete (every
committed event in it is held, unless retention deleted it since), fed by the pages workers
read from the log and by the bus's committed batches. A read after a cursor inside the run is
answered from it; the event objects are shared, so each envelope is also encoded once.

A page answered from the run ends at ``high``, the newest seq this process has read or seen
published: like a worker's own events from the bus, it does not see what another process
committed and this one's bus did not publish, until the next read of the log (a page that
starts at or beyond ``high``). Only whole events (with payloads) are kept. Per-process state:
several nodes each keep their own.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.events import repository as event_log
from zapgate.events.model import Event

CAPACITY = 20_000
"""Events kept in all (tenants together); the least recently used tenant's run goes first."""
RUN_MAX = 5_000
"""Events kept per tenant; beyond, the oldest go."""


class _Run:
    """A complete range ``(low, high]`` of one tenant's events."""

    __slots__ = ("by_id", "by_seq", "high", "low", "tip")

    def __init__(self, low: int, high: int, tip: bool) -> None:
        self.low = low
        self.high = high
        self.tip = tip
        """Whether ``high`` is the newest seq this process knows of (published, or the end of
        the log when it was read); not so after a full page read from the log."""
        self.by_seq: dict[int, Event] = {}
        self.by_id: dict[str, Event] = {}

    def add(self, events: list[Event]) -> None:
        for event in events:
            if event.seq not in self.by_seq:
                self.by_seq[event.seq] = event
                self.by_id[event.id] = event

    def page(self, after: int, limit: int) -> list[Event]:
        """Events after ``after`` up to ``limit`` of them, or up to ``high``."""
        found: list[Event] = []
        seq = after
        while seq < self.high and len(found) < limit:
            seq += 1
            event = self.by_seq.get(seq)
            if event is not None:
                found.append(event)
        return found

    def trim(self, keep: int) -> int:
        """Drop the oldest events beyond ``keep``; returns how many went.

        The run holds every seq of ``(low, high]`` (but those retention deleted), so the oldest
        are found by moving ``low`` up, not by sorting the run at every merge.
        """
        dropped = 0
        while len(self.by_seq) > keep:
            self.low += 1
            event = self.by_seq.pop(self.low, None)
            if event is not None:
                del self.by_id[event.id]
                dropped += 1
        return dropped


class RecentEvents:
    """Reads a tenant's log for its workers, keeping what was read (see the module)."""

    def __init__(self, database: AsyncEngine, capacity: int = CAPACITY, run_max: int = RUN_MAX):
        self._database = database
        self._capacity = capacity
        self._run_max = run_max
        self._runs: OrderedDict[str, _Run] = OrderedDict()
        self._size = 0
        self.log_reads = 0
        """Pages read from the log (tests, bench)."""

    async def read_after(self, tenant: str, after: int, limit: int) -> list[Event]:
        """Like :func:`zapgate.events.repository.read_after`, from the run when it covers
        ``after``."""
        run = self._runs.get(tenant)
        if run is None or not run.low <= after < run.high:
            return await self._read_log(tenant, after, limit)
        self._runs.move_to_end(tenant)
        page = run.page(after, limit)
        if len(page) < limit and not run.tip:  # the log goes on past the run: read on
            page += await self._read_log(tenant, run.high, limit - len(page))
        return page

    async def _read_log(self, tenant: str, after: int, limit: int) -> list[Event]:
        self.log_reads += 1
        page = await event_log.read_after(self._database, tenant, after, limit)
        if page:
            self._merge(tenant, after, page[-1].seq, page, tip=len(page) < limit)
        else:
            run = self._runs.get(tenant)
            if run is not None and run.high == after:
                run.tip = True  # nothing after it: the end of the log
        return page

    async def by_ids(self, tenant: str, event_ids: Collection[str]) -> list[Event]:
        """Like :func:`zapgate.events.repository.by_ids`: the run's, then the log's."""
        run = self._runs.get(tenant)
        held = [run.by_id[i] for i in event_ids if i in run.by_id] if run is not None else []
        missing = set(event_ids) - {event.id for event in held}
        if missing:
            held += await event_log.by_ids(self._database, tenant, missing)
        return held

    def published(self, tenant: str, events: list[Event]) -> None:
        """Committed events of ``tenant``, in seq order (the bus's batch)."""
        if events:
            self._merge(tenant, events[0].seq - 1, events[-1].seq, events, tip=True)

    def forget(self, tenant: str) -> None:
        """Drop the tenant's run (no worker of it is left)."""
        run = self._runs.pop(tenant, None)
        if run is not None:
            self._size -= len(run.by_seq)

    def _merge(self, tenant: str, low: int, high: int, events: list[Event], tip: bool) -> None:
        """Events making the complete range ``(low, high]``: join the run they touch, replace
        a run they are newer than, and leave a run they are older than alone.

        The run's ``high`` must stay the newest seq this process read or saw published: a page
        from the run ends there, and a worker takes a short page for "caught up". Replacing it
        with an older stretch read by a worker far behind (after a restart) made the others
        stop at that stretch's end for good. For the same reason a run that ends with a full
        page read from the log (``tip`` false) is read on from the log when a page reaches its
        end: a subscription turned on behind a backlog stopped after its first page.
        """
        run = self._runs.get(tenant)
        if run is not None and high < run.low:
            return  # older than the run and apart from it: kept out, so the run stays the newest
        if run is None or low > run.high:
            self.forget(tenant)
            run = self._runs[tenant] = _Run(low, high, tip)
        else:
            self._runs.move_to_end(tenant)
            if high > run.high:
                run.tip = tip
            elif high == run.high:
                run.tip = run.tip or tip
            run.low, run.high = min(run.low, low), max(run.high, high)
        before = len(run.by_seq)
        run.add(events)
        self._size += len(run.by_seq) - before
        self._size -= run.trim(self._run_max)
        while self._size > self._capacity and len(self._runs) > 1:
            self.forget(next(iter(self._runs)))
