"""Open streams per key (SSE streams, long-polls and Socket.IO connections together)."""

from __future__ import annotations

from collections import Counter


class StreamSlot:
    """One open stream; ``release`` frees it (more than once is harmless)."""

    __slots__ = ("_key", "_slots")

    def __init__(self, slots: StreamSlots, key: str) -> None:
        self._slots: StreamSlots | None = slots
        self._key = key

    def release(self) -> None:
        """The stream is closed."""
        if self._slots is not None:
            self._slots._release(self._key)
            self._slots = None

    def __enter__(self) -> StreamSlot:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


class StreamSlots:
    """Counts open streams per key; ``acquire`` returns None when ``limit`` are open."""

    def __init__(self) -> None:
        self._open: Counter[str] = Counter()

    def acquire(self, key: str, limit: int) -> StreamSlot | None:
        """A slot for ``key``, or None when it already has ``limit`` (0: unlimited)."""
        if limit and self._open[key] >= limit:
            return None
        self._open[key] += 1
        return StreamSlot(self, key)

    def open(self, key: str) -> int:
        """How many streams ``key`` has open."""
        return self._open.get(key, 0)

    def total(self) -> int:
        """How many streams are open here, every key's."""
        return sum(self._open.values())

    def _release(self, key: str) -> None:
        self._open[key] -= 1
        if self._open[key] <= 0:
            del self._open[key]
