"""How the contract suite drives each engine: create it, scan, deliver, disconnect, and look at
what reached the far end of a send (the simulator's phone, the fake WhatsApp Web page)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import tempfile
import uuid
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from zapgate.clock import SystemClock, now_ms
from zapgate.engines.base import AckStatus, Engine, InboundMessage, Location, OutboundMessage
from zapgate.engines.simulator import SimulatorDefaults, SimulatorEngine
from zapgate.engines.wppconnect.engine import WppConnectEngine, WppOptions
from zapgate.engines.wppconnect.runtime import WppRuntime
from zapgate.phone import chat_id, number_of

FAKE_PAGE = Path(__file__).resolve().parents[1] / "wppconnect" / "fake_whatsapp.html"


@dataclass(frozen=True)
class Delivered:
    """What reached the far end of a send, in zapgate's words."""

    kind: str
    to: str
    text: str | None = None
    """The text, or a file's caption."""
    media_sha256: str | None = None
    mime_type: str | None = None
    filename: str | None = None
    voice: bool = False
    location: tuple[float, float, str | None, str | None] | None = None
    contact: tuple[str, str] | None = None
    """The card's name and WhatsApp number."""
    target: str | None = None
    emoji: str | None = None
    reply_to: str | None = None
    link_preview: bool = False


class EngineDriver(Protocol):
    """The test-side controls an engine offers (a fake phone, a fake page, a fake API)."""

    name: str
    config: dict[str, Any]
    inbound_filenames: frozenset[str] | None
    """The kinds whose received files keep their names (None: all)."""
    keeps_vcards: bool
    """Whether a received contact keeps its vCard text whole."""
    acks: tuple[AckStatus, ...]
    """What the far end reports of a sent message after ``sent``, in order (Telegram: none)."""

    links_replies: bool
    """Whether the channel links a message to the one it answers and shows link previews
    (SMS does neither: the suite then expects no link)."""

    def sender_of(self, peer: str) -> str:
        """How the engine names ``peer`` (a number, or a chat id) as a received message's
        sender."""

    def available(self) -> str | None: ...
    async def setup(self) -> None: ...
    async def teardown(self) -> None: ...
    def create(self) -> Engine: ...
    async def scan(self, engine: Engine) -> None: ...
    async def deliver(self, engine: Engine, sender: str, text: str) -> None: ...
    async def deliver_message(self, engine: Engine, message: InboundMessage) -> None:
        """Make ``message`` arrive (its sender, kind, text, media, ...; its id is the engine's)."""

    async def disconnect(self, engine: Engine) -> None: ...
    async def delivered(
        self, engine: Engine, message: OutboundMessage, engine_id: str
    ) -> Delivered:
        """What the far end got for ``message``, sent with receipt ``engine_id``."""


