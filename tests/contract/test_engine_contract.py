"""The contract every engine passes: start → QR → WORKING, send → acks, receive, recover, stop."""

from __future__ import annotations

import pytest

from tests.conftest import require_service
from tests.contract.drivers import DRIVERS, EngineDriver
from tests.support.sink import RecordingSink, is_status
from zapgate.engines.base import (
    AckStatus,
    Capability,
    Engine,
    EngineNotReady,
    InboundMessage,
    Media,
    OutboundMessage,
    SessionConfig,
    SessionStatus,
)


@pytest.fixture(
    params=[
        pytest.param(d, marks=[pytest.mark.chromium] if d.name == "wppconnect" else [])
        for d in DRIVERS
    ],
    ids=[driver.name for driver in DRIVERS],
)
def driver(request: pytest.FixtureRequest) -> EngineDriver:
    chosen: EngineDriver = request.param
    require_service(chosen.available())
    return chosen


# A cold first start of Chromium on a loaded machine takes a while; the engine's own start
# timeout (30 s) reports FAILED before this gives up, so a failure names its reason.
FIRST_QR_SECONDS = 45.0


async def working(driver: EngineDriver) -> tuple[Engine, RecordingSink]:
    """A started, scanned engine; stopped again if it never gets there (no browser left behind)."""
    engine = driver.create()
    sink = RecordingSink()
    try:
        await engine.start(SessionConfig("default", "contract", driver.config), sink)
        await sink.wait_for(lambda r: r.kind == "qr", timeout=FIRST_QR_SECONDS)
        await driver.scan(engine)
        await sink.wait_for(is_status(SessionStatus.WORKING))
    except BaseException:
        await engine.stop()
        raise
    return engine, sink


async def test_start_shows_a_qr_then_works_after_the_scan(driver: EngineDriver) -> None:
    engine, sink = await working(driver)
    try:
        statuses = sink.statuses()
        assert statuses[0] is SessionStatus.STARTING
        assert SessionStatus.SCAN_QR_CODE in statuses
        assert statuses[-1] is SessionStatus.WORKING
        kinds = [r.kind for r in sink.reports]
        assert kinds.index("qr") < kinds.index("me")
        me = next(r.value for r in sink.reports if r.kind == "me")
        assert me["id"]
        assert {Capability.TEXT, Capability.QR} <= engine.capabilities
    finally:
        await engine.stop()


async def test_a_sent_text_is_acknowledged_in_order(driver: EngineDriver) -> None:
    engine, sink = await working(driver)
    try:
        receipt = await engine.send(OutboundMessage("msg_1", "5511999999999", "text", "Olá"))
        assert receipt.engine_message_id
        read = await sink.wait_for(
            lambda r: r.kind == "ack" and r.value == (receipt.engine_message_id, AckStatus.READ)
        )
        acks = [r.value[1] for r in sink.reports if r.kind == "ack" and r.value[0] == read.value[0]]
        progress = [a for a in acks if a in (AckStatus.DELIVERED, AckStatus.READ)]
        assert progress == [AckStatus.DELIVERED, AckStatus.READ]
        assert AckStatus.READ not in acks[: acks.index(AckStatus.DELIVERED)]
    finally:
        await engine.stop()


async def test_a_file_is_sent(driver: EngineDriver) -> None:
    engine, _ = await working(driver)
    try:
        media = Media("data:text/plain;base64,T2zDoSE=", "hello.txt", "a caption")
        receipt = await engine.send(OutboundMessage("msg_f", "5511999999999", "file", None, media))
        assert receipt.engine_message_id
        assert Capability.FILE in engine.capabilities
        await driver.check_file_sent(engine, "hello.txt")
    finally:
        await engine.stop()


async def test_an_inbound_message_is_reported(driver: EngineDriver) -> None:
    engine, sink = await working(driver)
    try:
        await driver.deliver(engine, "5511988887777", "Oi!")
        report = await sink.wait_for(lambda r: r.kind == "message")
        message: InboundMessage = report.value
        assert message.sender == "5511988887777"
        assert message.text == "Oi!"
        assert message.kind == "text"
        assert message.engine_message_id
    finally:
        await engine.stop()


async def test_a_dropped_connection_recovers_by_itself(driver: EngineDriver) -> None:
    engine, sink = await working(driver)
    try:
        await driver.disconnect(engine)
        await sink.wait_for(is_status(SessionStatus.DISCONNECTED))
        with pytest.raises(EngineNotReady):
            await engine.send(OutboundMessage("msg_2", "5511999999999", "text", "x"))
        position = len(sink.reports)
        await sink.wait_for(
            lambda r: (
                r.kind == "status"
                and r.value[0] is SessionStatus.WORKING
                and any(x is r for x in sink.reports[position:])
            )
        )
        receipt = await engine.send(OutboundMessage("msg_3", "5511999999999", "text", "back"))
        assert receipt.engine_message_id
    finally:
        await engine.stop()


async def test_logout_and_stop_end_everything(driver: EngineDriver) -> None:
    engine, _ = await working(driver)
    try:
        await engine.logout()
        with pytest.raises(EngineNotReady):
            await engine.send(OutboundMessage("msg_4", "5511999999999", "text", "x"))
    finally:
        await engine.stop()
    again = driver.create()
    sink = RecordingSink()
    try:
        await again.start(SessionConfig("default", "contract", driver.config), sink)
        await sink.wait_for(lambda r: r.kind == "qr")
    finally:
        await again.stop()
    reports = len(sink.reports)
    with pytest.raises(EngineNotReady):
        await again.send(OutboundMessage("msg_5", "5511999999999", "text", "x"))
    assert len(sink.reports) == reports, "a stopped engine kept reporting"
