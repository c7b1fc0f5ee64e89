"""How fast one phone number sends: strictly at most ``rate`` per second, and per recipient.

- **Per phone number**: a sliding window, not a bucket, so there is no burst: at most ``rate``
  sends start in any window of ``WINDOW_SECONDS``. The window is a little longer than a second,
  so the jitter of the network (up to its margin) cannot make Meta count more than ``rate``
  in any second of its own. Waiters go in turn (first come, first served).
- **Per recipient** (Meta's pair rate limit): a bucket of ``pair_burst`` refilled at
  ``pair_per_minute``; a recipient Meta says got too many waits ``PAIR_COOLDOWN_SECONDS``.
- **Slowing down**: when Meta says the number sent too fast (130429), the rate is halved, and
  doubled back (up to the setting) after each ``RECOVERY_SECONDS`` without another complaint.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from dataclasses import dataclass

from zapgate.clock import Clock

WINDOW_SECONDS = 1.05
PAIR_COOLDOWN_SECONDS = 6.0
RECOVERY_SECONDS = 30.0
RECIPIENTS_KEPT = 10_000


@dataclass(slots=True)
class _Pair:
    tokens: float
    at: float
    blocked_until: float = 0.0


class SendLimiter:
    """Decides when each send may start; ``acquire`` sleeps on the injected clock."""

    def __init__(self, rate: int, pair_per_minute: float, pair_burst: int, clock: Clock) -> None:
        self.rate = rate
        self.limit = rate
        """The rate in force: ``rate``, or less after Meta asked to slow down."""
        self._pair_rate = pair_per_minute / 60.0
        self._pair_burst = float(pair_burst)
        self._clock = clock
        self._started: deque[float] = deque()
        self._turn = asyncio.Lock()
        self._pairs: OrderedDict[str, _Pair] = OrderedDict()
        self._recover_at = 0.0

    async def acquire(self, recipient: str) -> None:
        """Wait until a send to ``recipient`` may start, and count it."""
        await self._pair_turn(recipient)
        async with self._turn:
            while True:
                now = self._clock.monotonic()
                self._recover(now)
                started = self._started
                while started and started[0] <= now - WINDOW_SECONDS:
                    started.popleft()
                if len(started) < self.limit:
                    started.append(now)
                    return
                await self._clock.sleep(started[0] + WINDOW_SECONDS - now)

    def slow_down(self) -> None:
        """Meta said the number sends too fast: halve the rate for a while."""
        self.limit = max(1, self.limit // 2)
        self._recover_at = self._clock.monotonic() + RECOVERY_SECONDS

    def cool_down(self, recipient: str) -> None:
        """Meta said ``recipient`` got too many: nothing more to them for a while."""
        pair = self._pair(recipient, self._clock.monotonic())
        pair.tokens = 0.0
        pair.blocked_until = self._clock.monotonic() + PAIR_COOLDOWN_SECONDS

    def _recover(self, now: float) -> None:
        if self.limit < self.rate and now >= self._recover_at:
            self.limit = min(self.rate, self.limit * 2)
            self._recover_at = now + RECOVERY_SECONDS

    async def _pair_turn(self, recipient: str) -> None:
        while True:
            now = self._clock.monotonic()
            pair = self._pair(recipient, now)
            wait = pair.blocked_until - now
            if wait <= 0 and self._pair_rate > 0:
                pair.tokens = min(self._pair_burst, pair.tokens + (now - pair.at) * self._pair_rate)
                pair.at = now
                if pair.tokens >= 1:
                    pair.tokens -= 1
                    return
                wait = (1 - pair.tokens) / self._pair_rate
            elif wait <= 0:
                return
            await self._clock.sleep(wait)

    def _pair(self, recipient: str, now: float) -> _Pair:
        pair = self._pairs.get(recipient)
        if pair is None:
            pair = self._pairs[recipient] = _Pair(self._pair_burst, now)
            while len(self._pairs) > RECIPIENTS_KEPT:
                self._pairs.popitem(last=False)
        else:
            self._pairs.move_to_end(recipient)
        return pair
