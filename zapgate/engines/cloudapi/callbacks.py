"""Meta's callbacks: the signature checked first, then messages, statuses and errors reported.

Meta POSTs ``{"object": "whatsapp_business_account", "entry": [{"changes": [{"field":
"messages", "value": {...}}]}]}`` signed with the app secret in ``X-Hub-Signature-256``. A value
holds received ``messages`` (with the sender's ``contacts``), ``statuses`` of sent ones, or
``errors``. Fields zapgate does not map are kept in the message's ``raw``; unknown kinds of
messages are kept too (as a text without text), and unknown fields never fail a callback.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from zapgate.clock import now_ms
from zapgate.engines.base import (
    AckStatus,
    Contact,
    EngineEvent,
    InboundMessage,
    Location,
    Media,
    SendFailed,
)
from zapgate.engines.cloudapi.errors import GraphError, from_status
from zapgate.engines.fields import items as _list
from zapgate.engines.fields import number as _number
from zapgate.engines.fields import text as _str

log = logging.getLogger(__name__)
MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")
ACKS = {
    "sent": AckStatus.SENT,
    "delivered": AckStatus.DELIVERED,
    "read": AckStatus.READ,
    "played": AckStatus.PLAYED,  # a voice message, the first time it is played
}
SIGNATURE_HEADER = "x-hub-signature-256"


class BadSignature(Exception):
    """The callback is not signed with the session's app secret."""


class BadCallback(Exception):
    """The body is not a callback (not JSON, or not an object)."""


class CallbackSink(Protocol):
    """Where a callback's contents go: the session's messages and events."""

    async def message(self, message: InboundMessage) -> str: ...
    async def ack(self, engine_message_id: str, status: AckStatus) -> None: ...
    async def event(self, event: EngineEvent) -> None: ...


Download = Callable[[str], Awaitable[tuple[bytes, str | None]]]
"""A received file's bytes and type by its media id."""


@dataclass(slots=True)
class Handled:
    """What a callback held: counts, for the answer and the log."""

    messages: int = 0
    statuses: int = 0
    errors: list[str] = field(default_factory=list)
    other_numbers: set[str] = field(default_factory=set)
    """Phone number ids of changes meant for another number (not this session's)."""


def signature_of(body: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends for ``body``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str | None, app_secret: str) -> None:
    """BadSignature unless ``header`` is ``sha256=<hex HMAC-SHA256 of body>`` (in constant
    time)."""
    expected = signature_of(body, app_secret)
    given = (header or "").strip()
    if not hmac.compare_digest(expected.encode(), given.lower().encode("ascii", "replace")):
        raise BadSignature("X-Hub-Signature-256 is missing or wrong")


def parse(body: bytes) -> list[dict[str, Any]]:
    """The ``value`` of each ``messages`` change (BadCallback when the body is not JSON)."""
    try:
        document = json.loads(body)
    except ValueError:
        raise BadCallback("the body is not JSON") from None
    if not isinstance(document, dict):
        raise BadCallback("the body is not a JSON object")
    values = []
    for entry in _list(document.get("entry")):
        for change in _list(entry.get("changes") if isinstance(entry, dict) else None):
            if (
                isinstance(change, dict)
                and isinstance(change.get("value"), dict)
                and change.get("field", "messages") == "messages"
            ):
                values.append(change["value"])
    return values


def phone_number_id(value: dict[str, Any]) -> str | None:
    """The phone number a change is about (Meta sends every number of an app to one URL)."""
    metadata = value.get("metadata")
    found = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
    return str(found) if found is not None else None


async def report(
    value: dict[str, Any], sink: CallbackSink, download: Download, handled: Handled
) -> None:
    """Report one change's messages, statuses and errors to ``sink``."""
    metadata = _dict(value.get("metadata"))
    own = _digits(str(metadata.get("display_phone_number", "")))
    names = {
        str(c.get("wa_id")): c.get("profile", {}).get("name")
        for c in _list(value.get("contacts"))
        if isinstance(c, dict) and isinstance(c.get("profile"), dict)
    }
    for message in _list(value.get("messages")):
        if isinstance(message, dict) and message.get("id") and message.get("from"):
            inbound = await _inbound(message, own, names.get(str(message["from"])), download)
            await sink.message(inbound)
            handled.messages += 1
    for status in _list(value.get("statuses")):
        if not isinstance(status, dict) or not isinstance(status.get("id"), str):
            continue
        wamid, said = status["id"], status.get("status")
        if said in ACKS:
            await sink.ack(wamid, ACKS[said])
        elif said == "failed":
            reason = str(from_status(status.get("errors")))
            await sink.event(SendFailed(wamid, reason, _ms(status.get("timestamp"))))
        handled.statuses += 1
    for error in _list(value.get("errors")):
        handled.errors.append(str(from_status([error])))
    if handled.errors:
        log.warning("the Cloud API reported errors: %s", "; ".join(handled.errors))


