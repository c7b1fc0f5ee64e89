"""Sortable unique ids: a prefix and a ULID (48-bit ms time, 80 random bits), monotonic."""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return "".join(reversed(chars))


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
    return _encode(now, 10) + _encode(rand, 16)


def new_id(prefix: str) -> str:
    """An id such as ``msg_01J...``."""
    return f"{prefix}_{ulid()}"
