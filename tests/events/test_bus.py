"""The in-process bus: a wait for new events ends when one is published, or when cancelled."""

from __future__ import annotations

import asyncio

import pytest

from zapgate.events.bus import EventBus
from zapgate.events.model import EventDraft


def published(bus: EventBus, seq: int) -> None:
    bus.publish([EventDraft("default", None, "session.status", {}).placed(seq)])


async def test_a_wait_ends_when_a_later_event_is_published() -> None:
    bus = EventBus()
    waiting = asyncio.create_task(bus.wait_beyond("default", 0, 60))
    await asyncio.sleep(0)  # one loop turn: the waiter is parked on the bus
    published(bus, 1)
    async with asyncio.timeout(10):
        assert await waiting is True


async def test_a_cancelled_wait_ends_cancelled_even_when_an_event_arrives_at_that_moment() -> None:
    """A long-poll cancelled (client gone, server stopping) in the very loop turn an event
    arrives must end, not carry on: ``asyncio.wait_for`` on Python 3.11 returned the wait's
    result and dropped the cancellation (CPython gh-86296)."""
    bus = EventBus()
    waiting = asyncio.create_task(bus.wait_beyond("default", 0, 60))
    await asyncio.sleep(0)  # one loop turn: the waiter is parked on the bus
    published(bus, 1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
