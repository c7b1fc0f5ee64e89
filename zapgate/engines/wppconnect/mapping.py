"""WPPConnect's words to zapgate's: statuses, socket states, acks, messages."""

from __future__ import annotations

import base64
import binascii
import logging
import math
import re
from typing import Any

from zapgate.clock import now_ms
from zapgate.engines.base import (
    AckStatus,
    Contact,
    InboundMessage,
    IncomingCall,
    Location,
    Media,
    MessageEdited,
    MessageRevoked,
    Poll,
    PollVote,
    SessionStatus,
)
from zapgate.engines.directory import Group, Participant, Person
from zapgate.phone import number_of

log = logging.getLogger(__name__)

STATUS_FIND: dict[str, tuple[SessionStatus, str | None]] = {
    "notLogged": (SessionStatus.SCAN_QR_CODE, None),
    "qrReadSuccess": (SessionStatus.STARTING, None),
    "isLogged": (SessionStatus.STARTING, None),
    "inChat": (SessionStatus.WORKING, None),
    "qrReadFail": (SessionStatus.FAILED, "the QR code was not scanned in time"),
    "qrReadError": (SessionStatus.FAILED, "the QR code could not be read"),
    "autocloseCalled": (SessionStatus.FAILED, "the QR code was not scanned in time"),
    "browserClose": (SessionStatus.FAILED, "the browser was closed"),
    "serverClose": (SessionStatus.FAILED, "the WhatsApp Web server closed the connection"),
    "disconnectedMobile": (SessionStatus.DISCONNECTED, "the phone is disconnected"),
    "desconnectedMobile": (SessionStatus.DISCONNECTED, "the phone is disconnected"),
    "phoneNotConnected": (SessionStatus.DISCONNECTED, "the phone is not connected"),
}

SOCKET_STATE: dict[str, tuple[SessionStatus, str | None]] = {
    "CONNECTED": (SessionStatus.WORKING, None),
    "UNPAIRED": (SessionStatus.SCAN_QR_CODE, "this device was unlinked; scan the new QR code"),
    "UNPAIRED_IDLE": (SessionStatus.SCAN_QR_CODE, "this device was unlinked; scan the new QR code"),
}

ACKS = {2: AckStatus.DELIVERED, 3: AckStatus.READ, 4: AckStatus.PLAYED, 1: AckStatus.SENT}

KINDS = {
    "chat": "text",
    "image": "image",
    "video": "video",
    "ptv": "video",
    "audio": "audio",
    "ptt": "audio",
    "document": "document",
    "sticker": "sticker",
    "location": "location",
    "vcard": "contact",
    "multi_vcard": "contact",
    "poll_creation": "poll",
}
"""WhatsApp Web's message types zapgate reports; the others (system notices, ...) are not."""

MAX_MEDIA_BYTES = 45 * 1024 * 1024
"""The largest inbound file passed on. Its base64, in one protocol line, must stay under the
bridge reader's line limit (``rpc.LINE_LIMIT``, 64 MiB); the bridge drops larger ones first."""
NAME_LIMIT = 255
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*", re.IGNORECASE)
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")
_USER = re.compile(r"([1-9][0-9]{9,14})@c\.us|[0-9]{6,20}@lid")
_GROUP = re.compile(r"[0-9]{5,30}(-[0-9]{5,20})?@g\.us")
_PHONE = re.compile(r"[1-9][0-9]{9,14}")
TEXT_LIMIT = 65536
POLL_OPTIONS = 12
POLL_OPTION_LIMIT = 100
PARTICIPANTS_KEPT = 1024


def status_of_state(state: str) -> tuple[SessionStatus, str | None]:
    """The session status for a socket state (anything unknown means reconnecting)."""
    return SOCKET_STATE.get(state, (SessionStatus.DISCONNECTED, f"WhatsApp Web is {state}"))


def inbound(data: dict[str, Any]) -> InboundMessage | None:
    """An inbound message from a bridge ``message`` event; None for a type zapgate skips."""
    wa_type = str(data.get("type", "chat"))
    kind = KINDS.get(wa_type)
    if kind is None:
        log.info("skipped an inbound WhatsApp %r message", wa_type[:40])
        return None
    sender = address(data.get("from"))
    return InboundMessage(
        engine_message_id=str(data["id"]),
        sender=sender,
        recipient=address(data.get("to")),
        kind=kind,
        text=_text(data.get("body")),
        timestamp_ms=_timestamp_ms(data.get("timestamp")),
        media=_media(data) if kind in ("image", "video", "audio", "document", "sticker") else None,
        voice=wa_type == "ptt",
        location=_location(data.get("location")) if kind == "location" else None,
        contact=_contact(data.get("vcards")) if kind == "contact" else None,
        reply_to=_text(data.get("quotedMsgId")),
        poll=_poll(data.get("poll")) if kind == "poll" else None,
        sender_phone=_phone(data.get("fromPhone")) if sender.endswith("@lid") else None,
    )


