"""Cluster mode: a Redis subscription that outlives Redis restarts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

log = logging.getLogger(__name__)
RETRY_SECONDS = 1.0

Subscribe = Callable[[], Awaitable[aioredis.client.PubSub]]
Handle = Callable[[dict[str, Any]], None]


async def listen(
    subscription: aioredis.client.PubSub, subscribe: Subscribe, handle: Handle, what: str
) -> None:
    """Pass every message of ``subscription`` to ``handle``, for ever: when Redis goes away,
    wait ``RETRY_SECONDS`` and ``subscribe()`` again, until it is back. (What was published
    meanwhile is lost: each subscriber has a database fallback.)"""
    current: aioredis.client.PubSub | None = subscription
    while True:
        try:
            if current is None:
                current = await subscribe()
            async for message in current.listen():
                handle(message)
            # listen() ends, without waiting, once nothing is subscribed: never loop on it
            raise ConnectionError("the Redis subscription ended")
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("Redis %s interrupted (%s); retrying", what, type(error).__name__)
            if current is not None:
                with contextlib.suppress(Exception):
                    await current.aclose()  # type: ignore[no-untyped-call]
                current = None
            await asyncio.sleep(RETRY_SECONDS)
