"""Pacing against bans: the token bucket, spacing per recipient and jitter, on a manual clock."""

from __future__ import annotations

import asyncio
import itertools
import random

from zapgate.clock import ManualClock
from zapgate.messages.pacing import Pacer, PacingPolicy


async def turn_at(pacer: Pacer, clock: ManualClock, recipient: str) -> float:
    """The clock time at which ``recipient``'s turn came, advancing the clock as needed."""
    waiting = asyncio.create_task(pacer.wait_turn(recipient))
    while True:
        sleeping = asyncio.create_task(clock.until_sleeping(1))
        done, _ = await asyncio.wait({waiting, sleeping}, return_when=asyncio.FIRST_COMPLETED)
        if waiting in done:
            sleeping.cancel()
            return clock.monotonic()
        deadline = min(deadline for deadline, _, f in clock._sleepers if not f.done())
        clock.advance(deadline - clock.monotonic())


async def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = ManualClock(start=0)
    pacer = Pacer(PacingPolicy(2.0, burst=3, per_recipient_seconds=0, jitter_seconds=0), clock)
    times = [await turn_at(pacer, clock, f"55119999900{i:02d}") for i in range(7)]
    assert times[:3] == [0, 0, 0]
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(times[2:])]
    assert gaps == [0.5, 0.5, 0.5, 0.5]


async def test_spacing_per_recipient_and_jitter() -> None:
    clock = ManualClock(start=0)
    policy = PacingPolicy(0, burst=1, per_recipient_seconds=2.0, jitter_seconds=0)
    pacer = Pacer(policy, clock)
    first = await turn_at(pacer, clock, "5511999990001")
    other = await turn_at(pacer, clock, "5511999990002")
    again = await turn_at(pacer, clock, "5511999990001")
    assert (first, other, again) == (0, 0, 2.0)
    jittery = Pacer(PacingPolicy(0, 1, 0, jitter_seconds=1.0), clock, random.Random(7))
    start = clock.monotonic()
    waited = await turn_at(jittery, clock, "5511999990003") - start
    assert 0 < waited <= 1.0


async def test_off_never_waits() -> None:
    clock = ManualClock(start=0)
    pacer = Pacer(PacingPolicy(0, 1, 0, 0), clock)
    for _ in range(100):
        await pacer.wait_turn("5511999990001")
    assert clock.monotonic() == 0
    assert clock.sleepers == 0
