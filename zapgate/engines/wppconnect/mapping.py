"""WPPConnect's words to zapgate's: statuses, socket states, acks, messages."""

from __future__ import annotations

import base64
import binascii
import logging
import math
import re
from typing import Any

from zapgate.engines.base import (
    AckStatus,
    Contact,
    InboundMessage,
    Location,
    Media,
    SessionStatus,
)
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
}
"""WhatsApp Web's message types zapgate reports; the others (system notices, polls, ...) are not."""

MAX_MEDIA_BYTES = 45 * 1024 * 1024
"""The largest inbound file passed on. Its base64, in one protocol line, must stay under the
bridge reader's line limit (``rpc.LINE_LIMIT``, 64 MiB); the bridge drops larger ones first."""
NAME_LIMIT = 255
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*", re.IGNORECASE)
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


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
    return InboundMessage(
        engine_message_id=str(data["id"]),
        sender=number_of(str(data.get("from", ""))),
        recipient=number_of(str(data.get("to", ""))),
        kind=kind,
        text=_text(data.get("body")),
        timestamp_ms=_timestamp_ms(data.get("timestamp")),
        media=_media(data) if kind in ("image", "video", "audio", "document", "sticker") else None,
        voice=wa_type == "ptt",
        location=_location(data.get("location")) if kind == "location" else None,
        contact=_contact(data.get("vcards")) if kind == "contact" else None,
        reply_to=_text(data.get("quotedMsgId")),
    )


def reaction(data: dict[str, Any]) -> InboundMessage | None:
    """A reaction from a bridge ``reaction`` event (None for our own): its target is the
    reacted message's id, ``emoji`` is ``""`` when the reaction was taken back."""
    if data.get("fromMe") or not data.get("msgId"):
        return None
    return InboundMessage(
        engine_message_id=str(data.get("id") or f"reaction_{data['msgId']}"),
        sender=number_of(str(data.get("sender", ""))),
        recipient=number_of(str(data.get("to") or "")),
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
