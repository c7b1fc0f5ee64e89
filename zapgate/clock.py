"""Time in one place: epoch milliseconds in storage, ISO 8601 (UTC, ``Z``) on the wire."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def to_iso(ms: int) -> str:
    """``2026-11-30T12:00:00.123Z``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def from_datetime(value: datetime) -> int:
    """Epoch milliseconds of an aware (or UTC-naive) datetime."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)
