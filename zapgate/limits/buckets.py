"""Token buckets by key: a steady rate with a burst, bounded in number of keys."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_KEYS = 100_000


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one request: allowed or not, and what the client should know."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: float
    """Seconds until one token is available (0 when allowed)."""
    window: float
    """Seconds for an empty bucket to fill up again."""

    def headers(self, policy: str = "default") -> dict[str, str]:
        """The IETF ``RateLimit-Policy``/``RateLimit`` fields (and ``Retry-After`` when refused)."""
        window = max(1, math.ceil(self.window))
        reset = max(1, math.ceil(self.retry_after)) if not self.allowed else 0
        found = {
            "RateLimit-Policy": f'"{policy}";q={self.limit};w={window}',
            "RateLimit": f'"{policy}";r={self.remaining};t={reset}',
        }
        if not self.allowed:
            found["Retry-After"] = str(reset)
        return found


class TokenBuckets:
    """``take(key, rate, burst)``: a bucket per key holding up to ``burst`` tokens.

    A bucket refills at ``rate`` tokens per second; a request takes one. Buckets not used for a
    while are dropped first when there are more than ``max_keys`` (a dropped bucket is a full one,
    so the only effect is a fresh burst for a long-idle key).
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS
    ) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, rate: float, burst: int, cost: float = 1.0) -> Decision:
        """Take ``cost`` tokens from ``key``'s bucket if it has them."""
        now = self._clock()
        tokens, at = self._buckets.get(key, (float(burst), now))
        tokens = min(float(burst), tokens + (now - at) * rate)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return Decision(
            allowed=allowed,
            limit=burst,
            remaining=int(tokens),
            retry_after=0.0 if allowed else (cost - tokens) / rate,
            window=burst / rate,
        )

    def put(self, key: str, tokens: float) -> None:
        """Set ``key``'s bucket to ``tokens`` now: a copy of a count kept elsewhere (Redis)."""
        self._buckets[key] = (tokens, self._clock())
        self._buckets.move_to_end(key)
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)

    def peek(self, key: str, rate: float, burst: int) -> float:
        """Tokens ``key`` has now (without taking any)."""
        now = self._clock()
        tokens, at = self._buckets.get(key, (float(burst), now))
        return min(float(burst), tokens + (now - at) * rate)

    def __len__(self) -> int:
        return len(self._buckets)


def decision(allowed: bool, tokens: float, rate: float, burst: int, cost: float) -> Decision:
    """The answer to a request costing ``cost`` that left its bucket (``rate``/s up to
    ``burst``) with ``tokens``: what ``TokenBuckets.take`` answers, for a count kept elsewhere."""
    return Decision(
        allowed=allowed,
        limit=burst,
        remaining=int(tokens),
        retry_after=0.0 if allowed else (cost - tokens) / rate,
        window=burst / rate,
    )
