"""Background tasks: stopping them."""

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
