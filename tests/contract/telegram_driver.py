"""The contract suite's driver for the Telegram engine: the engine against the fake Bot API,
long-polling it for updates (as a session without a public URL does)."""

from __future__ import annotations

from typing import Any

from tests.contract.drivers import Delivered, sha256
from tests.support.fake_telegram import FakeTelegram
from zapgate.clock import SystemClock
from zapgate.engines.base import AckStatus, Engine, InboundMessage, OutboundMessage
from zapgate.engines.telegram.engine import TelegramEngine
from zapgate.webhooks.ssrf import Allowlist

MAX_BYTES = 16 * 1024 * 1024
FOLDERS = {"video": "videos", "document": "documents", "sticker": "stickers"}


class TelegramDriver:
    """Telegram's side is the fake: updates wait there for the engine's ``getUpdates``."""

    name = "telegram"
    inbound_filenames: frozenset[str] | None = frozenset({"document", "video"})
    """Telegram names a document's and a video's file, not a photo's, a voice note's or a
    sticker's."""
    keeps_vcards = True
    acks: tuple[AckStatus, ...] = ()
    """Telegram has no delivery or read receipts."""
    links_replies = True

    def __init__(self) -> None:
        self.fake = FakeTelegram()
        self.config: dict[str, Any] = {}

    def sender_of(self, peer: str) -> str:
        return f"{peer}@telegram"

    def available(self) -> str | None:
        return None

    async def setup(self) -> None:
        self.fake = FakeTelegram()
        await self.fake.start()
        self.config = {
            "bot_token": self.fake.token,
            "api_base": self.fake.url,
            "mode": "polling",
            "poll_timeout_seconds": 1,
            "health_seconds": 1,
        }

    async def teardown(self) -> None:
        await self.fake.stop()
        assert self.fake.problems == [], "the engine sent what Telegram would refuse"

    def create(self) -> Engine:
        return TelegramEngine(Allowlist.parse("127.0.0.1"), SystemClock(), MAX_BYTES)

    async def scan(self, engine: Engine) -> None:
        """Nothing to scan."""

    async def deliver(self, engine: Engine, sender: str, text: str) -> None:
        message = self.fake.user_message(int(sender), text=text)
        self.fake.queue(self.fake.update(message=message))

    async def deliver_message(self, engine: Engine, message: InboundMessage) -> None:
        chat = int(message.sender)
        if message.kind == "reaction":
            assert message.target is not None
            _, target = message.target.split(":")
            update = self.fake.reaction_update(chat, int(target), [message.emoji or ""])
            self.fake.queue(update)
            return
        content = self._content(message)
        if message.reply_to:
            _, replied = message.reply_to.split(":")
            content["reply_to_message"] = self.fake.messages[(chat, int(replied))]
        self.fake.queue(self.fake.update(message=self.fake.user_message(chat, **content)))

    def _content(self, message: InboundMessage) -> dict[str, Any]:
        """``message`` as the fields of Telegram's Message."""
        kind, media = message.kind, message.media
        if kind == "text":
            return {"text": message.text}
        content: dict[str, Any] = {}
        if media is not None:
            data, mime, name = media.data, media.mime_type, media.filename
            if kind == "image":
                content["photo"] = self.fake.photo_sizes(data, mime)
            elif kind == "audio" and message.voice:
                content["voice"] = self.fake.file_object(data, mime, "voice", duration=1)
            elif kind == "audio":
                content["audio"] = self.fake.file_object(data, mime, "music", name, duration=1)
            elif kind == "sticker":
                sticker = {"type": "regular", "width": 512, "height": 512, "is_animated": False}
                content["sticker"] = self.fake.file_object(
                    data, mime, "stickers", None, **sticker, is_video=False
                )
            else:
                content[kind] = self.fake.file_object(data, mime, FOLDERS[kind], name)
            if message.text:
                content["caption"] = message.text
        elif message.location is not None:
            place = message.location
            point = {"latitude": place.latitude, "longitude": place.longitude}
            content["location"] = point
            if place.name or place.address:
                content["venue"] = {
                    "location": point,
                    "title": place.name,
                    "address": place.address,
                }
        elif message.contact is not None:
            card = message.contact
            first, _, last = card.name.partition(" ")
            contact = {"phone_number": card.phones[0], "first_name": first, "vcard": card.vcard}
            if last:
                contact["last_name"] = last
            content["contact"] = contact
        return content

    async def disconnect(self, engine: Engine) -> None:
        """The Bot API answers 502 to the next two calls (the long poll waiting now, and the
        next), then is back."""
        self.fake.disconnect(2)

    async def delivered(
        self, engine: Engine, message: OutboundMessage, engine_id: str
    ) -> Delivered:
        if message.kind == "reaction":
            assert message.target is not None
            chat, target = (int(part) for part in message.target.split(":")[:2])
            found = [
                r for r in self.fake.reactions if (r["chat"], r["message_id"]) == (chat, target)
            ]
            assert found, f"Telegram got no reaction on {message.target}"
            emoji = [r["emoji"] for r in found[-1].get("reaction", [])]
            return Delivered(
                kind="reaction",
                to=str(found[-1]["chat_id"]),
                target=message.target,
                emoji=emoji[0] if emoji else "",
            )
        chat_id, message_id = (int(part) for part in engine_id.split(":"))
        calls = [c for c in self.fake.calls if isinstance(c.result, dict) and "chat" in c.result]
        call = next(
            (
                c
                for c in calls
                if (c.result["chat"]["id"], c.result["message_id"]) == (chat_id, message_id)
            ),
            None,
        )
        assert call is not None, f"Telegram got no message {engine_id}"
        return _delivered(call.method, call.params, call.files, chat_id)


def _delivered(method: str, params: dict[str, Any], files: dict[str, Any], chat: int) -> Delivered:
    """A send's call in zapgate's words."""
    kinds = {
        "sendMessage": "text",
        "sendPhoto": "image",
        "sendVideo": "video",
        "sendAudio": "audio",
        "sendVoice": "audio",
        "sendDocument": "document",
        "sendSticker": "sticker",
        "sendLocation": "location",
        "sendVenue": "location",
        "sendContact": "contact",
    }
    upload = next(iter(files.values()), None)
    location = None
    if method in ("sendLocation", "sendVenue"):
        location = (
            params["latitude"],
            params["longitude"],
            params.get("title"),
            params.get("address"),
        )
    contact = None
    if method == "sendContact":
        name = " ".join(p for p in (params["first_name"], params.get("last_name")) if p)
        contact = (name, "".join(c for c in params["phone_number"] if c.isdigit()))
    reply = params.get("reply_parameters")
    preview = params.get("link_preview_options", {})
    return Delivered(
        kind=kinds[method],
        to=str(chat),
        text=params.get("text") if method == "sendMessage" else params.get("caption"),
        media_sha256=sha256(upload.data) if upload else None,
        mime_type=upload.mime_type if upload else None,
        filename=upload.filename if upload else None,
        voice=method == "sendVoice",
        location=location,
        contact=contact,
        reply_to=f"{reply.get('chat_id', chat)}:{reply['message_id']}" if reply else None,
        link_preview=method == "sendMessage" and not preview.get("is_disabled", False),
    )
