"""The pause before a refusal for being over a limit.

A client that retries at once, as floods do, then gets one or two answers a second per
connection instead of as many as the server can produce, and the pause costs no CPU. It lasts
the advertised ``Retry-After`` (whole seconds, at least 1; at most ``TARPIT_SECONDS``), jittered
so that requests refused together do not come back together. A client that honours
``Retry-After`` loses nothing: it would have waited that long anyway.
"""

from __future__ import annotations

import asyncio
import math
import random

TARPIT_SECONDS = 1.0
_jitter = random.Random()


async def pause_before_refusal(retry_after: float = TARPIT_SECONDS) -> None:
    """Sleep before answering a request refused for being over a limit."""
    pause = min(max(1.0, math.ceil(retry_after)), TARPIT_SECONDS)
    await asyncio.sleep(pause * _jitter.uniform(0.5, 1.0))