async def _inbound(
    message: dict[str, Any], own: str, name: str | None, download: Download
) -> InboundMessage:
    """A received message in zapgate's terms; Meta's object is kept as ``raw``."""
    kind = str(message.get("type", ""))
    text: str | None = None
    media = location = contact = None
    voice = False
    target = emoji = None
    item = _dict(message.get(kind))
    if kind == "text":
        text = _str(item.get("body"))
    elif kind in MEDIA_KINDS:
        media, note = await _file(item, download)
        text = _str(item.get("caption"))
        voice = kind == "audio" and bool(item.get("voice"))
        if note:
            message = {**message, "media_error": note}
    elif kind == "location":
        location = _location(item)
    elif kind == "contacts":
        kind, contact = "contact", _contact(message.get("contacts"))
    elif kind == "reaction":
        target, emoji = _str(item.get("message_id")), _str(item.get("emoji")) or ""
    elif kind == "interactive":
        reply = _dict(item.get("button_reply") or item.get("list_reply"))
        text = _str(reply.get("title"))
        kind = "text"
    elif kind == "button":
        text, kind = _str(item.get("text")), "text"
    if kind not in ("text", "contact", "location", "reaction", *MEDIA_KINDS):
        kind = "text"  # order, system, unsupported, ...: kept, with Meta's object as raw
    if location is None and kind == "location":
        kind = "text"
    context = _dict(message.get("context"))
    raw = {**message, "profile_name": name} if name else message
    return InboundMessage(
        engine_message_id=str(message["id"]),
        sender=_digits(str(message["from"])),
        recipient=own,
        kind=kind,
        text=text,
        timestamp_ms=_ms(message.get("timestamp")) or now_ms(),
        media=media,
        voice=voice,
        location=location,
        contact=contact,
        target=target,
        emoji=emoji,
        reply_to=_str(context.get("id")) if kind != "reaction" else None,
        raw=raw,
        once=True,
    )


async def _file(item: dict[str, Any], download: Download) -> tuple[Media | None, str | None]:
    """The file of a media message, or why it could not be had (the message is kept)."""
    media_id = item.get("id")
    if not isinstance(media_id, str) or not media_id:
        return None, "the callback names no file"
    try:
        data, served_as = await download(media_id)
    except GraphError as error:
        return None, str(error)
    mime = _str(item.get("mime_type")) or served_as or "application/octet-stream"
    return Media(data, mime.split(";")[0].strip(), _str(item.get("filename"))), None


def _location(item: dict[str, Any]) -> Location | None:
    latitude, longitude = _number(item.get("latitude")), _number(item.get("longitude"))
    if latitude is None or longitude is None:
        return None
    return Location(latitude, longitude, _str(item.get("name")), _str(item.get("address")))


def _contact(cards: Any) -> Contact | None:
    """The first card (the rest stay in ``raw``), with a vCard made from it."""
    card = next((c for c in _list(cards) if isinstance(c, dict)), None)
    if card is None:
        return None
    named = _dict(card.get("name"))
    name = _str(named.get("formatted_name")) or _str(named.get("first_name")) or ""
    phones = []
    for entry in _list(card.get("phones")):
        if isinstance(entry, dict):
            phone = _str(entry.get("phone")) or (
                f"+{entry['wa_id']}" if entry.get("wa_id") else None
            )
            if phone:
                phones.append((phone, _str(entry.get("wa_id")) or _digits(phone)))
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"FN:{name}"]
    lines += [f"TEL;type=CELL;waid={wa_id}:{phone}" for phone, wa_id in phones]
    lines.append("END:VCARD")
    return Contact(name, tuple(phone for phone, _ in phones), "\n".join(lines))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _ms(seconds: Any) -> int:
    try:
        return int(float(seconds) * 1000)
    except (TypeError, ValueError):
        return 0