class SimulatorDriver:
    """The simulator's own hooks."""

    name = "simulator"
    inbound_filenames: frozenset[str] | None = None
    keeps_vcards = True
    acks: tuple[AckStatus, ...] = (AckStatus.DELIVERED, AckStatus.READ)
    links_replies = True

    def sender_of(self, peer: str) -> str:
        return peer

    async def setup(self) -> None:
        """Nothing to set up."""

    async def teardown(self) -> None:
        """Nothing to tear down."""

    config: dict[str, Any] = {  # noqa: RUF012 - read-only
        "pairing": "manual",
        "seed": 1,
        "delivered_latency": {"kind": "fixed", "seconds": 0.01},
        "read_latency": {"kind": "fixed", "seconds": 0.01},
        "reconnect_latency": {"kind": "fixed", "seconds": 0.05},
        "echo_contact": "",
    }

    def available(self) -> str | None:
        return None

    def create(self) -> Engine:
        return SimulatorEngine(SimulatorDefaults(), SystemClock())

    async def scan(self, engine: Engine) -> None:
        await _simulator(engine).simulate_scan()

    async def deliver(self, engine: Engine, sender: str, text: str) -> None:
        await _simulator(engine).inject_inbound(sender, text)

    async def deliver_message(self, engine: Engine, message: InboundMessage) -> None:
        simulator = _simulator(engine)
        await simulator.inject(
            replace(message, engine_message_id=f"sim_{uuid.uuid4().hex}", timestamp_ms=now_ms())
        )

    async def disconnect(self, engine: Engine) -> None:
        await _simulator(engine).force_disconnect()

    async def delivered(
        self, engine: Engine, message: OutboundMessage, engine_id: str
    ) -> Delivered:
        sent = next(m for m in _simulator(engine).recent_sends if m.id == message.id)
        media, place, card = sent.media, sent.location, sent.contact
        return Delivered(
            kind=sent.kind,
            to=sent.to,
            text=sent.text,
            media_sha256=sha256(media.data) if media else None,
            mime_type=media.mime_type if media else None,
            filename=media.filename if media else None,
            voice=sent.voice,
            location=(place.latitude, place.longitude, place.name, place.address)
            if place
            else None,
            contact=(card.name, _digits(card.phones[0])) if card else None,
            target=sent.target,
            emoji=sent.emoji,
            reply_to=sent.reply_to,
            link_preview=sent.link_preview,
        )


class WppConnectDriver:
    """The real library in real Chromium against the fake WhatsApp Web page."""

    name = "wppconnect"
    inbound_filenames: frozenset[str] | None = None
    keeps_vcards = True
    acks: tuple[AckStatus, ...] = (AckStatus.DELIVERED, AckStatus.READ)
    links_replies = True

    def sender_of(self, peer: str) -> str:
        return peer

    async def setup(self) -> None:
        """Nothing to set up."""

    async def teardown(self) -> None:
        """Nothing to tear down."""

    config: dict[str, Any] = {}  # noqa: RUF012 - read-only

    def __init__(self) -> None:
        self.runtime = WppRuntime()

    def available(self) -> str | None:
        return self.runtime.missing()

    def create(self) -> Engine:
        options = WppOptions(
            runtime=self.runtime,
            data_dir=Path(tempfile.mkdtemp(prefix="zg-contract-")),
            fake_page=FAKE_PAGE,
            start_timeout_seconds=30,
        )
        return WppConnectEngine(options, SystemClock())

    async def scan(self, engine: Engine) -> None:
        await _wpp(engine).fake("scan")
        await _wpp(engine).fake("autoAck", True)

    async def deliver(self, engine: Engine, sender: str, text: str) -> None:
        await _wpp(engine).fake("receive", {"from": chat_id(sender), "body": text})

    async def deliver_message(self, engine: Engine, message: InboundMessage) -> None:
        wpp = _wpp(engine)
        if message.kind == "reaction":
            await wpp.fake("react", message.target, message.emoji, chat_id(message.sender))
            return
        await wpp.fake("receive", fake_inbound(message))

    async def disconnect(self, engine: Engine) -> None:
        """The connection drops; WhatsApp Web reconnects by itself a moment later."""
        wpp = _wpp(engine)
        await wpp.fake("disconnect")
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, lambda: loop.create_task(wpp.fake("reconnect")))

    async def delivered(
        self, engine: Engine, message: OutboundMessage, engine_id: str
    ) -> Delivered:
        sent: list[dict[str, Any]] = await _wpp(engine).fake("sent")
        if message.kind == "reaction":
            found = [s for s in sent if s["type"] == "reaction" and s["msgId"] == message.target]
        else:
            found = [s for s in sent if s["id"] == engine_id]
        assert found, f"the page got no {message.kind} for {engine_id}: {sent}"
        return delivered_on_page(found[-1])


