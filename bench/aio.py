"""``bounded(awaitable, seconds)``: ``asyncio.wait_for`` without its Python 3.11 flaw (it can
drop a cancel that lands as the awaited thing finishes, CPython gh-86296)."""

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def bounded(awaitable: Awaitable[T], seconds: float | None) -> T:
    """Await ``awaitable`` for at most ``seconds``; TimeoutError after that."""
    async with asyncio.timeout(seconds):
        return await awaitable
