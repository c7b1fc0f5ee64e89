"""In-process event bus: tells consumers that events were committed, and wakes long-pollers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from zapgate.events.model import Event

Listener = Callable[[list[Event]], None]
log = logging.getLogger(__name__)


class EventBus:
    """Fan-out of committed events; losing a notification loses nothing (the log has it).

    Cluster mode makes it ``ordered``: several nodes write one tenant's log, so this node's
    committer may publish seq 12 before this node has read seq 11 (written elsewhere). An
    ordered bus passes each tenant's events on strictly in seq order, once each: an event already
    announced is dropped, and one after a gap is held back and the gap reported to ``on_gap``
    (the cluster's event tail reads the log from ``latest`` and publishes the missing ones, and
    these again, in order).
    """

    def __init__(self, ordered: bool = False) -> None:
        self._listeners: list[Listener] = []
        self._latest: dict[str, int] = {}
        self._changed = asyncio.Event()
        self._interruptions: dict[str, int] = {}
        self._ordered = ordered
        self.on_gap: Callable[[str], None] | None = None

    def start_at(self, seqs: dict[str, int]) -> None:
        """The newest seq of each tenant already in the log (an ordered bus passes on the next
        ones, not the history)."""
        for tenant, seq in seqs.items():
            self._latest[tenant] = max(self._latest.get(tenant, 0), seq)

    def restart(self, tenant: str) -> None:
        """``tenant`` was deleted: a tenant made again with its id counts from seq 1."""
        self._latest.pop(tenant, None)

    def all_latest(self) -> dict[str, int]:
        """The newest seq seen of every tenant (a copy)."""
        return dict(self._latest)

    def interrupt(self, tenant: str) -> None:
        """End every ``wait_beyond`` of ``tenant`` now (it answers False), so its waiters
        re-check why they wait (a revoked key's streams end at once instead of at their next
        check); other tenants' waiters wake and wait on, without a query."""
        self._interruptions[tenant] = self._interruptions.get(tenant, 0) + 1
        self._changed.set()
        self._changed = asyncio.Event()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with each committed batch (in commit order); returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def publish(self, events: list[Event], whole: bool = False) -> None:
        """Announce events that are already committed; ``whole`` when they are every event in
        the log after each tenant's ``latest`` up to the last of them (read from the log: a gap
        among them is one retention made, not one to wait for)."""
        if self._ordered:
            events = self._in_order(events, whole)
        if not events:
            return
        for event in events:
            if event.seq > self._latest.get(event.tenant, 0):
                self._latest[event.tenant] = event.seq
        for listener in list(self._listeners):
            try:
                listener(events)
            except Exception:
                log.exception("event listener failed")
        self._changed.set()
        self._changed = asyncio.Event()

    def _in_order(self, events: list[Event], whole: bool) -> list[Event]:
        """The events that continue each tenant's sequence; a gap is reported, not passed on."""
        kept: list[Event] = []
        behind: set[str] = set()
        expected = dict(self._latest)
        for event in events:
            last = expected.get(event.tenant, 0)
            if event.seq <= last:
                continue  # announced already (read from the log before its writer published)
            if (event.seq == last + 1 or whole) and event.tenant not in behind:
                kept.append(event)
                expected[event.tenant] = event.seq
            else:
                behind.add(event.tenant)
        if self.on_gap is not None:
            for tenant in sorted(behind):
                self.on_gap(tenant)
        return kept

    def interruptions(self, tenant: str) -> int:
        """How many times ``interrupt`` was called for ``tenant``: a waiter notes it before it
        checks why it waits, so an interruption between the check and the wait is not missed."""
        return self._interruptions.get(tenant, 0)

    def latest(self, tenant: str) -> int:
        """The newest seq this process has seen for ``tenant``."""
        return self._latest.get(tenant, 0)

    async def wait_beyond(
        self, tenant: str, seq: int, seconds: float, interruptions: int | None = None
    ) -> bool:
        """Wait until ``tenant`` has an event after ``seq``; False on timeout or on an
        interruption since ``interruptions`` (by default: since now)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        if interruptions is None:
            interruptions = self.interruptions(tenant)
        while self.latest(tenant) <= seq:
            if self.interruptions(tenant) != interruptions:
                return False
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                async with asyncio.timeout(remaining):
                    await self._changed.wait()
            except TimeoutError:
                return False
        return True
