"""The simulator engine on a ManualClock: pairing, sends and acks, replies, faults, seeds, cost."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import random
import re
import tracemalloc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

import pytest
import re2
from pydantic import ValidationError

from zapgate.clock import ManualClock
from zapgate.engines.base import (
    AckStatus,
    Capability,
    EngineError,
    EngineNotReady,
    InboundMessage,
    OutboundMessage,
    PermanentEngineError,
    SessionConfig,
    SessionStatus,
    TransientEngineError,
    WrongEngineState,
)
from zapgate.engines.simulator import (
    MAX_PENDING_SENDS,
    QR_TIMEOUT_REASON,
    SimulatorDefaults,
    SimulatorEngine,
)
from zapgate.engines.simulator_config import MATCH_WINDOW, SimulatorConfig, parse_config

DEFAULTS = SimulatorDefaults(pairing_seconds=0.25, ack_seconds=0.5, echo_contact="5511900000000")
OWN = "5511000000000"
FRIEND = "5511933332222"
QR_PATTERN = re.compile(r"^2@[0-9A-Za-z+/]{32},[0-9A-Za-z+/]{44},s1$")
CODE_PATTERN = re.compile(r"^[A-Z0-9]{4}-[A-Z0-9]{4}$")


# a recording sink and helpers ----------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One sink call: when (clock time), which method, with what."""

    at: float
    name: str
    args: tuple[Any, ...]


class RecordingSink:
    """An EngineSink that records every call in order and lets a test await one."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.calls: list[Call] = []
        self._changed = asyncio.Condition()
        self._stored = 0

    async def _record(self, name: str, *args: Any) -> None:
        self.calls.append(Call(self.clock.monotonic(), name, args))
        async with self._changed:
            self._changed.notify_all()

    async def status(self, status: SessionStatus, reason: str | None = None) -> None:
        await self._record("status", status, reason)

    async def qr(self, raw: str) -> None:
        await self._record("qr", raw)

    async def me(self, account: dict[str, Any]) -> None:
        await self._record("me", account)

    async def message(self, message: InboundMessage) -> str:
        await self._record("message", message)
        self._stored += 1
        return f"stored-{self._stored}"

    async def ack(self, engine_message_id: str, status: AckStatus) -> None:
        await self._record("ack", engine_message_id, status)

    async def heartbeat(self) -> None:
        await self._record("heartbeat")

    async def wait_for(self, predicate: Callable[[Call], bool], timeout: float = 2.0) -> Call:
        """The first call (past or future) matching ``predicate``."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: any(map(predicate, self.calls)))
        return next(call for call in self.calls if predicate(call))

    def named(self, name: str) -> list[Call]:
        """The calls of one method."""
        return [call for call in self.calls if call.name == name]

    def statuses(self) -> list[SessionStatus]:
        """Every status reported, in order."""
        return [call.args[0] for call in self.named("status")]

    def acks(self, engine_message_id: str) -> list[AckStatus]:
        """The acks of one message, in order."""
        return [call.args[1] for call in self.named("ack") if call.args[0] == engine_message_id]

    def inbound(self) -> list[InboundMessage]:
        """The messages reported, in order."""
        return [call.args[0] for call in self.named("message")]


def is_status(status: SessionStatus) -> Callable[[Call], bool]:
    """Matches a status report."""
    return lambda call: call.name == "status" and call.args[0] is status


