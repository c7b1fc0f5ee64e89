"""Background tasks: waking them, and stopping them."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel ``tasks`` (None ones are skipped) and return once every one has ended; what they
    raise is not raised here (a stopping task has logged its own failure, or it no longer
    matters)."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)


async def woken_or_after(woken: asyncio.Event, seconds: float) -> None:
    """Return once ``woken`` is set or ``seconds`` have passed, with ``woken`` cleared (a loop
    that looks at a pace, and at once when asked)."""
    try:
        async with asyncio.timeout(max(0.0, seconds)):
            await woken.wait()
    except TimeoutError:
        pass
    woken.clear()
