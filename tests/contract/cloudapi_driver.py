"""The contract suite's driver for the Cloud API engine: the engine against the fake Graph
API, which calls back with signed callbacks (handed to the engine's own callback handler)."""

from __future__ import annotations

import hashlib
from typing import Any

from tests.contract.drivers import Delivered
from tests.support.fake_graph import FakeGraph
from zapgate.clock import SystemClock
from zapgate.engines.base import AckStatus, Engine, InboundMessage, OutboundMessage
from zapgate.engines.cloudapi.engine import CloudApiEngine
from zapgate.webhooks.ssrf import Allowlist

MAX_BYTES = 16 * 1024 * 1024


class CloudApiDriver:
    """Meta's side is the fake: statuses after each send, callbacks for what arrives."""

    name = "cloudapi"
    inbound_filenames = frozenset({"document"})
    """Meta's callbacks name only a document's file."""
    keeps_vcards = False
    """Meta's callbacks carry a card's fields, not its vCard (one is made from them)."""
    acks: tuple[AckStatus, ...] = (AckStatus.DELIVERED, AckStatus.READ)
    links_replies = True

    def sender_of(self, peer: str) -> str:
        return peer

    def __init__(self) -> None:
        self.fake = FakeGraph()
        self.config: dict[str, Any] = {}
        self._engine: CloudApiEngine | None = None

    def available(self) -> str | None:
        return None

    async def setup(self) -> None:
        self.fake = FakeGraph()
        await self.fake.start()
        self.config = {
            "phone_number_id": self.fake.phone_number_id,
            "access_token": self.fake.access_token,
            "app_secret": self.fake.app_secret,
            "verify_token": "contract-verify",
            "api_version": self.fake.version,
            "base_url": self.fake.url,
            "rate_per_second": 1000,
            "health_seconds": 1,
        }
        self.fake.callback = self._callback

    async def teardown(self) -> None:
        await self.fake.stop()
        assert self.fake.problems == [], "the engine sent what Meta would refuse"

    def create(self) -> Engine:
        self._engine = CloudApiEngine(Allowlist.parse("127.0.0.1"), SystemClock(), MAX_BYTES)
        return self._engine

    async def _callback(self, body: bytes, headers: dict[str, str]) -> int:
        if self._engine is None:
            return 503
        signature = {k.lower(): v for k, v in headers.items()}.get("x-hub-signature-256")
        await self._engine.handle_callback(body, signature)
        return 200

    async def scan(self, engine: Engine) -> None:
        """Nothing to scan."""

    async def deliver(self, engine: Engine, sender: str, text: str) -> None:
        message = {"from": sender, "type": "text", "text": {"body": text}}
        assert await self.fake.deliver(self.fake.inbound_value(message)) == 200

    async def deliver_message(self, engine: Engine, message: InboundMessage) -> None:
        assert await self.fake.deliver(self.fake.inbound_value(self._meta(message))) == 200

    def _meta(self, message: InboundMessage) -> dict[str, Any]:
        """``message`` as Meta's callback describes it."""
        kind = "contacts" if message.kind == "contact" else message.kind
        meta: dict[str, Any] = {"from": message.sender, "type": kind}
        if message.reply_to:
            meta["context"] = {"from": "5511955550100", "id": message.reply_to}
        if kind == "text":
            meta["text"] = {"body": message.text}
        elif message.media is not None:
            media = message.media
            item: dict[str, Any] = {
                "id": self.fake.add_media(media.data, media.mime_type, media.filename),
                "mime_type": media.mime_type,
                "sha256": hashlib.sha256(media.data).hexdigest(),
            }
            if message.text:
                item["caption"] = message.text
            if kind == "document" and media.filename:
                item["filename"] = media.filename
            if kind == "audio":
                item["voice"] = message.voice
            meta[kind] = item
        elif message.location is not None:
            place = message.location
            meta["location"] = {
                "latitude": place.latitude,
                "longitude": place.longitude,
                "name": place.name,
                "address": place.address,
            }
        elif message.contact is not None:
            card = message.contact
            phones = [
                {"phone": p, "wa_id": "".join(c for c in p if c.isdigit()), "type": "CELL"}
                for p in card.phones
            ]
            meta["contacts"] = [
                {"name": {"formatted_name": card.name, "first_name": card.name}, "phones": phones}
            ]
        elif kind == "reaction":
            meta["reaction"] = {"message_id": message.target, "emoji": message.emoji}
        return meta

    async def disconnect(self, engine: Engine) -> None:
        """Meta answers 500 to the next two calls (the engine's looks), then is back."""
        self.fake.outage_left = 2

    async def delivered(
        self, engine: Engine, message: OutboundMessage, engine_id: str
    ) -> Delivered:
        found = [sent for sent in self.fake.sends if sent.wamid == engine_id]
        assert found, f"Meta got no message {engine_id}"
        payload = found[-1].payload
        kind = payload["type"]
        item = payload[kind]
        media = sha = mime = filename = None
        if isinstance(item, dict) and "id" in item and kind not in ("reaction",):
            media = self.fake.uploads[item["id"]]
            sha = hashlib.sha256(media.data).hexdigest()
            mime, filename = media.mime_type, item.get("filename", media.filename)
        location = None
        if kind == "location":
            location = (item["latitude"], item["longitude"], item.get("name"), item.get("address"))
        contact = None
        if kind == "contacts":
            card = item[0]
            contact = (card["name"]["formatted_name"], card["phones"][0]["wa_id"])
        return Delivered(
            kind="contact" if kind == "contacts" else kind,
            to=payload["to"],
            text=item.get("body") if kind == "text" else (item.get("caption") if media else None),
            media_sha256=sha,
            mime_type=mime,
            filename=filename,
            voice=bool(item.get("voice")) if kind == "audio" else False,
            location=location,
            contact=contact,
            target=item.get("message_id") if kind == "reaction" else None,
            emoji=item.get("emoji") if kind == "reaction" else None,
            reply_to=payload.get("context", {}).get("message_id"),
            link_preview=bool(item.get("preview_url")) if kind == "text" else False,
        )
