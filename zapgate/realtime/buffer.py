"""Live events held back for a client while it replays the log; bounded."""

from __future__ import annotations

from collections import deque

from zapgate.events.model import Event


class LiveBuffer:
    """Events after seq ``after`` in the order the fan-out saw them, at most ``limit`` of them.

    Events at or before ``after`` are the replay's to send (it reads the log up to there), so
    they are dropped here: nothing is sent twice. Past ``limit`` the buffer gives up, keeps
    nothing, and the client is told ``resync_required``.
    """

    def __init__(self, after: int, limit: int) -> None:
        self.after = after
        self.overflowed = False
        self._limit = limit
        self._events: deque[Event] = deque()

    def push(self, event: Event) -> None:
        """Hold ``event`` (the fan-out calls this instead of emitting it to the client)."""
        if self.overflowed or event.seq <= self.after:
            return
        if len(self._events) >= self._limit:
            self.overflowed = True
            self._events.clear()
            return
        self._events.append(event)

    def take(self) -> list[Event]:
        """Everything held so far, oldest first; the buffer is empty afterwards."""
        events = list(self._events)
        self._events.clear()
        return events

    def restart(self, after: int) -> None:
        """Forget everything and hold again what comes after ``after``."""
        self.after = after
        self.overflowed = False
        self._events.clear()
