"""Requests in progress per key: beyond the limit a request waits its turn (FIFO) before it runs.

A waiting request costs no CPU, so one key's burst can never fill the event loop: whatever it
sends, at most ``limit`` of its requests run at once beside everyone else's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class KeyConcurrency:
    """A FIFO semaphore per key, created on demand and dropped when nobody holds or waits."""

    def __init__(self) -> None:
        self._keys: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @asynccontextmanager
    async def turn(self, key: str, limit: int) -> AsyncIterator[None]:
        """Run the body as one of ``key``'s at most ``limit`` requests (0: no limit)."""
        if not limit:
            yield
            return
        semaphore, users = self._keys.get(key, (asyncio.Semaphore(limit), 0))
        self._keys[key] = (semaphore, users + 1)
        try:
            async with semaphore:
                yield
        finally:
            semaphore, users = self._keys[key]
            if users <= 1:
                del self._keys[key]
            else:
                self._keys[key] = (semaphore, users - 1)

    def running_or_waiting(self, key: str) -> int:
        """How many requests of ``key`` run or wait."""
        return self._keys.get(key, (None, 0))[1]
