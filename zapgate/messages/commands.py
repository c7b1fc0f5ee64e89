"""The send use cases, shared by every route that sends: a text, or any type of message."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zapgate.channels import Channel, recipient
from zapgate.db.committer import UnitOfWork
from zapgate.engines.sms.segments import sms_fields
from zapgate.errors import (
    InvalidFallback,
    InvalidInput,
    InvalidInteractive,
    MessageNotFound,
    NotWhatsApp,
    SessionNotFound,
    UnsupportedMessageType,
)
from zapgate.fallbacks import repository as fallbacks
from zapgate.media.model import MediaDraft
from zapgate.messages.model import Message
from zapgate.messages.schemas import (
    ContactCard,
    ContactVcard,
    Fallback,
    MediaSource,
    SendAudio,
    SendContact,
    SendInteractive,
    SendLocation,
    SendMessage,
    SendPoll,
    SendReaction,
    SendSticker,
    SendTemplate,
    SendText,
    _MediaSend,
    interactive_problem,
)
from zapgate.messages.service import WriteGuard
from zapgate.phone import chat_id
from zapgate.services import Services


async def channel_chat(services: Services, tenant: str, session: str, raw: str) -> str | None:
    """The chat id ``raw`` names on a Telegram or SMS session (its address, or its chat id
    whole); None on a WhatsApp session, whose chats the caller parses as before."""
    found = await services.sessions.require(tenant, session)
    channel = services.sessions.channel(found)
    if channel == Channel.WHATSAPP:
        return None
    return chat_id(recipient(channel, raw, services.settings.default_country_code))


@dataclass(frozen=True, slots=True)
class Upload:
    """A file sent as a multipart part: its bytes, and what the client called it."""

    data: bytes
    filename: str | None
    content_type: str | None


async def send_text(
    services: Services,
    tenant: str,
    session: str,
    to: str,
    text: str,
    claim: WriteGuard | None = None,
    *,
    whatsapp_only: bool = False,
) -> Message:
    """Check the session exists, normalise ``to`` for its channel, queue the text; raises
    AppError subclasses."""
    found = await services.sessions.require(tenant, session)
    channel = services.sessions.channel(found)
    if whatsapp_only and channel != Channel.WHATSAPP:
        raise NotWhatsApp(f"session {session!r} is a {channel} session, not WhatsApp")
    number = recipient(channel, to, services.settings.default_country_code)
    own = services.sessions.own_number(tenant, session)
    content = sms_fields(text) if channel == Channel.SMS else None
    return await services.messages.accept(
        tenant, session, own, number, text, claim, content=content
    )


async def send(
    services: Services,
    tenant: str,
    session: str,
    body: SendMessage,
    claim: WriteGuard | None = None,
    upload: Upload | None = None,
) -> Message:
    """Queue a message of any type: check the session can send it and what it refers to, take
    its file in (uploaded, in base64 or by URL), then queue it like a text."""
    if (
        isinstance(body, SendText)
        and body.reply_to is None
        and body.link_preview is None
        and body.fallback is None
    ):
        return await send_text(services, tenant, session, body.to, body.text, claim)
    found = await services.sessions.require(tenant, session)
    channel = services.sessions.channel(found)
    number = recipient(channel, body.to, services.settings.default_country_code)
    if body.type not in services.sessions.message_types(found):
        raise UnsupportedMessageType(
            f"the {found.engine} engine of session {session!r} cannot send {body.type} messages"
        )
    content: dict[str, Any] = {}
    reply_to = getattr(body, "reply_to", None)
    if reply_to is not None:
        await _require_message(services, tenant, session, reply_to, "reply_to")
        content["reply_to"] = reply_to
    text: str | None = None
    media: MediaDraft | None = None
    also = None
    if isinstance(body, SendText):
        text = body.text
        if body.link_preview is not None:
            content["link_preview"] = body.link_preview
        if body.fallback is not None:
            also = await _fallback(services, tenant, channel, number, body.fallback)
            content["fallback"] = body.fallback.model_dump()
        if channel == Channel.SMS:
            content.update(sms_fields(text))
    elif isinstance(body, _MediaSend):
        text = None if isinstance(body, SendSticker) else body.caption
        if isinstance(body, SendAudio):
            content["voice"] = body.voice
        media = await _ingest(services, tenant, body, upload)
    elif isinstance(body, SendLocation):
        content["location"] = {
            "latitude": float(body.latitude),
            "longitude": float(body.longitude),
            "name": body.name,
            "address": body.address,
        }
    elif isinstance(body, SendContact):
        content["contact"] = contact_card(body.contact)
    elif isinstance(body, SendReaction):
        await _require_message(services, tenant, session, body.message_id, "message_id")
        content["message_id"] = body.message_id
        content["emoji"] = body.emoji
    elif isinstance(body, SendPoll):
        content["poll"] = body.poll.model_dump()
    elif isinstance(body, SendTemplate):
        content["template"] = body.template.model_dump(exclude_none=True)
    elif isinstance(body, SendInteractive):
        if problem := interactive_problem(body.interactive):
            raise InvalidInteractive(problem)
        content["interactive"] = body.interactive.model_dump(exclude_none=True)
        text = body.interactive.body.text
    own = services.sessions.own_number(tenant, session)
    return await services.messages.accept(
        tenant,
        session,
        own,
        number,
        text,
        claim,
        kind=body.type,
        content=content,
        media=media,
        also=also,
    )


async def _fallback(
    services: Services, tenant: str, channel: str, number: str, fallback: Fallback
) -> Callable[[UnitOfWork, Message], None]:
    """What records ``fallback`` with its message; InvalidFallback when it cannot be."""
    if channel != Channel.WHATSAPP or "@" in number:
        raise InvalidFallback("fallback: only a WhatsApp message to a phone number can go by SMS")
    try:
        sms = await services.sessions.require(tenant, fallback.session)
    except SessionNotFound:
        raise InvalidFallback(f"fallback: no session {fallback.session!r}") from None
    if services.sessions.channel(sms) != Channel.SMS:
        raise InvalidFallback(f"fallback: session {fallback.session!r} is not an SMS session")
    after_ms = int(fallback.after_seconds * 1000)

    def record(unit: UnitOfWork, message: Message) -> None:
        fallbacks.record(unit, tenant, message.id, fallback.session, message.created_at + after_ms)

    return record


async def _require_message(
    services: Services, tenant: str, session: str, message_id: str, field: str
) -> None:
    """MessageNotFound unless ``message_id`` is a message of this session."""
    try:
        message = await services.messages.get(tenant, message_id)
    except MessageNotFound:
        raise MessageNotFound(f"{field}: no message {message_id!r} in this session") from None
    if message.session != session:
        raise MessageNotFound(f"{field}: no message {message_id!r} in this session")


async def _ingest(
    services: Services, tenant: str, body: _MediaSend, upload: Upload | None
) -> MediaDraft:
    """The message's file, sniffed and stored."""
    media = services.media
    assert media is not None
    if upload is not None:
        source = body.media
        data = upload.data
        declared = source.mime_type or upload.content_type
        filename = source.filename or upload.filename
    else:
        data, declared, filename = await media_bytes(services, body.media)
    return await media.ingest_bytes(tenant, data, body.type, declared, filename)


