"""In-process event bus: tells consumers that events were committed, and wakes long-pollers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from zapgate.events.model import Event

Listener = Callable[[list[Event]], None]
log = logging.getLogger(__name__)


class EventBus:
    """Fan-out of committed events; losing a notification loses nothing (the log has it)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._latest: dict[str, int] = {}
        self._changed = asyncio.Event()
        self._interruptions: dict[str, int] = {}

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

    def publish(self, events: list[Event]) -> None:
        """Announce events that are already committed."""
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
