"""Time in one place: epoch milliseconds in storage, ISO 8601 (UTC, ``Z``) on the wire."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import lru_cache


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


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
