"""Stopping the dispatcher: it ends even when work arrives in the same moment.

The stall once seen in about one full test run in three: a commit woke the idle dispatcher in
the loop turn its stop cancelled it, ``asyncio.wait_for`` (Python 3.11, CPython gh-86296)
returned the wake-up and dropped the cancellation, and the dispatcher went on for ever. The
workers now wait with ``asyncio.timeout``, and ruff bans ``asyncio.wait_for`` (TID251).
"""

from __future__ import annotations

import asyncio

from zapgate.services import Services

STOP_SECONDS = 10.0  # a stop takes milliseconds; this only turns a hang into a failure


async def test_stop_ends_the_dispatcher_even_when_woken_at_that_moment(services: Services) -> None:
    created, _secret = await services.webhooks.create(
        "default", {"url": "https://example.com/hook", "events": []}
    )
    dispatcher = services.dispatcher
    async with asyncio.timeout(STOP_SECONDS):
        while not dispatcher.serving("default", created.id):
            await asyncio.sleep(0.01)
        await dispatcher.until_quiet()  # its worker rests, waiting to be woken
    dispatcher.wake("default", created.id)  # woken and stopped in the same loop turn
    async with asyncio.timeout(STOP_SECONDS):
        await dispatcher.stop()
    assert not dispatcher.serving("default", created.id)
