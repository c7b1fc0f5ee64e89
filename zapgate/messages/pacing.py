"""Pacing of a session's sends, against bans: a token bucket, spacing per recipient, jitter."""

from __future__ import annotations

import random
from collections import OrderedDict
from dataclasses import dataclass

from zapgate.clock import Clock

RECIPIENTS_KEPT = 10_000
_JITTER = random.Random()
"""The jitter of every pacer given no generator of its own (one costs 2.5 KB; a node has one
pacer per session)."""


@dataclass(frozen=True, slots=True)
class PacingPolicy:
    """``rate_per_second`` 0 turns the bucket off; the other knobs work on their own."""

    rate_per_second: float = 1.0
    burst: int = 5
    per_recipient_seconds: float = 2.0
    jitter_seconds: float = 0.5

    @property
    def off(self) -> bool:
        """True when nothing is paced."""
        return (
            self.rate_per_second <= 0
            and self.per_recipient_seconds <= 0
            and self.jitter_seconds <= 0
        )


class Pacer:
    """Decides how long a send must wait; ``wait_turn`` sleeps on the injected clock."""

    def __init__(
        self, policy: PacingPolicy, clock: Clock, rng: random.Random | None = None
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._rng = rng or _JITTER
        self._tokens = float(policy.burst)
        self._refilled_at = clock.monotonic()
        self._last_sent: OrderedDict[str, float] = OrderedDict()

    async def wait_turn(self, recipient: str) -> None:
        """Sleep until a send to ``recipient`` may go, then take its token."""
        if self._policy.off:
            return
        await self._clock.sleep(self._delay(recipient))
        self._refill()
        self._tokens -= 1 if self._policy.rate_per_second > 0 else 0
        self._last_sent[recipient] = self._clock.monotonic()
        self._last_sent.move_to_end(recipient)
        while len(self._last_sent) > RECIPIENTS_KEPT:
            self._last_sent.popitem(last=False)

    def _delay(self, recipient: str) -> float:
        self._refill()
        policy = self._policy
        bucket = 0.0
        if policy.rate_per_second > 0 and self._tokens < 1:
            bucket = (1 - self._tokens) / policy.rate_per_second
        spacing = 0.0
        last = self._last_sent.get(recipient)
        if last is not None and policy.per_recipient_seconds > 0:
            spacing = last + policy.per_recipient_seconds - self._clock.monotonic()
        jitter = self._rng.uniform(0, policy.jitter_seconds) if policy.jitter_seconds > 0 else 0
        return max(bucket, spacing, 0.0) + jitter

    def _refill(self) -> None:
        now = self._clock.monotonic()
        if self._policy.rate_per_second > 0:
            earned = (now - self._refilled_at) * self._policy.rate_per_second
            self._tokens = min(float(self._policy.burst), self._tokens + earned)
        self._refilled_at = now
