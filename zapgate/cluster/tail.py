"""Cluster mode: every node's bus gets every tenant's events, in seq order, from the log.

A node's committer publishes the events it wrote; events written on other nodes reach this
node's bus (and so its Socket.IO rooms, SSE streams, long-polls and webhook workers) through
the tail, which reads them from the database by seq, so no event is lost or repeated:

- after a commit, the writer announces each tenant's newest seq through Redis (a wake-up, not
  the event: a lost one costs latency only);
- a node that hears of a seq beyond its bus's, or whose bus met a gap (see ``EventBus``),
  reads the log from its bus's seq on and publishes what it finds, in order;
- every ``POLL_SECONDS`` it also compares each tenant's newest seq in the database with its
  bus's, so events still arrive while Redis is away.

Seqs of one tenant commit in order (``tenants.advance_seq`` locks the tenant's row), so reading
"after the newest seq seen" never skips one committed later with a smaller seq.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.cluster.signals import WakeSignals
from zapgate.events import repository as event_log
from zapgate.events.bus import EventBus
from zapgate.events.model import Event
from zapgate.events.stream import PAGE_BYTES
from zapgate.tasks import cancel_and_wait, woken_or_after

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0
PAGE = 500
RETRY_SECONDS = 1.0


class EventTail:
    """Reads other nodes' events into this node's bus; see the module."""

    def __init__(
        self,
        database: AsyncEngine,
        bus: EventBus,
        signals: WakeSignals,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._database = database
        self._bus = bus
        self._signals = signals
        self._poll_seconds = poll_seconds
        self._behind: set[str] = set()
        self._woken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.reads = 0
        """Pages read from the log (tests and the bench)."""

    async def start(self) -> None:
        """Start from the log's newest seqs (before anything is published), then follow."""
        self._bus.start_at(await event_log.all_tenants_last_seqs(self._database))
        self._bus.on_gap = self.behind
        self._signals.on_seq = self.heard
        self._task = asyncio.create_task(self._loop(), name="zapgate-event-tail")

    async def stop(self) -> None:
        self._bus.on_gap = None
        await cancel_and_wait(self._task)
        self._task = None

    def committed(self, events: list[Event]) -> None:
        """This node committed ``events``: tell the other nodes each tenant's newest seq."""
        newest: dict[str, int] = {}
        for event in events:
            newest[event.tenant] = max(newest.get(event.tenant, 0), event.seq)
        for tenant, seq in newest.items():
            self._signals.publish_seq(tenant, seq)

    def heard(self, tenant: str, seq: int) -> None:
        """Another node committed ``tenant``'s events up to ``seq``."""
        if seq > self._bus.latest(tenant):
            self.behind(tenant)

    def behind(self, tenant: str) -> None:
        """This node's bus lacks events of ``tenant``: read them."""
        self._behind.add(tenant)
        self._woken.set()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_poll = loop.time() + self._poll_seconds
        while True:
            await woken_or_after(self._woken, next_poll - loop.time())
            try:
                if loop.time() >= next_poll:
                    next_poll = loop.time() + self._poll_seconds
                    await self._compare()
                while self._behind:
                    await self._catch_up(self._behind.pop())
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is away: read again at the next poll
                log.exception("could not read other nodes' events; retrying")
                await asyncio.sleep(RETRY_SECONDS)

    async def _compare(self) -> None:
        """Find the tenants whose log is ahead of the bus, and those deleted since."""
        seen = self._bus.all_latest()  # before the read: all of it was committed by then
        newest = await event_log.all_tenants_last_seqs(self._database)
        for tenant, seq in seen.items():
            if newest.get(tenant, -1) < seq:  # deleted (and perhaps made again: from seq 1)
                self._bus.restart(tenant)
        for tenant, seq in newest.items():
            if seq > self._bus.latest(tenant):
                self._behind.add(tenant)

    async def _catch_up(self, tenant: str) -> None:
        """Publish ``tenant``'s events after the bus's newest, page by page."""
        try:
            while True:
                after = self._bus.latest(tenant)
                page = await event_log.read_after(
                    self._database, tenant, after, PAGE, None, PAGE_BYTES
                )
                self.reads += 1
                if not page:
                    return
                self._bus.publish(page, whole=True)
        except BaseException:
            self._behind.add(tenant)  # read it again next time
            raise
