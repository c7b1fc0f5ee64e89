"""zapgate's outbound messages in Meta's JSON for ``POST /{phone_number_id}/messages``."""

from __future__ import annotations

from typing import Any

from zapgate.engines.base import OutboundMessage, PermanentEngineError, UnsupportedMessageType

CAPTIONED = frozenset({"image", "video", "document"})
MEDIA_KINDS = frozenset({"image", "video", "audio", "document", "sticker"})
MAX_CAPTION = 1024
MAX_BODY = 4096


def message_json(message: OutboundMessage, media_id: str | None = None) -> dict[str, Any]:
    """The request body for ``message``; a file goes by ``media_id`` (uploaded first)."""
    if "@" in message.to and not message.to.endswith("@c.us"):
        raise PermanentEngineError(
            f"the Cloud API sends to phone numbers only, not to {message.to.split('@')[-1]} ids"
        )
    payload: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": _digits(message.to),
    }
    kind = message.kind
    if kind == "text":
        body = message.text or ""
        if len(body) > MAX_BODY:
            raise UnsupportedMessageType(f"cloudapi: a text has at most {MAX_BODY} characters")
        payload |= {"type": "text", "text": {"preview_url": message.link_preview, "body": body}}
    elif kind in MEDIA_KINDS:
        if media_id is None:
            raise UnsupportedMessageType(f"cloudapi: a {kind} message needs its file")
        item: dict[str, Any] = {"id": media_id}
        if kind in CAPTIONED and message.text:
            item["caption"] = message.text[:MAX_CAPTION]
        if kind == "document" and message.media is not None and message.media.filename:
            item["filename"] = message.media.filename
        if kind == "audio" and message.voice:
            item["voice"] = True
        payload |= {"type": kind, kind: item}
    elif kind == "location" and message.location is not None:
        place = message.location
        where: dict[str, Any] = {"latitude": place.latitude, "longitude": place.longitude}
        if place.name:
            where["name"] = place.name
        if place.address:
            where["address"] = place.address
        payload |= {"type": "location", "location": where}
    elif kind == "contact" and message.contact is not None:
        payload |= {"type": "contacts", "contacts": [_card(message.contact.name, message)]}
    elif kind == "reaction" and message.target is not None:
        reaction = {"message_id": message.target, "emoji": message.emoji or ""}
        payload |= {"type": "reaction", "reaction": reaction}
    elif kind == "template" and message.template is not None:
        payload |= {"type": "template", "template": message.template}
    elif kind == "interactive" and message.interactive is not None:
        payload |= {"type": "interactive", "interactive": message.interactive}
    else:
        raise UnsupportedMessageType(f"the cloudapi engine cannot send {kind!r} messages")
    if message.reply_to and kind != "reaction":
        payload["context"] = {"message_id": message.reply_to}
    return payload


def _card(name: str, message: OutboundMessage) -> dict[str, Any]:
    """A contact card: Meta wants a formatted name and one of its parts, and the phones."""
    assert message.contact is not None
    words = name.split()
    parts: dict[str, str] = {"formatted_name": name, "first_name": words[0] if words else name}
    if len(words) > 1:
        parts["last_name"] = " ".join(words[1:])
    phones = [
        {"phone": phone, "type": "CELL", "wa_id": _digits(phone)}
        for phone in message.contact.phones
        if _digits(phone)
    ]
    return {"name": parts, "phones": phones}


def _digits(address: str) -> str:
    """A number's digits (``+55 11 ...``, ``5511...@c.us`` alike)."""
    return "".join(ch for ch in address.split("@", 1)[0] if ch.isdigit())
