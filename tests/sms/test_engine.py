"""The SMS engine on its own, against the fake Twilio API: WORKING once the credentials check
passes (its ``me`` without the token), FAILED with the provider's reason when they are wrong,
DISCONNECTED while the provider is down and back by itself; sends shaped as Twilio documents
them, and Twilio's errors sorted by code."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.sms.conftest import PEER, config_for
from tests.support.fake_twilio import FakeTwilio
from tests.support.sink import RecordingSink, is_status
from zapgate.engines.base import (
    EngineNotReady,
    OutboundMessage,
    PermanentEngineError,
    SessionConfig,
    SessionStatus,
    TransientEngineError,
    UnsupportedMessageType,
)
from zapgate.engines.sms.engine import SmsEngine
from zapgate.webhooks.ssrf import Allowlist

PUBLIC = "https://zapgate.example.com"
CALLBACK = f"{PUBLIC}/api/v1/sms/default/sms-br/webhook"


async def started(twilio: FakeTwilio, **overrides: object) -> tuple[SmsEngine, RecordingSink]:
    engine = SmsEngine(Allowlist.parse("127.0.0.1"))
    sink = RecordingSink()
    config = config_for(twilio, PUBLIC, **overrides)
    await engine.start(SessionConfig("default", "sms-br", config), sink)
    return engine, sink


@pytest.fixture
async def working(twilio: FakeTwilio) -> AsyncIterator[tuple[SmsEngine, RecordingSink]]:
    twilio.auto_status = False  # the callback URL is not served here
    engine, sink = await started(twilio)
    try:
        await sink.wait_for(is_status(SessionStatus.WORKING))
        yield engine, sink
    finally:
        await engine.stop()


async def test_it_works_once_the_account_answers_and_shows_the_sender(
    working: tuple[SmsEngine, RecordingSink], twilio: FakeTwilio
) -> None:
    _, sink = working
    assert sink.statuses() == [SessionStatus.STARTING, SessionStatus.WORKING]
    me = next(r.value for r in sink.reports if r.kind == "me")
    assert me["id"] == twilio.number
    assert me["name"] == "Zapgate Test"
    assert me["account_status"] == "active"
    assert twilio.auth_token not in str(me)  # Twilio's account resource carries it


async def test_wrong_credentials_fail_the_session_with_twilios_reason(twilio: FakeTwilio) -> None:
    engine, sink = await started(twilio, auth_token="not-the-token")
    try:
        failed = await sink.wait_for(is_status(SessionStatus.FAILED))
    finally:
        await engine.stop()
    assert "20003" in failed.value[1]
    assert "auth token is wrong" in failed.value[1]
    assert "not-the-token" not in failed.value[1]
    assert sink.statuses() == [SessionStatus.STARTING, SessionStatus.FAILED]


async def test_a_start_while_twilio_is_down_waits_disconnected_then_works(
    twilio: FakeTwilio,
) -> None:
    twilio.outage = True
    engine, sink = await started(twilio)
    try:
        await sink.wait_for(is_status(SessionStatus.DISCONNECTED))
        twilio.outage = False
        await sink.wait_for(is_status(SessionStatus.WORKING))
    finally:
        await engine.stop()
    assert sink.statuses() == [
        SessionStatus.STARTING,
        SessionStatus.DISCONNECTED,
        SessionStatus.WORKING,
    ]


async def test_an_unreachable_provider_is_disconnected_not_failed() -> None:
    engine = SmsEngine(Allowlist.parse("127.0.0.1"))
    sink = RecordingSink()
    config = {"account_sid": "AC1", "auth_token": "t", "from": "+15005550006"}
    config["api_base"] = "http://127.0.0.1:9"  # nothing listens there
    await engine.start(SessionConfig("default", "sms-br", config), sink)
    try:
        down = await sink.wait_for(is_status(SessionStatus.DISCONNECTED))
    finally:
        await engine.stop()
    assert "cannot reach the SMS provider" in down.value[1]


async def test_a_text_is_sent_as_twilio_documents_it(
    working: tuple[SmsEngine, RecordingSink], twilio: FakeTwilio
) -> None:
    engine, _ = working
    receipt = await engine.send(OutboundMessage("msg_1", PEER, "text", "Olá, mundo"))
    assert receipt.engine_message_id.startswith("SM")
    assert len(receipt.engine_message_id) == 34
    sent = twilio.sends[-1]
    assert sent.sid == receipt.engine_message_id
    assert sent.params == {
        "To": PEER,
        "From": twilio.number,
        "Body": "Olá, mundo",
        "StatusCallback": CALLBACK,
    }
    # a number without its "+", as the contract suite gives it, is still E.164 to Twilio
    await engine.send(OutboundMessage("msg_2", PEER.lstrip("+"), "text", "x"))
    assert twilio.sends[-1].params["To"] == PEER


async def test_a_messaging_service_is_sent_as_messaging_service_sid(twilio: FakeTwilio) -> None:
    twilio.auto_status = False
    engine, sink = await started(twilio, **{"from": twilio.service_sid})
    try:
        await sink.wait_for(is_status(SessionStatus.WORKING))
        await engine.send(OutboundMessage("msg_1", PEER, "text", "via the pool"))
    finally:
        await engine.stop()
    params = twilio.sends[-1].params
    assert params["MessagingServiceSid"] == twilio.service_sid
    assert "From" not in params
    me = next(r.value for r in sink.reports if r.kind == "me")
    assert me["id"] == twilio.service_sid


async def test_only_texts_are_sent(working: tuple[SmsEngine, RecordingSink]) -> None:
    engine, _ = working
    for kind in ("image", "location", "reaction", "hologram"):
        with pytest.raises(UnsupportedMessageType, match="sms"):
            await engine.send(OutboundMessage("msg_x", PEER, kind, "x"))
    with pytest.raises(PermanentEngineError, match="1600"):
        await engine.send(OutboundMessage("msg_l", PEER, "text", "a" * 1601))
    with pytest.raises(PermanentEngineError, match=r"E\.164"):
        await engine.send(OutboundMessage("msg_n", "+0123", "text", "x"))


async def test_twilios_errors_are_sorted_by_code(
    working: tuple[SmsEngine, RecordingSink], twilio: FakeTwilio
) -> None:
    engine, sink = working
    twilio.fail_sends(20429, http_status=429)
    with pytest.raises(TransientEngineError, match="20429"):
        await engine.send(OutboundMessage("msg_1", PEER, "text", "x"))
    twilio.fail_sends(20500, http_status=500)
    with pytest.raises(TransientEngineError):
        await engine.send(OutboundMessage("msg_2", PEER, "text", "x"))
    twilio.unsubscribed.add(PEER)
    with pytest.raises(PermanentEngineError, match="21610") as stop:
        await engine.send(OutboundMessage("msg_3", PEER, "text", "x"))
    assert not stop.value.transient
    assert "unsubscribed" in str(stop.value)
    twilio.landlines.add("+551133334444")
    with pytest.raises(PermanentEngineError, match="21614"):
        await engine.send(OutboundMessage("msg_4", "+551133334444", "text", "x"))
    assert SessionStatus.FAILED not in sink.statuses()


async def test_a_rotated_token_fails_the_session_and_its_messages_wait(
    working: tuple[SmsEngine, RecordingSink], twilio: FakeTwilio
) -> None:
    engine, sink = working
    twilio.auth_token = "rotated-in-the-console"
    with pytest.raises(EngineNotReady, match="20003"):
        await engine.send(OutboundMessage("msg_1", PEER, "text", "x"))
    await sink.wait_for(is_status(SessionStatus.FAILED))
    with pytest.raises(EngineNotReady):
        await engine.send(OutboundMessage("msg_2", PEER, "text", "x"))