async def settle(rounds: int = 30) -> None:
    """Let every task that can run, run (no time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def advance(clock: ManualClock, seconds: float, steps: int = 1) -> None:
    """Move the clock in ``steps`` equal steps, letting the woken tasks run after each."""
    for _ in range(steps):
        clock.advance(seconds / steps)
        await settle()


def session(
    config: dict[str, Any] | None = None,
    *,
    restore: dict[str, Any] | None = None,
    name: str = "s1",
) -> SessionConfig:
    """A SessionConfig, with ``restore`` whether or not SessionConfig has that field yet."""
    options = dict(config or {})
    if restore is None:
        return SessionConfig("t1", name, options)
    if "restore" in {field.name for field in dataclasses.fields(SessionConfig)}:
        return SessionConfig("t1", name, options, restore=restore)  # type: ignore[call-arg]
    return cast(
        SessionConfig, SimpleNamespace(tenant="t1", name=name, options=options, restore=restore)
    )


def text(to: str, body: str = "Olá", message_id: str = "msg_1") -> OutboundMessage:
    """An outbound text."""
    return OutboundMessage(message_id, to, "text", body)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sink(clock: ManualClock) -> RecordingSink:
    return RecordingSink(clock)


@pytest.fixture
async def engine(clock: ManualClock) -> AsyncIterator[SimulatorEngine]:
    engine = SimulatorEngine(DEFAULTS, clock)
    yield engine
    await engine.stop()


async def working(
    engine: SimulatorEngine, sink: RecordingSink, config: dict[str, Any] | None = None
) -> None:
    """Start with manual pairing and scan at once."""
    await engine.start(session({"pairing": "manual", **(config or {})}), sink)
    await engine.simulate_scan()
    assert engine.status is SessionStatus.WORKING


# pairing -------------------------------------------------------------------------------------


async def test_a_qr_is_shown_then_paired_automatically(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    await engine.start(session(), sink)
    assert sink.statuses() == [SessionStatus.STARTING, SessionStatus.SCAN_QR_CODE]
    (qr,) = sink.named("qr")
    assert QR_PATTERN.match(qr.args[0])

    await advance(clock, 0.125)
    assert SessionStatus.WORKING not in sink.statuses()
    clock.advance(0.125)
    await sink.wait_for(is_status(SessionStatus.WORKING))

    assert [call.name for call in sink.calls] == ["status", "status", "qr", "me", "status"]
    assert sink.named("me")[0].args[0] == {"id": OWN, "pushname": "zapgate simulator"}
    await settle()
    assert len(engine.tasks) == 1, "only the heartbeat runs while idle"
    assert {Capability.TEXT, Capability.QR, Capability.PAIRING_CODE} <= engine.capabilities


async def test_auto_pairing_may_come_after_qr_refreshes(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    await engine.start(session({"pairing_seconds": 7, "qr_refresh_seconds": 5}), sink)
    await advance(clock, 7, steps=7)
    assert len(sink.named("qr")) == 2
    assert sink.statuses()[-1] is SessionStatus.WORKING


async def test_manual_pairing_waits_for_a_scan(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    await engine.start(session({"pairing": "manual", "own_number": "+55 11 2222-3333"}), sink)
    await advance(clock, 19)
    assert sink.statuses() == [SessionStatus.STARTING, SessionStatus.SCAN_QR_CODE]

    await engine.simulate_scan()

    assert sink.statuses()[-1] is SessionStatus.WORKING
    assert sink.named("me")[0].args[0]["id"] == "551122223333"
    with pytest.raises(WrongEngineState):
        await engine.simulate_scan()


async def test_the_qr_is_refreshed_then_the_engine_gives_up(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    config = {"pairing": "manual", "qr_refresh_seconds": 5, "qr_attempts": 3}
    await engine.start(session(config), sink)
    await advance(clock, 5)
    await advance(clock, 5)
    codes = [call.args[0] for call in sink.named("qr")]
    assert len(codes) == 3
    assert len(set(codes)) == 3
    assert all(QR_PATTERN.match(code) for code in codes)
    assert [call.at for call in sink.named("qr")] == [1000, 1005, 1010]

    await advance(clock, 4.75)
    assert SessionStatus.FAILED not in sink.statuses()
    clock.advance(0.25)
    failed = await sink.wait_for(is_status(SessionStatus.FAILED))

    assert failed.args[1] == QR_TIMEOUT_REASON
    await settle()
    assert not engine.tasks
    with pytest.raises(WrongEngineState):
        await engine.simulate_scan()


async def test_a_pairing_code_pairs_after_pairing_seconds(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    with pytest.raises(WrongEngineState):
        await engine.request_pairing_code("5511922221111")
    await engine.start(session({"pairing": "manual", "pairing_seconds": 3}), sink)

    code = await engine.request_pairing_code("5511922221111")

    assert CODE_PATTERN.match(code)
    await advance(clock, 2.5)
    assert engine.status is SessionStatus.SCAN_QR_CODE
    clock.advance(0.5)
    await sink.wait_for(is_status(SessionStatus.WORKING))
    assert sink.named("me")
    with pytest.raises(WrongEngineState):
        await engine.request_pairing_code("5511922221111")


async def test_a_new_pairing_code_replaces_the_last(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    await engine.start(session({"pairing": "manual", "pairing_seconds": 600}), sink)
    codes = {await engine.request_pairing_code("5511922221111") for _ in range(50)}
    assert len(codes) == 50
    await settle()
    assert len(engine.tasks) == 2, "the QR refresh and one pairing, not one per code"

    await advance(clock, 600)
    assert sink.statuses().count(SessionStatus.WORKING) == 1


async def test_a_restored_session_skips_the_qr(
    engine: SimulatorEngine, sink: RecordingSink
) -> None:
    account = {"id": "5511444455556", "pushname": "saved"}
    await engine.start(session(restore=account), sink)

    assert [(call.name, call.args) for call in sink.calls] == [
        ("status", (SessionStatus.STARTING, None)),
        ("me", (account,)),
        ("status", (SessionStatus.WORKING, None)),
    ]
    receipt = await engine.send(text(FRIEND))
    assert receipt.engine_message_id.startswith("sim_")


async def test_logout_forgets_the_pairing(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    await engine.start(session(restore={"id": OWN}), sink)
    await engine.logout()

    assert not engine.tasks
    with pytest.raises(EngineNotReady):
        await engine.send(text(FRIEND))
    again = RecordingSink(clock)
    await engine.start(session(restore={"id": OWN}), again)
    assert again.statuses() == [SessionStatus.STARTING, SessionStatus.SCAN_QR_CODE]
    assert again.named("qr")

    fresh, fresh_sink = SimulatorEngine(DEFAULTS, clock), RecordingSink(clock)
    await fresh.start(session(), fresh_sink)
    assert fresh_sink.named("qr")
    await fresh.stop()


async def test_an_invalid_config_fails_the_start(
    engine: SimulatorEngine, sink: RecordingSink
) -> None:
    with pytest.raises(PermanentEngineError, match="invalid simulator config"):
        await engine.start(session({"pairing": "later"}), sink)
    assert not sink.calls


# sending -------------------------------------------------------------------------------------


async def test_a_send_is_delivered_then_read(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    latencies = {
        "delivered_latency": {"kind": "fixed", "seconds": 1},
        "read_latency": {"kind": "fixed", "seconds": 2},
        "echo_contact": "",
    }
    await working(engine, sink, latencies)
    receipt = await engine.send(text(FRIEND))
    sent_at = clock.monotonic()

    await advance(clock, 0.5)
    assert not sink.named("ack")
    clock.advance(0.5)
    await sink.wait_for(lambda call: call.name == "ack")
    await advance(clock, 1.5)
    assert sink.acks(receipt.engine_message_id) == [AckStatus.DELIVERED]
    clock.advance(0.5)
    await sink.wait_for(lambda call: call.name == "ack" and call.args[1] is AckStatus.READ)

    assert sink.acks(receipt.engine_message_id) == [AckStatus.DELIVERED, AckStatus.READ]
    assert [call.at - sent_at for call in sink.named("ack")] == [1, 3]
    assert not sink.named("message")


async def test_acks_default_to_the_process_ack_seconds(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    await working(engine, sink)
    receipt = await engine.send(text(FRIEND))
    await advance(clock, 0.5)
    await advance(clock, 0.5)
    assert sink.acks(receipt.engine_message_id) == [AckStatus.DELIVERED, AckStatus.READ]


async def test_receipts_are_unique(engine: SimulatorEngine, sink: RecordingSink) -> None:
    await working(engine, sink)
    receipts = {(await engine.send(text(FRIEND))).engine_message_id for _ in range(50)}
    assert len(receipts) == 50


async def test_send_latency_holds_the_send(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    await working(engine, sink, {"send_latency": {"kind": "fixed", "seconds": 2}})
    sending = asyncio.create_task(engine.send(text(FRIEND)))
    await settle()
    assert not sending.done()
    clock.advance(2)
    receipt = await asyncio.wait_for(sending, 2)
    assert receipt.engine_message_id

    late = asyncio.create_task(engine.send(text(FRIEND)))
    await settle()
    await engine.force_disconnect(10)
    clock.advance(2)
    with pytest.raises(EngineNotReady):
        await asyncio.wait_for(late, 2)


async def test_sends_awaiting_acks_are_bounded(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    await working(engine, sink, {"read_latency": {"kind": "fixed", "seconds": 3600}})
    for index in range(MAX_PENDING_SENDS):
        await engine.send(text(FRIEND, message_id=f"msg_{index}"))
    with pytest.raises(TransientEngineError, match="busy"):
        await engine.send(text(FRIEND, message_id="one_more"))

    await advance(clock, 3600.5)
    assert len(sink.named("ack")) == 2 * MAX_PENDING_SENDS
    assert await engine.send(text(FRIEND, message_id="one_more"))


async def test_only_a_working_engine_sends_or_receives(
    engine: SimulatorEngine, sink: RecordingSink
) -> None:
    with pytest.raises(EngineNotReady):
        await engine.send(text(FRIEND))
    await engine.start(session({"pairing": "manual"}), sink)
    with pytest.raises(EngineNotReady):
        await engine.send(text(FRIEND))
    with pytest.raises(EngineNotReady):
        await engine.inject_inbound(FRIEND, "oi")
    await engine.simulate_scan()
    await engine.force_disconnect(5)
    with pytest.raises(EngineNotReady):
        await engine.send(text(FRIEND))
    with pytest.raises(EngineNotReady):
        await engine.inject_inbound(FRIEND, "oi")
    await engine.stop()
    with pytest.raises(EngineNotReady):
        await engine.send(text(FRIEND))


async def test_sends_fail_at_the_configured_rate(
    engine: SimulatorEngine, sink: RecordingSink
) -> None:
    await working(engine, sink, {"seed": 11, "send_failure_rate": 0.2})
    failures: list[EngineError] = []
    for index in range(500):
        try:
            await engine.send(text(FRIEND, message_id=f"msg_{index}"))
        except EngineError as error:
            failures.append(error)

    assert 60 <= len(failures) <= 140
    assert all(type(error) is TransientEngineError for error in failures)
    assert all(str(error) == "simulated send failure" for error in failures)


async def test_permanent_failures_are_not_retryable(
    engine: SimulatorEngine, sink: RecordingSink
) -> None:
    config = {"send_failure_rate": 1, "failure_kind": "permanent"}
    await working(engine, sink, config)
    with pytest.raises(PermanentEngineError, match="simulated send failure") as caught:
        await engine.send(text(FRIEND))
    assert not caught.value.transient
    assert not isinstance(caught.value, TransientEngineError)


async def test_an_inbound_message_is_reported(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    await working(engine, sink)
    first = await engine.inject_inbound(FRIEND, "Oi!")
    clock.advance(2)
    second = await engine.inject_inbound(FRIEND, "photo", kind="image")

    assert (first, second) == ("stored-1", "stored-2")
    one, two = sink.inbound()
    assert (one.sender, one.recipient, one.kind, one.text) == (FRIEND, OWN, "text", "Oi!")
    assert two.kind == "image"
    assert two.timestamp_ms - one.timestamp_ms == 2000
    assert one.engine_message_id != two.engine_message_id


# replies -------------------------------------------------------------------------------------


async def test_the_echo_contact_answers(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    config = {"delivered_latency": {"kind": "fixed", "seconds": 1}, "own_number": "5511222333444"}
    await working(engine, sink, config)
    await engine.send(text(DEFAULTS.echo_contact, "eco?"))
    await advance(clock, 0.75)
    assert not sink.named("message")
    clock.advance(0.25)
    await sink.wait_for(lambda call: call.name == "message")

    (echo,) = sink.inbound()
    assert (echo.sender, echo.recipient, echo.text) == (
        DEFAULTS.echo_contact,
        "5511222333444",
        "eco?",
    )
    names = [call.name for call in sink.calls]
    assert names.index("ack") < names.index("message"), "delivered comes before the answer"


async def test_a_configured_echo_contact_replaces_the_default(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    await working(engine, sink, {"echo_contact": "+55 11 97777-6666"})
    await engine.send(text(DEFAULTS.echo_contact))
    await engine.send(text("5511977776666", "me"))
    await advance(clock, 1)
    assert [(m.sender, m.text) for m in sink.inbound()] == [("5511977776666", "me")]


async def test_an_empty_echo_contact_disables_the_echo(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    await working(engine, sink, {"echo_contact": ""})
    await engine.send(text(DEFAULTS.echo_contact))
    await advance(clock, 1)
    assert not sink.named("message")


async def test_reply_rules_answer_matching_texts(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    rules = [
        {"match": r"^ping\b", "reply": "pong", "after_ms": 1500},
        {"match": "price", "reply": "R$ 10", "contact": "5511955554444"},
    ]
    await working(
        engine, sink, {"rules": rules, "delivered_latency": {"kind": "fixed", "seconds": 9}}
    )
    await engine.send(text(FRIEND, "PING there"))
    await engine.send(text(FRIEND, "the price?"))
    await engine.send(text(FRIEND, "no ping here"))
    await advance(clock, 1.25)
    assert not sink.named("message")
    clock.advance(0.25)
    await sink.wait_for(lambda call: call.name == "message")
    await engine.send(text("5511955554444", "PRICE please"))
    await settle()

    replies = [(m.sender, m.recipient, m.text) for m in sink.inbound()]
    assert replies == [(FRIEND, OWN, "pong"), ("5511955554444", OWN, "R$ 10")]


async def test_an_evil_pattern_cannot_stall_the_loop(
    engine: SimulatorEngine, sink: RecordingSink
) -> None:
    """Issue 8: ``^(a+)+$`` against 26 ``a``s and a ``!`` once froze every tenant for seconds."""
    rules = [{"match": "^(a+)+$", "reply": "only a"}]
    await working(engine, sink, {"rules": rules, "echo_contact": ""})
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.create_task(ticker())
    try:
        await asyncio.sleep(0)
        during = []
        for index, body in enumerate(["a" * 26 + "!", "a" * 26]):
            before = ticks
            await engine.send(text(FRIEND, body, message_id=f"msg_{index}"))
            during.append(ticks - before)
        await sink.wait_for(lambda call: call.name == "message")
    finally:
        ticking.cancel()
    assert all(count >= 1 for count in during), f"the loop stood still while matching: {during}"
    await settle()
    assert [m.text for m in sink.inbound()] == ["only a"]


async def test_a_send_gets_at_most_three_rule_replies(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    rules = [{"match": "hi", "reply": f"reply {index}", "after_ms": index} for index in range(6)]
    await working(engine, sink, {"rules": rules})
    await engine.send(text(DEFAULTS.echo_contact, "hi"))
    await advance(clock, 1)

    assert [m.text for m in sink.inbound()] == ["reply 0", "reply 1", "reply 2", "hi"]


async def test_rules_see_the_start_of_a_long_text(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    rules = [{"match": "^x+$", "reply": "all x"}, {"match": "tail", "reply": "found"}]
    await working(engine, sink, {"rules": rules, "echo_contact": ""})
    await engine.send(text(FRIEND, "x" * MATCH_WINDOW))
    await engine.send(text(FRIEND, "x" * MATCH_WINDOW + "tail"))
    await advance(clock, 1)

    assert [m.text for m in sink.inbound()] == ["all x", "all x"]


# connection ----------------------------------------------------------------------------------


async def test_heartbeats_come_every_heartbeat_seconds(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    await working(engine, sink, {"heartbeat_seconds": 3})
    start = clock.monotonic()
    await advance(clock, 2.5)
    assert not sink.named("heartbeat")
    await advance(clock, 9.5, steps=19)
    assert [call.at - start for call in sink.named("heartbeat")] == [3, 6, 9, 12]

    await engine.force_disconnect(7)
    await advance(clock, 6, steps=12)
    assert len(sink.named("heartbeat")) == 4, "no heartbeat while DISCONNECTED"


async def test_force_disconnect_then_reconnect(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    await working(engine, sink)
    await engine.force_disconnect(5)
    assert sink.statuses()[-1] is SessionStatus.DISCONNECTED
    with pytest.raises(WrongEngineState):
        await engine.force_disconnect()
    await advance(clock, 4.5)
    assert engine.status is SessionStatus.DISCONNECTED
    clock.advance(0.5)
    await sink.wait_for(lambda call: call.name == "status" and call.at == 1005)
    assert sink.statuses()[-2:] == [SessionStatus.DISCONNECTED, SessionStatus.WORKING]

    await engine.force_disconnect()  # the default reconnect latency: 1 s
    await advance(clock, 1)
    assert sink.statuses()[-2:] == [SessionStatus.DISCONNECTED, SessionStatus.WORKING]
    assert await engine.send(text(FRIEND))


async def test_random_disconnects_recover(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    config = {
        "seed": 3,
        "disconnect_mean_seconds": 10,
        "reconnect_latency": {"kind": "fixed", "seconds": 2},
        "heartbeat_seconds": 1000,
    }
    await working(engine, sink, config)
    assert len(engine.tasks) == 2
    await advance(clock, 200, steps=800)

    changes = sink.named("status")[3:]
    changes = changes[: len(changes) // 2 * 2]
    assert len(changes) >= 4
    for down, up in zip(changes[::2], changes[1::2], strict=True):
        assert down.args[0] is SessionStatus.DISCONNECTED
        assert up.args[0] is SessionStatus.WORKING
        assert up.at - down.at == pytest.approx(2)


async def test_a_silent_engine_reports_nothing(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    await working(engine, sink, {"heartbeat_seconds": 1})
    await advance(clock, 1)
    assert len(sink.named("heartbeat")) == 1
    reported = len(sink.calls)

    engine.go_silent()
    receipt = await engine.send(text(DEFAULTS.echo_contact))
    await engine.force_disconnect(1)
    await advance(clock, 10, steps=10)

    assert receipt.engine_message_id
    assert len(sink.calls) == reported
    with pytest.raises(EngineNotReady):
        await engine.inject_inbound(FRIEND, "anyone?")


# determinism ---------------------------------------------------------------------------------


async def scripted_run(seed: int) -> list[Any]:
    """Everything one seeded run shows, with the ids that are not seeded made positional."""
    clock = ManualClock()
    sink = RecordingSink(clock)
    engine = SimulatorEngine(DEFAULTS, clock)
    config = {
        "seed": seed,
        "pairing": "manual",
        "pairing_seconds": 1,
        "send_failure_rate": 0.3,
        "delivered_latency": {"kind": "uniform", "min": 0.1, "max": 2},
        "read_latency": {"kind": "exponential", "mean": 1},
        "reconnect_latency": {"kind": "normal", "mean": 1, "stddev": 0.5},
        "disconnect_mean_seconds": 5,
    }
    await engine.start(session(config), sink)
    code = await engine.request_pairing_code("5511922221111")
    await advance(clock, 1)
    outcomes: list[str] = []
    receipts: dict[str, int] = {}
    for index in range(40):
        try:
            receipt = await engine.send(text(FRIEND, message_id=f"msg_{index}"))
        except EngineError as error:
            outcomes.append(type(error).__name__)
        else:
            outcomes.append("ok")
            receipts[receipt.engine_message_id] = index
    await advance(clock, 20, steps=80)
    await engine.stop()
    trace = [
        (call.at, call.name, (receipts[call.args[0]], call.args[1]))
        if call.name == "ack"
        else (call.at, call.name, call.args)
        for call in sink.calls
    ]
    return [code, outcomes, trace]


async def test_the_same_seed_replays_the_same_run() -> None:
    first = await scripted_run(7)
    second = await scripted_run(7)
    other = await scripted_run(8)

    assert first == second
    assert first != other
    assert "ok" in first[1]
    assert "TransientEngineError" in first[1]
    assert any(
        name == "status" and args[0] is SessionStatus.DISCONNECTED for _, name, args in first[2]
    )


# tasks, errors and cost ----------------------------------------------------------------------


def simulator_tasks() -> list[asyncio.Task[Any]]:
    """Tasks of any simulator on the loop."""
    return [task for task in asyncio.all_tasks() if task.get_name().startswith("simulator:")]


async def test_stop_cancels_every_task(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    await working(engine, sink, {"disconnect_mean_seconds": 30})
    for index in range(5):
        await engine.send(text(DEFAULTS.echo_contact, message_id=f"msg_{index}"))
    await engine.force_disconnect(3)
    assert len(engine.tasks) >= 8
    reported = len(sink.calls)

    await engine.stop()

    assert not engine.tasks
    assert not simulator_tasks()
    assert engine.status is SessionStatus.STOPPED
    await advance(clock, 100, steps=10)
    assert len(sink.calls) == reported, "a stopped engine kept reporting"


async def test_stop_while_showing_a_qr(
    engine: SimulatorEngine, sink: RecordingSink, clock: ManualClock
) -> None:
    await engine.start(session({"pairing_seconds": 5}), sink)
    await engine.request_pairing_code("5511922221111")
    assert len(engine.tasks) == 3
    await engine.stop()
    assert not simulator_tasks()
    await advance(clock, 100, steps=10)
    assert len(sink.named("qr")) == 1
    assert sink.statuses() == [SessionStatus.STARTING, SessionStatus.SCAN_QR_CODE]


@pytest.mark.parametrize("stop_on", ["status", "qr", "me", "heartbeat", "ack", "message"])
async def test_stop_from_inside_a_sink_call(clock: ManualClock, stop_on: str) -> None:
    engine = SimulatorEngine(DEFAULTS, clock)

    class StoppingSink(RecordingSink):
        async def _record(self, name: str, *args: Any) -> None:
            await super()._record(name, *args)
            if name == stop_on:
                await engine.stop()

    sink = StoppingSink(clock)
    config = {"heartbeat_seconds": 1, "disconnect_mean_seconds": 50, "qr_refresh_seconds": 1}
    await engine.start(session(config), sink)
    await advance(clock, 0.5)
    if engine.status is SessionStatus.WORKING:
        await engine.send(text(DEFAULTS.echo_contact))
    await advance(clock, 10, steps=20)

    assert sink.calls[-1].name == stop_on, "nothing is reported after the stop"
    assert engine.status is SessionStatus.STOPPED
    assert not engine.tasks
    assert not simulator_tasks()


async def test_sink_failures_are_logged_not_lost(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    class FailingSink(RecordingSink):
        refuse_me = False

        async def heartbeat(self) -> None:
            raise RuntimeError("heartbeat refused")

        async def me(self, account: dict[str, Any]) -> None:
            if self.refuse_me:
                raise RuntimeError("me refused")
            await super().me(account)

    caplog.set_level(logging.ERROR, logger="zapgate.engines.simulator")
    engine = SimulatorEngine(DEFAULTS, clock)
    await engine.start(session({"heartbeat_seconds": 1}, restore={"id": OWN}), FailingSink(clock))
    await advance(clock, 2, steps=2)
    assert engine.tasks, "the heartbeat goes on after a failure"
    await engine.stop()

    refusing = FailingSink(clock)
    refusing.refuse_me = True
    await engine.start(session(), refusing)  # auto pairing fails in the background
    await advance(clock, 0.25)
    await engine.stop()

    messages = [record.getMessage() for record in caplog.records]
    assert messages.count("simulator: the sink failed") == 2
    assert any(message.startswith("simulator task") for message in messages)
    errors = [record.exc_info[1] for record in caplog.records if record.exc_info]
    assert {str(error) for error in errors} == {"heartbeat refused", "me refused"}


class NullSink:
    """A sink that keeps nothing."""

    async def status(self, status: SessionStatus, reason: str | None = None) -> None:
        return None

    async def qr(self, raw: str) -> None:
        return None

    async def me(self, account: dict[str, Any]) -> None:
        return None

    async def message(self, message: InboundMessage) -> str:
        return "stored"

    async def ack(self, engine_message_id: str, status: AckStatus) -> None:
        return None

    async def heartbeat(self) -> None:
        return None


async def test_an_idle_working_session_is_cheap(clock: ManualClock) -> None:
    count = 300
    config = {
        "pairing": "manual",
        "disconnect_mean_seconds": 600,
        "rules": [{"match": "x", "reply": "y"}],
    }
    gc.collect()
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    engines = []
    for index in range(count):
        engine = SimulatorEngine(DEFAULTS, clock)
        await engine.start(session({**config, "seed": index}, name=f"s{index}"), NullSink())
        await engine.simulate_scan()
        engines.append(engine)
    await advance(clock, 30, steps=3)
    gc.collect()
    per_session = (tracemalloc.get_traced_memory()[0] - before) / count
    if not tracing:
        tracemalloc.stop()

    assert per_session < 100_000
    assert all(len(engine.tasks) == 2 for engine in engines)
    for engine in engines:
        await engine.stop()


# config --------------------------------------------------------------------------------------


def test_an_empty_config_is_valid() -> None:
    config = parse_config({})
    assert config == SimulatorConfig()
    assert config.pairing == "auto"
    assert config.send_latency.sample(random.Random(1)) == 0
    assert config.reconnect_latency.sample(random.Random(1)) == 1
    assert config.delivered_latency is None
    assert config.echo_contact is None


def test_equal_configs_are_parsed_once_and_shared() -> None:
    raw = {"heartbeat_seconds": 30, "read_latency": {"kind": "fixed", "seconds": 0.5}}
    first = parse_config(raw)
    assert parse_config(dict(reversed(raw.items()))) is first, "key order does not matter"
    assert parse_config({**raw, "heartbeat_seconds": 31}) is not first
    with pytest.raises(ValidationError):
        parse_config({**raw, "heartbeat_seconds": 0})


def test_a_full_config_is_valid() -> None:
    config = parse_config(
        {
            "seed": 5,
            "pairing": "manual",
            "pairing_seconds": 600,
            "qr_refresh_seconds": 1,
            "qr_attempts": 100,
            "send_latency": {"kind": "uniform", "min": 0.1, "max": 0.1},
            "delivered_latency": {"kind": "exponential", "mean": 0},
            "read_latency": {"kind": "normal", "mean": 0, "stddev": 3},
            "reconnect_latency": {"kind": "fixed", "seconds": 0},
            "send_failure_rate": 1,
            "failure_kind": "permanent",
            "disconnect_mean_seconds": 1,
            "heartbeat_seconds": 1,
            "own_number": "5511987654321@c.us",
            "push_name": "bot",
            "echo_contact": "",
            "rules": [
                {
                    "match": "(?i)^oi",
                    "reply": "olá",
                    "after_ms": 3_600_000,
                    "contact": "+5511987650000",
                }
            ],
        }
    )
    rng = random.Random(2)
    assert config.own_number == "5511987654321"
    assert config.rules[0].contact == "5511987650000"
    assert config.rules[0].applies("5511987650000", "OI")
    assert not config.rules[0].applies(FRIEND, "oi")
    assert config.delivered_latency is not None
    assert config.delivered_latency.sample(rng) == 0
    assert config.read_latency is not None
    assert all(config.read_latency.sample(rng) >= 0 for _ in range(200))


@pytest.mark.parametrize(
    "config",
    [
        {"unknown": 1},
        {"pairing": "later"},
        {"pairing_seconds": -1},
        {"qr_refresh_seconds": 0},
        {"qr_attempts": 0},
        {"send_failure_rate": 1.5},
        {"send_failure_rate": -0.1},
        {"failure_kind": "sometimes"},
        {"send_latency": {"kind": "fixed", "seconds": -1}},
        {"send_latency": {"kind": "fixed", "seconds": float("inf")}},
        {"send_latency": {"kind": "uniform", "min": 2, "max": 1}},
        {"send_latency": {"kind": "exponential", "mean": -1}},
        {"send_latency": {"kind": "normal", "mean": 1, "stddev": -1}},
        {"send_latency": {"kind": "gamma", "shape": 1}},
        {"send_latency": {"seconds": 1}},
        {"delivered_latency": {"kind": "fixed", "seconds": 1, "extra": 1}},
        {"disconnect_mean_seconds": 0},
        {"heartbeat_seconds": 0},
        {"own_number": "not a number"},
        {"echo_contact": "123"},
        {"rules": [{"match": "(", "reply": "x"}]},
        {"rules": [{"match": "x", "reply": ""}]},
        {"rules": [{"match": "x", "reply": "y", "after_ms": -1}]},
        {"rules": [{"match": "x", "reply": "y", "extra": True}]},
        {"rules": [{"match": "x", "reply": "y", "contact": "abc"}]},
    ],
)
def test_a_bad_config_is_rejected(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SimulatorConfig.model_validate(config)


@pytest.mark.parametrize(
    ("config", "loc"),
    [
        ({"heartbeat_seconds": 1e-9}, ("heartbeat_seconds",)),
        ({"heartbeat_seconds": 0.99}, ("heartbeat_seconds",)),
        ({"qr_refresh_seconds": 0.001}, ("qr_refresh_seconds",)),
        ({"qr_attempts": 101}, ("qr_attempts",)),
        ({"pairing_seconds": 601}, ("pairing_seconds",)),
        ({"disconnect_mean_seconds": 0.5}, ("disconnect_mean_seconds",)),
        (
            {"send_latency": {"kind": "fixed", "seconds": 3601}},
            ("send_latency", "fixed", "seconds"),
        ),
        (
            {"reconnect_latency": {"kind": "uniform", "min": 0, "max": 3601}},
            ("reconnect_latency", "uniform", "max"),
        ),
        (
            {"delivered_latency": {"kind": "exponential", "mean": 3601}},
            ("delivered_latency", "exponential", "mean"),
        ),
        (
            {"read_latency": {"kind": "normal", "mean": 1, "stddev": 3601}},
            ("read_latency", "normal", "stddev"),
        ),
        (
            {"rules": [{"match": "x", "reply": "y", "after_ms": 3_600_001}]},
            ("rules", 0, "after_ms"),
        ),
        ({"rules": [{"match": r"(a)\1", "reply": "y"}]}, ("rules", 0, "match")),
        ({"rules": [{"match": "a(?=b)", "reply": "y"}]}, ("rules", 0, "match")),
        ({"rules": [{"match": "(?<!a)b", "reply": "y"}]}, ("rules", 0, "match")),
        ({"rules": [{"match": "a.{500}b", "reply": "y"}]}, ("rules", 0, "match")),
    ],
)
def test_a_config_out_of_bounds_is_rejected(config: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        SimulatorConfig.model_validate(config)
    assert [error["loc"] for error in caught.value.errors()] == [loc]


def test_rules_together_have_a_complexity_budget() -> None:
    costly = {"match": "[a-z]{60}", "reply": "y"}
    assert parse_config({"rules": [costly]}).rules
    with pytest.raises(ValidationError, match="too complex") as caught:
        parse_config({"rules": [costly] * 100})
    assert [error["loc"] for error in caught.value.errors()] == [("rules",)]


@pytest.mark.parametrize(
    "latency",
    [
        {"kind": "exponential", "mean": 3600},
        {"kind": "normal", "mean": 3600, "stddev": 3600},
        {"kind": "uniform", "min": 3600, "max": 3600},
    ],
)
def test_no_latency_exceeds_an_hour(latency: dict[str, Any]) -> None:
    config = parse_config({"send_latency": latency})
    rng = random.Random(4)
    samples = [config.send_latency.sample(rng) for _ in range(2000)]
    assert max(samples) == 3600
    assert min(samples) >= 0


def test_rules_use_re2_case_insensitively() -> None:
    raw = {"rules": [{"match": r"^pre[cç]o\b", "reply": "R$ 10"}]}
    config = parse_config(raw)
    (rule,) = config.rules
    assert rule.applies(FRIEND, "PREÇO?")
    assert rule.applies(FRIEND, "preco")
    assert not rule.applies(FRIEND, "o preço")
    re2.purge()
    assert parse_config(raw) == config, "equal configs stay equal when recompiled"
