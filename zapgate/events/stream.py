"""The event log as Server-Sent Events: ``id`` is the seq; clients resume with Last-Event-ID."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.events import repository
from zapgate.events.bus import EventBus
from zapgate.events.model import Event

PAGE = 500
KEEPALIVE_SECONDS = 15.0


def frame(event: Event) -> bytes:
    """One SSE frame."""
    data = orjson.dumps(event.envelope())
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.seq, event.type.encode(), data)


async def stream(
    database: AsyncEngine,
    bus: EventBus,
    tenant: str,
    after: int,
    session: str | None,
    gone: Callable[[], Awaitable[bool]],
) -> AsyncIterator[bytes]:
    """Frames of events after ``after``, then live ones, until ``gone()``."""
    yield b"retry: 3000\n\n"
    cursor = after
    while not await gone():
        newest = bus.latest(tenant)
        page = await repository.read_after(database, tenant, cursor, PAGE, session)
        for event in page:
            yield frame(event)
            cursor = event.seq
        if len(page) == PAGE:
            continue
        if not await bus.wait_beyond(tenant, max(newest, cursor), KEEPALIVE_SECONDS):
            yield b": keep-alive\n\n"