def fake_inbound(message: InboundMessage) -> dict[str, Any]:
    """The fake page's ``receive`` params for ``message``."""
    params: dict[str, Any] = {"from": chat_id(message.sender), "type": PAGE_TYPES[message.kind]}
    if message.kind == "audio" and message.voice:
        params["type"] = "ptt"
    if message.reply_to:
        params["quotedMsgId"] = message.reply_to
    if message.kind == "text":
        params["body"] = message.text
    if message.media is not None:
        params["data"] = base64.b64encode(message.media.data).decode()
        params["mimetype"] = message.media.mime_type
        params["filename"] = message.media.filename
        params["caption"] = message.text
    if message.location is not None:
        place = message.location
        params.update(lat=place.latitude, lng=place.longitude, name=place.name)
        params["address"] = place.address
    if message.contact is not None:
        params.update(vcard=message.contact.vcard, vcardName=message.contact.name)
    return params


PAGE_TYPES = {
    "text": "chat",
    "image": "image",
    "video": "video",
    "audio": "audio",
    "document": "document",
    "sticker": "sticker",
    "location": "location",
    "contact": "vcard",
}


def delivered_on_page(sent: dict[str, Any]) -> Delivered:
    """A record of the fake page's ``sent()`` in zapgate's words."""
    page_type = sent["type"]
    data = sent.get("data")
    kinds = {"chat": "text", "ptt": "audio", "vcard": "contact", "multi_vcard": "contact"}
    location = None
    if page_type == "location":
        location = (sent["lat"], sent["lng"], sent.get("name"), sent.get("address"))
    contact = None
    if page_type in ("vcard", "multi_vcard"):
        contact = (sent["contactName"], number_of(sent["contactId"]))
    return Delivered(
        kind=kinds.get(page_type, page_type),
        to=number_of(sent["to"]),
        text=sent.get("body") if page_type == "chat" else sent.get("caption"),
        media_sha256=sha256(base64.b64decode(data)) if data else None,
        mime_type=sent.get("mimetype"),
        filename=sent.get("filename"),
        voice=page_type == "ptt",
        location=location,
        contact=contact,
        target=sent.get("msgId"),
        emoji=sent.get("reaction"),
        reply_to=sent.get("quotedMsgId"),
        link_preview=bool(sent.get("linkPreview")),
    )


def _simulator(engine: Engine) -> SimulatorEngine:
    assert isinstance(engine, SimulatorEngine)
    return engine


def _wpp(engine: Engine) -> WppConnectEngine:
    assert isinstance(engine, WppConnectEngine)
    return engine


def _place(place: Location) -> tuple[float, float, str | None, str | None]:
    return (place.latitude, place.longitude, place.name, place.address)


def _digits(phone: str) -> str:
    return "".join(c for c in phone if c.isdigit())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- small but real files -------------------------------------------------------------------


def png() -> bytes:
    """A 2x2 RGB PNG."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    rows = b"".join(b"\x00" + bytes([200, 30, 30]) * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


WEBP = base64.b64decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")
"""A 1x1 lossless WebP."""


def pdf() -> bytes:
    """A one-page PDF with nothing on it."""
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 72 72]>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )


def ogg_opus() -> bytes:
    """The first page of an Ogg/Opus stream (its OpusHead), with a valid page checksum."""
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48000, 0, 0)
    page = b"OggS\x00\x02" + struct.pack("<qIII", 0, 0x5A47, 0, 0) + bytes([1, len(head)]) + head
    return page[:22] + struct.pack("<I", _ogg_crc(page)) + page[26:]


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def mp4() -> bytes:
    """An MP4 file's ``ftyp`` box and an empty ``mdat``."""
    ftyp = b"ftyp" + b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41"
    return struct.pack(">I", len(ftyp) + 4) + ftyp + struct.pack(">I", 8) + b"mdat"


def _drivers() -> list[EngineDriver]:
    from tests.contract.cloudapi_driver import CloudApiDriver  # they import this module
    from tests.contract.sms_driver import SmsDriver
    from tests.contract.telegram_driver import TelegramDriver

    return [SimulatorDriver(), WppConnectDriver(), CloudApiDriver(), TelegramDriver(), SmsDriver()]


DRIVERS: list[EngineDriver] = _drivers()
