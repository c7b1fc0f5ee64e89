"""The event log as Server-Sent Events: ``id`` is the seq; clients resume with Last-Event-ID."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.events import repository
from zapgate.events.bus import EventBus
from zapgate.events.model import Event

PAGE = 500
PAGE_BYTES = 1_048_576
"""A page (of the JSON API, a long-poll or a stream) holds at most this much payload, however
big its events, and at least one event."""
KEEPALIVE_SECONDS = 15.0
GONE_CHECK_SECONDS = 2.0
"""How often a quiet stream checks that its client is still there (its slot is freed then)."""


def frame(event: Event) -> bytes:
    """One SSE frame."""
    data = event.envelope_json()
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.seq, event.type.encode(), data)


async def stream(
    database: AsyncEngine,
    bus: EventBus,
    tenant: str,
    after: int,
    session: str | frozenset[str] | None,
    gone: Callable[[], Awaitable[bool]],
) -> AsyncIterator[bytes]:
    """Frames of events after ``after``, then live ones, until ``gone()``."""
    yield b"retry: 3000\n\n"
    cursor = after
    quiet = 0.0
    while True:
        mark = bus.interruptions(tenant)  # before the check: an interruption after it ends a wait
        if await gone():
            return
        newest = bus.latest(tenant)
        page = await repository.read_after(database, tenant, cursor, PAGE, session, PAGE_BYTES)
        for event in page:
            yield frame(event)
            cursor = event.seq
        if page and cursor < bus.latest(tenant):
            continue  # a full page (of events or bytes): more may follow at once
        if await bus.wait_beyond(tenant, max(newest, cursor), GONE_CHECK_SECONDS, mark):
            quiet = 0.0
            continue
        quiet += GONE_CHECK_SECONDS
        if quiet >= KEEPALIVE_SECONDS:
            quiet = 0.0
            yield b": keep-alive\n\n"


async def long_poll(
    database: AsyncEngine,
    bus: EventBus,
    tenant: str,
    after: int,
    limit: int,
    session: str | frozenset[str] | None,
    wait: float,
    gone: Callable[[], Awaitable[bool]],
) -> list[Event]:
    """Events after ``after``, waiting up to ``wait`` seconds for the first (until ``gone()``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    seen = after
    mark = bus.interruptions(tenant)  # an interruption from now ends a wait; then gone() decides
    if await gone():
        return []
    events = await repository.read_after(database, tenant, after, limit, session, PAGE_BYTES)
    while not events and loop.time() < deadline:
        slice_seconds = min(GONE_CHECK_SECONDS, deadline - loop.time())
        if not await bus.wait_beyond(tenant, seen, slice_seconds, mark):
            mark = bus.interruptions(tenant)
            if await gone():
                break
            continue
        seen = bus.latest(tenant)
        events = await repository.read_after(database, tenant, after, limit, session, PAGE_BYTES)
    return events
