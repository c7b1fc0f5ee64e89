"""The contract every engine passes: start → QR → WORKING, send → acks, receive, recover, stop;
every message type sent and received whole (files byte for byte), replies and reactions linked
to the engine ids of the messages they point at."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypedDict

import pytest

from tests.conftest import require_service
from tests.contract.drivers import (
    DRIVERS,
    WEBP,
    EngineDriver,
    mp4,
    ogg_opus,
    pdf,
    png,
    sha256,
)
from tests.support.sink import RecordingSink, is_status
from zapgate.engines.base import (
    MESSAGE_TYPES,
    AckStatus,
    Capability,
    Contact,
    Engine,
    EngineNotReady,
    InboundMessage,
    Location,
    Media,
    OutboundMessage,
    SessionConfig,
    SessionStatus,
    UnsupportedMessageType,
)


@pytest.fixture(
    params=[
        pytest.param(d, marks=[pytest.mark.chromium] if d.name == "wppconnect" else [])
        for d in DRIVERS
    ],
    ids=[driver.name for driver in DRIVERS],
)
async def driver(request: pytest.FixtureRequest) -> AsyncIterator[EngineDriver]:
    chosen: EngineDriver = request.param
    require_service(chosen.available())
    await chosen.setup()
    try:
        yield chosen
    finally:
        await chosen.teardown()


# A cold first start of Chromium on a loaded machine takes a while; the engine's own start
# timeout (30 s) reports FAILED before this gives up, so a failure names its reason.
FIRST_QR_SECONDS = 45.0


async def working(driver: EngineDriver) -> tuple[Engine, RecordingSink]:
    """A started, scanned engine; stopped again if it never gets there (no browser left behind)."""
    engine = driver.create()
    sink = RecordingSink()
    try:
        await engine.start(SessionConfig("default", "contract", driver.config), sink)
        if Capability.QR in engine.capabilities:
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
        assert statuses[-1] is SessionStatus.WORKING
        kinds = [r.kind for r in sink.reports]
        me = next(r.value for r in sink.reports if r.kind == "me")
        assert me["id"]
        assert Capability.TEXT in engine.capabilities
        if Capability.QR in engine.capabilities:
            assert SessionStatus.SCAN_QR_CODE in statuses
            assert kinds.index("qr") < kinds.index("me")
        else:  # nothing to pair (the Cloud API): the account is known before it works
            assert SessionStatus.SCAN_QR_CODE not in statuses
            assert "qr" not in kinds
            working_at = next(
                i for i, r in enumerate(sink.reports) if is_status(SessionStatus.WORKING)(r)
            )
            assert kinds.index("me") < working_at
    finally:
        await engine.stop()


async def test_a_sent_text_is_acknowledged_in_order(driver: EngineDriver) -> None:
    engine, sink = await working(driver)
    try:
        receipt = await engine.send(OutboundMessage("msg_1", "5511999999999", "text", "Olá"))
        assert receipt.engine_message_id
        if not driver.acks:  # no receipts (Telegram): the message stays sent
            await asyncio.sleep(0.3)
            assert [r for r in sink.reports if r.kind == "ack"] == []
            return
        last = await sink.wait_for(
            lambda r: r.kind == "ack" and r.value == (receipt.engine_message_id, driver.acks[-1])
        )
        acks = [r.value[1] for r in sink.reports if r.kind == "ack" and r.value[0] == last.value[0]]
        progress = [a for a in acks if a in (AckStatus.DELIVERED, AckStatus.READ)]
        assert progress == list(driver.acks)
        if AckStatus.READ in driver.acks:
            assert AckStatus.READ not in acks[: acks.index(AckStatus.DELIVERED)]
    finally:
        await engine.stop()


async def test_an_inbound_message_is_reported(driver: EngineDriver) -> None:
    engine, sink = await working(driver)
    try:
        await driver.deliver(engine, "5511988887777", "Oi!")
        report = await sink.wait_for(lambda r: r.kind == "message")
        message: InboundMessage = report.value
        assert message.sender == driver.sender_of("5511988887777")
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
        if Capability.QR in again.capabilities:  # logged out: to be paired again
            await sink.wait_for(lambda r: r.kind == "qr")
        else:
            await sink.wait_for(is_status(SessionStatus.WORKING))
    finally:
        await again.stop()
    reports = len(sink.reports)
    with pytest.raises(EngineNotReady):
        await again.send(OutboundMessage("msg_5", "5511999999999", "text", "x"))
    assert len(sink.reports) == reports, "a stopped engine kept reporting"


# -- every message type ---------------------------------------------------------------------

PEER = "5511988887777"
CARD = Contact(
    name="Ana Souza",
    phones=("+5511977776666",),
    vcard="BEGIN:VCARD\nVERSION:3.0\nN:;Ana Souza;;;\nFN:Ana Souza\n"
    "TEL;type=CELL;waid=5511977776666:+5511977776666\nEND:VCARD",
)
PLACE = Location(-22.951916, -43.2104872, "Cristo Redentor", "Parque Nacional da Tijuca, RJ")


class Fields(TypedDict):
    text: str | None
    media: Media | None
    voice: bool
    location: Location | None
    contact: Contact | None


def rich(kind: str) -> Fields:
    """The fields of a ``kind`` message (text, media, voice, location, contact), both ways."""
    files = {
        "image": Media(png(), "image/png", "photo.png"),
        "video": Media(mp4(), "video/mp4", "clip.mp4"),
        "audio": Media(ogg_opus(), "audio/ogg", "voice.ogg"),
        "document": Media(pdf(), "application/pdf", "report.pdf"),
        "sticker": Media(WEBP, "image/webp", None),
    }
    captions = {"image": "a photo", "video": "a clip", "document": "the report"}
    return {
        "text": "Olá 👋 https://zapgate.example" if kind == "text" else captions.get(kind),
        "media": files.get(kind),
        "voice": kind == "audio",
        "location": PLACE if kind == "location" else None,
        "contact": CARD if kind == "contact" else None,
    }


@pytest.mark.parametrize("kind", MESSAGE_TYPES)
async def test_each_type_is_sent_whole_and_linked(driver: EngineDriver, kind: str) -> None:
    engine, sink = await working(driver)
    try:
        if Capability(kind) not in engine.capabilities:  # another channel's (SMS: text only)
            with pytest.raises(UnsupportedMessageType, match=driver.name):
                await engine.send(OutboundMessage("msg_" + kind, PEER, kind, **rich(kind)))
            return
        await driver.deliver(engine, PEER, "the message answered")
        inbound = (await sink.wait_for(lambda r: r.kind == "message")).value.engine_message_id
        fields = rich(kind)
        if kind == "reaction":
            message = OutboundMessage("msg_r", PEER, kind, None, target=inbound, emoji="👍")
        else:
            message = OutboundMessage(
                "msg_" + kind, PEER, kind, reply_to=inbound, link_preview=kind == "text", **fields
            )
        receipt = await engine.send(message)
        assert receipt.engine_message_id
        got = await driver.delivered(engine, message, receipt.engine_message_id)
        assert (got.kind, got.to) == (kind, PEER)
        if kind == "reaction":
            assert (got.target, got.emoji) == (inbound, "👍")
            return
        assert got.reply_to == (inbound if driver.links_replies else None)
        assert got.text == fields["text"]
        media = fields["media"]
        if media is not None:
            assert got.media_sha256 == sha256(media.data), "the file changed on the way"
            if media.filename:
                assert got.filename == media.filename
            assert got.voice is (kind == "audio")
        if kind == "text":
            assert got.link_preview is driver.links_replies
        if kind == "location":
            assert got.location == (PLACE.latitude, PLACE.longitude, PLACE.name, PLACE.address)
        if kind == "contact":
            assert got.contact == (CARD.name, "5511977776666")
    finally:
        await engine.stop()


@pytest.mark.parametrize("kind", MESSAGE_TYPES)
async def test_each_type_is_received_whole_and_linked(driver: EngineDriver, kind: str) -> None:
    engine, sink = await working(driver)
    try:
        if Capability(kind) not in engine.capabilities:
            pytest.skip(f"the {driver.name} engine's channel carries no {kind} messages")
        mine = await engine.send(OutboundMessage("msg_q", PEER, "text", "the message quoted"))
        quoted = mine.engine_message_id
        if kind == "reaction":
            sent = InboundMessage("", PEER, "", kind, None, 0, target=quoted, emoji="❤️")
        else:
            sent = InboundMessage("", PEER, "", kind, timestamp_ms=0, reply_to=quoted, **rich(kind))
        await driver.deliver_message(engine, sent)
        got: InboundMessage = (
            await sink.wait_for(lambda r: r.kind == "message" and r.value.kind == kind)
        ).value
        assert got.engine_message_id
        assert got.sender == driver.sender_of(PEER)
        if kind == "reaction":
            assert (got.target, got.emoji) == (quoted, "❤️")
            return
        assert got.reply_to == (quoted if driver.links_replies else None)
        assert got.text == sent.text
        assert got.voice is sent.voice
        assert got.location == sent.location
        if driver.keeps_vcards or sent.contact is None or got.contact is None:
            assert got.contact == sent.contact
        else:
            assert (got.contact.name, got.contact.phones) == (
                sent.contact.name,
                sent.contact.phones,
            )
        if sent.media is not None:
            assert got.media is not None
            assert sha256(got.media.data) == sha256(sent.media.data), "the file changed"
            assert got.media.mime_type == sent.media.mime_type
            if driver.inbound_filenames is None or kind in driver.inbound_filenames:
                assert got.media.filename == sent.media.filename
    finally:
        await engine.stop()


async def test_a_removed_reaction_reaches_the_far_end(driver: EngineDriver) -> None:
    engine, sink = await working(driver)
    try:
        if Capability.REACTION not in engine.capabilities:
            pytest.skip(f"the {driver.name} engine's channel has no reactions")
        await driver.deliver(engine, PEER, "a message reacted to")
        inbound = (await sink.wait_for(lambda r: r.kind == "message")).value.engine_message_id
        removal = OutboundMessage("msg_x", PEER, "reaction", None, target=inbound, emoji="")
        receipt = await engine.send(removal)
        assert receipt.engine_message_id
        got = await driver.delivered(engine, removal, receipt.engine_message_id)
        assert (got.kind, got.target, got.emoji or "") == ("reaction", inbound, "")
    finally:
        await engine.stop()


async def test_a_type_the_engine_does_not_know_is_refused(driver: EngineDriver) -> None:
    engine, _ = await working(driver)
    try:
        with pytest.raises(UnsupportedMessageType, match=driver.name):
            await engine.send(OutboundMessage("msg_p", PEER, "hologram", "Lunch?"))
    finally:
        await engine.stop()
