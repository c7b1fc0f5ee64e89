"""The Cloud API sender's pace, on a virtual clock: never more than the rate in any window
(no burst), per-recipient buckets, slowing down when Meta says so and recovering."""

from __future__ import annotations

import asyncio

from zapgate.engines.cloudapi.limiter import (
    PAIR_COOLDOWN_SECONDS,
    RECOVERY_SECONDS,
    WINDOW_SECONDS,
    SendLimiter,
)


class VirtualClock:
    """Time that passes only when everyone waits: a sleep moves it to the sleeper's wake-up."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


def busiest_window(times: list[float], window: float = 1.0) -> int:
    """The most starts in any window of ``window`` seconds."""
    times = sorted(times)
    best, first = 0, 0
    for last, at in enumerate(times):
        while times[first] <= at - window:
            first += 1
        best = max(best, last - first + 1)
    return best


async def test_no_window_ever_holds_more_than_the_rate() -> None:
    clock = VirtualClock()
    limiter = SendLimiter(50, 0, 1, clock)
    starts: list[float] = []
    for n in range(400):
        await limiter.acquire(f"55119{n:08d}")
        starts.append(clock.now)
    assert busiest_window(starts, WINDOW_SECONDS) == 50
    assert busiest_window(starts) <= 50
    # no burst: 400 sends take their full time
    assert starts[-1] >= (400 / 50 - 1) * WINDOW_SECONDS - 1e-9


async def test_concurrent_waiters_share_the_rate_first_come_first_served() -> None:
    clock = VirtualClock()
    limiter = SendLimiter(10, 0, 1, clock)
    starts: dict[int, float] = {}

    async def send(n: int) -> None:
        await limiter.acquire(f"recipient-{n}")
        starts[n] = clock.now

    await asyncio.gather(*(send(n) for n in range(35)))
    assert busiest_window(list(starts.values()), WINDOW_SECONDS) <= 10
    order = sorted(starts, key=lambda n: (starts[n], n))
    assert order == list(range(35))


async def test_one_recipient_gets_its_burst_then_one_per_interval() -> None:
    clock = VirtualClock()
    limiter = SendLimiter(1000, 10, 3, clock)  # 10 a minute: one per 6 s after 3
    starts = []
    for _ in range(5):
        await limiter.acquire("5511988887777")
        starts.append(clock.now)
    assert starts[:3] == [0.0, 0.0, 0.0]
    assert abs(starts[3] - 6.0) < 1e-6
    assert abs(starts[4] - 12.0) < 1e-6
    await limiter.acquire("5511900000000")  # others are not held back
    assert abs(clock.now - 12.0) < 1e-6


async def test_a_recipient_meta_calls_too_busy_waits_its_cooldown() -> None:
    clock = VirtualClock()
    limiter = SendLimiter(1000, 0, 1, clock)  # no pair pacing of its own
    await limiter.acquire("5511988887777")
    limiter.cool_down("5511988887777")
    await limiter.acquire("5511988887777")
    assert abs(clock.now - PAIR_COOLDOWN_SECONDS) < 1e-6


async def test_meta_asking_to_slow_down_halves_the_rate_until_it_recovers() -> None:
    clock = VirtualClock()
    limiter = SendLimiter(40, 0, 1, clock)
    limiter.slow_down()
    assert limiter.limit == 20
    limiter.slow_down()
    assert limiter.limit == 10
    starts = []
    for n in range(30):
        await limiter.acquire(str(n))
        starts.append(clock.now)
    assert busiest_window(starts, WINDOW_SECONDS) <= 10
    clock.now += RECOVERY_SECONDS
    await limiter.acquire("later")
    assert limiter.limit == 20
    clock.now += RECOVERY_SECONDS
    await limiter.acquire("later still")
    assert limiter.limit == 40
    clock.now += RECOVERY_SECONDS
    await limiter.acquire("never above the setting")
    assert limiter.limit == 40
