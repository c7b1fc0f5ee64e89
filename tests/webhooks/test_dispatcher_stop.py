"""Stopping the dispatcher: it ends even when work arrives in the same moment."""

from __future__ import annotations

import asyncio
from typing import Literal

from zapgate.services import Services
from zapgate.webhooks.client import WebhookClient
from zapgate.webhooks.dispatcher import Dispatcher, RetryPlan
from zapgate.webhooks.ssrf import Allowlist

STOP_SECONDS = 10.0  # a stop takes milliseconds; this only turns a hang into a failure


class WaitedOn(asyncio.Event):
    """An event that tells when someone starts waiting on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waited_on = asyncio.Event()

    async def wait(self) -> Literal[True]:
        self.waited_on.set()
        return await super().wait()


async def test_stop_ends_the_dispatcher_even_when_woken_at_that_moment(services: Services) -> None:
    """The stall seen in about one full test run in three: a commit woke the idle dispatcher
    in the loop turn its stop cancelled it, ``asyncio.wait_for`` (Python 3.11) returned the
    wake-up and dropped the cancellation, and the dispatcher went on polling for ever."""
    dispatcher = Dispatcher(
        services.database,
        services.committer,
        services.bus,
        WebhookClient(Allowlist(), timeout_seconds=5),
        RetryPlan(schedule=(0.0,), disable_after=1),
    )
    dispatcher._wake = wake = WaitedOn()  # to know when the dispatcher idles
    await dispatcher.start()
    await wake.waited_on.wait()
    dispatcher.wake()
    async with asyncio.timeout(STOP_SECONDS):
        await dispatcher.stop()
