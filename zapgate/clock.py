"""Time: epoch ms in storage, ISO 8601 (UTC, ``Z``) on the wire, and an injectable clock."""

from __future__ import annotations

import asyncio
import heapq
import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Protocol


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", None)


def monotonic_ms() -> int:
    """A monotonic clock in milliseconds (durations, never wall time) that keeps counting while
    the machine is suspended (Linux's boot time; elsewhere the monotonic clock): how long a node
    may trust a lease must include any time it was frozen."""
    if _BOOTTIME is not None:
        return time.clock_gettime_ns(_BOOTTIME) // 1_000_000
    return time.monotonic_ns() // 1_000_000


@lru_cache(maxsize=256)
def _second_prefix(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def to_iso(ms: int) -> str:
    """``2026-11-30T12:00:00.123Z``."""
    seconds, millis = divmod(ms, 1000)
    return f"{_second_prefix(seconds)}.{millis:03d}Z"


def from_datetime(value: datetime) -> int:
    """Epoch milliseconds of an aware (or UTC-naive) datetime."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


class Clock(Protocol):
    """Monotonic time and sleeping, injectable so tests need no long sleeps."""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0))


class ManualClock:
    """A clock that moves only when told to (tests): ``advance`` wakes the sleepers due."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = 0
        self._new_sleeper = asyncio.Event()

    def monotonic(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._counter += 1
        heapq.heappush(self._sleepers, (self._now + seconds, self._counter, future))
        self._new_sleeper.set()
        await future

    @property
    def sleepers(self) -> int:
        """How many sleeps are pending."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    async def until_sleeping(self, count: int) -> None:
        """Return once at least ``count`` sleeps are pending (wrap in a timeout)."""
        while self.sleepers < count:
            self._new_sleeper.clear()
            await self._new_sleeper.wait()

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has passed."""
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