async def media_bytes(
    services: Services, source: MediaSource
) -> tuple[bytes, str | None, str | None]:
    """A file's bytes, declared type and name: decoded from ``base64`` (megabytes off the
    event loop), or fetched from ``url`` through the SSRF guard."""
    media = services.media
    assert media is not None
    if source.base64 is not None:
        if len(source.base64) > INLINE_DECODE_CHARS:
            data = await asyncio.to_thread(_decode, source.base64, media.max_bytes)
        else:
            data = _decode(source.base64, media.max_bytes)
        return data, source.mime_type, source.filename
    assert source.url is not None
    data, served_as, named = await media.fetch(source.url)
    return data, source.mime_type or served_as, source.filename or named


def _decode(text: str, max_bytes: int) -> bytes:
    if len(text) > (max_bytes + 2) // 3 * 4 + 4:
        raise InvalidInput(f"media.base64: the file may have at most {max_bytes} bytes")
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("media.base64: not valid base64") from None


INLINE_DECODE_CHARS = 262_144
_VCARD_SPECIAL = re.compile(r"([\\,;])")


def contact_card(card: ContactCard) -> dict[str, Any]:
    """The stored contact: name, phones and a vCard (made from them, or the one given)."""
    if isinstance(card, ContactVcard):
        vcard = card.vcard.replace("\r\n", "\n").strip()
        if not vcard.upper().endswith("END:VCARD"):
            raise InvalidInput("contact.vcard: must end with END:VCARD")
        lines = vcard.split("\n")
        name = card.name or next(
            (
                _unescape(line.split(":", 1)[1])
                for line in lines
                if line.upper().startswith("FN") and ":" in line
            ),
            "",
        )
        phones = card.phones or [
            line.split(":", 1)[1].strip()
            for line in lines
            if line.upper().startswith("TEL") and ":" in line
        ]
        return {"name": name, "phones": phones, "vcard": vcard}
    name = " ".join(card.name.split())
    escaped = _VCARD_SPECIAL.sub(r"\\\1", name)
    tel = [f"TEL;type=CELL;waid={''.join(filter(str.isdigit, p))}:{p}" for p in card.phones]
    vcard = "\n".join(
        [
            "BEGIN:VCARD",
            "VERSION:3.0",
            f"FN:{escaped}",
            *tel,
            "END:VCARD",
        ]
    )
    return {"name": name, "phones": list(card.phones), "vcard": vcard}


def _unescape(value: str) -> str:
    return re.sub(r"\\([\\,;nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)
