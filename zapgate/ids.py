"""Sortable unique ids: a prefix and a ULID (48-bit ms time, 80 random bits), monotonic."""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]


def _encode(value: int, length: int) -> str:
    """``value`` in ``length`` Crockford base32 digits (``length`` even), 10 bits at a time."""
    pairs = _PAIRS
    return "".join(
        pairs[(value >> shift) & 0x3FF] for shift in range((length // 2 - 1) * 10, -1, -10)
    )


def ulid() -> str:
    """A 26-character ULID; ids made by one process strictly increase."""
    global _last_ms, _last_rand
    with _lock:
        now = time.time_ns() // 1_000_000
        if now <= _last_ms:
            now, rand = _last_ms, _last_rand + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1
        _last_ms, _last_rand = now, rand
    return _encode((now << 80) | rand, 26)


def new_id(prefix: str) -> str:
    """An id such as ``msg_01J...``."""
    return f"{prefix}_{ulid()}"
