"""An ordered bus (cluster mode) passes each tenant's events on once each, in seq order, and
reports a gap instead of passing an event after it."""

from __future__ import annotations

from zapgate.events.bus import EventBus
from zapgate.events.model import Event, EventDraft


def event(tenant: str, seq: int) -> Event:
    return EventDraft(tenant, "s", "message.status", {"n": seq}).placed(seq)


def test_an_ordered_bus_drops_repeats_and_holds_back_what_follows_a_gap() -> None:
    bus = EventBus(ordered=True)
    bus.start_at({"t": 10})
    seen: list[tuple[str, int]] = []
    gaps: list[str] = []
    bus.subscribe(lambda events: seen.extend((e.tenant, e.seq) for e in events))
    bus.on_gap = gaps.append

    bus.publish([event("t", 9), event("t", 10), event("t", 11), event("u", 1)])
    assert seen == [("t", 11), ("u", 1)], "history and repeats are dropped"
    bus.publish([event("t", 13), event("u", 2)])  # 12 was written by another node
    assert seen[2:] == [("u", 2)]
    assert gaps == ["t"]
    assert bus.latest("t") == 11
    bus.publish([event("t", 12), event("t", 13)], whole=True)  # the tail read the log
    assert seen[3:] == [("t", 12), ("t", 13)]
    bus.publish([event("t", 20)], whole=True)  # retention removed 14..19 from the log
    assert bus.latest("t") == 20


def test_a_deleted_tenant_made_again_counts_from_one() -> None:
    bus = EventBus(ordered=True)
    bus.start_at({"t": 5})
    bus.restart("t")
    seen: list[int] = []
    bus.subscribe(lambda events: seen.extend(e.seq for e in events))
    bus.publish([event("t", 1)])
    assert seen == [1]


def test_an_unordered_bus_passes_everything_on() -> None:
    bus = EventBus()
    seen: list[int] = []
    bus.subscribe(lambda events: seen.extend(e.seq for e in events))
    bus.publish([event("t", 3), event("t", 1)])
    assert seen == [3, 1]
