"""Token buckets and stream slots on a manual clock."""

from __future__ import annotations

from zapgate.limits.buckets import TokenBuckets
from zapgate.limits.streams import StreamSlots


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_steady_rate() -> None:
    clock = ManualClock()
    buckets = TokenBuckets(clock)
    decisions = [buckets.take("k", rate=2.0, burst=3) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[2].remaining == 0
    assert decisions[3].retry_after == 0.5
    clock.now += 0.5
    assert buckets.take("k", 2.0, 3).allowed
    assert not buckets.take("k", 2.0, 3).allowed


def test_keys_have_their_own_buckets() -> None:
    buckets = TokenBuckets(ManualClock())
    assert not [d for d in (buckets.take("a", 1.0, 1), buckets.take("b", 1.0, 1)) if not d.allowed]
    assert not buckets.take("a", 1.0, 1).allowed


def test_headers_follow_the_ietf_draft() -> None:
    buckets = TokenBuckets(ManualClock())
    allowed = buckets.take("k", rate=10.0, burst=20)
    assert allowed.headers() == {
        "RateLimit-Policy": '"default";q=20;w=2',
        "RateLimit": '"default";r=19;t=0',
    }
    for _ in range(19):
        buckets.take("k", 10.0, 20)
    refused = buckets.take("k", 10.0, 20).headers()
    assert refused["Retry-After"] == "1"
    assert refused["RateLimit"] == '"default";r=0;t=1'


def test_the_number_of_buckets_is_bounded() -> None:
    buckets = TokenBuckets(ManualClock(), max_keys=100)
    for index in range(1000):
        buckets.take(f"key-{index}", 1.0, 1)
    assert len(buckets) == 100


def test_stream_slots_are_counted_and_freed_once() -> None:
    slots = StreamSlots()
    first = slots.acquire("k", 2)
    second = slots.acquire("k", 2)
    assert first is not None
    assert second is not None
    assert slots.acquire("k", 2) is None
    first.release()
    first.release()
    assert slots.open("k") == 1
    assert slots.acquire("k", 2) is not None
    assert slots.acquire("other", 0) is not None  # 0 = unlimited