def reaction(data: dict[str, Any]) -> InboundMessage | None:
    """A reaction from a bridge ``reaction`` event (None for our own): its target is the
    reacted message's id, ``emoji`` is ``""`` when the reaction was taken back."""
    if data.get("fromMe") or not data.get("msgId"):
        return None
    return InboundMessage(
        engine_message_id=str(data.get("id") or f"reaction_{data['msgId']}"),
        sender=address(data.get("sender")),
        recipient=address(data.get("to")),
        kind="reaction",
        text=None,
        timestamp_ms=_timestamp_ms(data.get("timestamp")),
        target=str(data["msgId"]),
        emoji=_text(data.get("reactionText")) or "",
    )


def base64_limit(size: int) -> int:
    """The length of the base64 text of ``size`` bytes."""
    return 4 * math.ceil(size / 3)


def parse_vcard(vcard: str, name: str | None = None) -> Contact:
    """A contact card from vCard text: its formatted name (else ``name``) and phone numbers."""
    fields = _vcard_fields(vcard)
    formatted = next((_unescape(value) for key, value in fields if key == "FN"), None)
    phones = tuple(value.strip() for key, value in fields if key == "TEL" and value.strip())
    return Contact(name=formatted or name or "", phones=phones, vcard=vcard)


def _vcard_fields(vcard: str) -> list[tuple[str, str]]:
    """(property, value) pairs: folded lines joined, groups (``item1.``) and parameters dropped."""
    unfolded = re.sub(r"\r?\n[ \t]", "", vcard)
    fields = []
    for line in unfolded.splitlines():
        head, colon, value = line.partition(":")
        if colon:
            prop = head.split(";", 1)[0].rsplit(".", 1)[-1].upper()
            fields.append((prop, value))
    return fields


def _unescape(value: str) -> str:
    return re.sub(r"\\([\\,;nN])", lambda m: "\n" if m[1] in "nN" else m[1], value).strip()


def _media(data: dict[str, Any]) -> Media | None:
    """The downloaded file, checked here again: nothing the page says about it is trusted."""
    media = data.get("media")
    if not isinstance(media, dict):
        log.warning(
            "inbound %s %s came without its file (%s)",
            data.get("type"),
            data.get("id"),
            data.get("mediaMissing", "not downloaded"),
        )
        return None
    encoded = media.get("data")
    if not isinstance(encoded, str) or len(encoded) > base64_limit(MAX_MEDIA_BYTES):
        log.warning("inbound %s: the file is missing or larger than allowed", data.get("id"))
        return None
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        log.warning("inbound %s: the file is not valid base64", data.get("id"))
        return None
    mime = media.get("mimetype")
    mime_type = mime.split(";", 1)[0].strip() if isinstance(mime, str) else ""
    return Media(
        data=raw,
        mime_type=mime_type if _MIME.fullmatch(mime_type) else "application/octet-stream",
        filename=_filename(media.get("filename")),
    )


def _location(value: Any) -> Location | None:
    if not isinstance(value, dict):
        return None
    latitude, longitude = _number(value.get("latitude")), _number(value.get("longitude"))
    if latitude is None or longitude is None or abs(latitude) > 90 or abs(longitude) > 180:
        return None
    return Location(latitude, longitude, _text(value.get("name")), _text(value.get("address")))


def _contact(value: Any) -> Contact | None:
    """The first card of a ``vcard`` or ``multi_vcard`` message."""
    if not isinstance(value, list) or not value or not isinstance(value[0], dict):
        return None
    first = value[0]
    vcard = first.get("vcard")
    if not isinstance(vcard, str) or not vcard:
        return None
    return parse_vcard(vcard, _text(first.get("name")))


