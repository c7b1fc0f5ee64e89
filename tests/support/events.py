"""Await events deterministically: subscribe to the bus before acting, then wait for a match."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import Self

from zapgate.events.bus import EventBus
from zapgate.events.model import Event

Predicate = Callable[[Event], bool]


class EventWatcher:
    """Collects every event published while it is open."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self.seen: list[Event] = []
        self._unsubscribe: Callable[[], None] | None = None

    async def __aenter__(self) -> Self:
        self._unsubscribe = self._bus.subscribe(self._take)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def _take(self, events: list[Event]) -> None:
        for event in events:
            self._queue.put_nowait(event)

    async def wait_for(self, predicate: Predicate, timeout: float = 5.0) -> Event:
        """The first event (seen before or arriving later) that matches ``predicate``."""
        for event in self.seen:
            if predicate(event):
                return event
        async with asyncio.timeout(timeout):
            while True:
                event = await self._queue.get()
                self.seen.append(event)
                if predicate(event):
                    return event


def message_status(message_id: str, status: str) -> Predicate:
    """Matches the event that moves ``message_id`` to ``status``."""
    return lambda e: e.payload.get("id") == message_id and e.payload.get("status") == status


def of_type(event_type: str, session: str | None = None) -> Predicate:
    """Matches events of a type (and session)."""
    return lambda e: e.type == event_type and (session is None or e.session == session)


def status_is(session: str, status: str) -> Predicate:
    """Matches the ``session.status`` event that moves ``session`` to ``status``."""
    return lambda e: (
        e.type == "session.status" and e.session == session and e.payload["status"] == status
    )