def _filename(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    name = _UNSAFE_NAME.sub("_", value.strip())[:NAME_LIMIT]
    return name or None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _timestamp_ms(value: Any) -> int:
    number = _number(value)
    return int(number * 1000) if number is not None and number >= 0 else 0


# -- ids -------------------------------------------------------------------------------------


def address(jid: Any) -> str:
    """zapgate's address for a WhatsApp id: a user's number without ``@c.us``; a LID or a
    group id whole; anything else as its part before ``@``."""
    text = jid if isinstance(jid, str) else ""
    user = _USER.fullmatch(text)
    if user is not None:
        return user[1] or text
    return text if _GROUP.fullmatch(text) else number_of(text)


def user_id(value: Any) -> str | None:
    """A person's chat id (``<number>@c.us`` or ``<digits>@lid``) from the bridge, else None."""
    return value if isinstance(value, str) and _USER.fullmatch(value) else None


def _phone(value: Any) -> str | None:
    return value if isinstance(value, str) and _PHONE.fullmatch(value) else None


def _poll(value: Any) -> Poll | None:
    if not isinstance(value, dict):
        return None
    options = value.get("options")
    names = (
        [o[:POLL_OPTION_LIMIT] for o in options if isinstance(o, str) and o]
        if isinstance(options, list)
        else []
    )
    count = value.get("selectableCount")
    return Poll(
        name=(_text(value.get("name")) or "")[:NAME_LIMIT],
        options=tuple(names[:POLL_OPTIONS]),
        selectable_count=count if isinstance(count, int) and 0 <= count <= len(names) else 1,
    )


# -- events besides messages -----------------------------------------------------------------


def edited(data: dict[str, Any]) -> MessageEdited | None:
    """A bridge ``edited`` event: the message's new text."""
    text = _text(data.get("text"))
    message_id = _text(data.get("id"))
    if not message_id or text is None or len(text) > TEXT_LIMIT:
        return None
    return MessageEdited(message_id, text, _ms(data.get("timestamp")))


def revoked(data: dict[str, Any]) -> MessageRevoked | None:
    """A bridge ``revoked`` event: ``refId`` is the deleted message (the event has no time)."""
    message_id = _text(data.get("refId"))
    return MessageRevoked(message_id, now_ms()) if message_id else None


def vote(data: dict[str, Any]) -> PollVote | None:
    """A bridge ``poll_vote`` event: the options picked, by name."""
    poll_id = _text(data.get("msgId"))
    voter = user_id(data.get("sender"))
    picked = data.get("selected")
    if not poll_id or voter is None or not isinstance(picked, list):
        return None
    names = tuple(o[:POLL_OPTION_LIMIT] for o in picked[:POLL_OPTIONS] if isinstance(o, str))
    return PollVote(poll_id, address(voter), names, _ms(data.get("timestampMs")))


def call(data: dict[str, Any]) -> IncomingCall | None:
    """A bridge ``incoming_call`` event (None for a group call, or one without a caller)."""
    call_id = _text(data.get("id"))
    caller = user_id(data.get("peerJid"))
    if not call_id or caller is None or data.get("isGroup"):
        return None
    video = data.get("isVideo") is True
    return IncomingCall(
        call_id[:NAME_LIMIT], address(caller), video, _timestamp_ms(data.get("offerTime"))
    )


def _ms(value: Any) -> int:
    number = _number(value)
    return int(number) if number is not None and number > 0 else now_ms()


# -- the directory ---------------------------------------------------------------------------


def person(data: Any) -> Person | None:
    """A bridge ``lookup`` answer or ``contacts`` item (None: not one, or a LID nobody knows)."""
    if not isinstance(data, dict):
        return None
    phone, lid = user_id(data.get("phone")), user_id(data.get("lid"))
    number = address(phone) if phone is not None and phone.endswith("@c.us") else None
    lid = lid if lid is not None and lid.endswith("@lid") else None
    if number is None and lid is None:
        return None
    name = _text(data.get("name"))
    exists = data.get("exists") is not False
    return Person(number, lid, name[:NAME_LIMIT] if name else None, on_whatsapp=exists)


def group(data: Any) -> Group | None:
    """A bridge group: its id, subject, owner, creation (seconds) and participants."""
    if not isinstance(data, dict) or not _GROUP.fullmatch(str(data.get("id", ""))):
        return None
    members = data.get("participants")
    participants = [
        Participant(member["id"], member.get("admin") is True, member.get("owner") is True)
        for member in (members[:PARTICIPANTS_KEPT] if isinstance(members, list) else [])
        if isinstance(member, dict) and user_id(member.get("id")) is not None
    ]
    name = _text(data.get("name")) or ""
    return Group(
        id=str(data["id"]),
        name=name[:NAME_LIMIT],
        owner=user_id(data.get("owner")),
        created_at_ms=_timestamp_ms(data.get("creation")),
        participants=tuple(participants),
    )
