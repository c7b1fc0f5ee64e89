"""Telegram's updates in zapgate's terms: received messages, edits and reactions.

An update (from ``getUpdates`` or the webhook) holds one of ``message``/``channel_post`` (a
received message), ``edited_message``/``edited_channel_post`` (an edit) or ``message_reaction``.
A message's sender is its chat (``<chat id>@telegram``: a private chat's id is the user's), the
Telegram user who wrote it is in ``raw`` (``user``); its engine id is ``<chat id>:<message id>``.
Every message is reported ``once``: Telegram delivers an update again until it is confirmed (a
webhook call not answered 200, a ``getUpdates`` offset not yet advanced), and it is stored once.
Unknown kinds of messages are kept (as a text without text, Telegram's object in ``raw``);
other update types are ignored.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from zapgate.clock import now_ms
from zapgate.engines.base import (
    Contact,
    EngineEvent,
    InboundMessage,
    Location,
    Media,
    MessageEdited,
)
from zapgate.engines.fields import items as _list
from zapgate.engines.fields import number as _number
from zapgate.engines.fields import text as _str
from zapgate.engines.telegram.errors import BotApiError
from zapgate.engines.telegram.payloads import SUFFIX, engine_id

log = logging.getLogger(__name__)
ALLOWED_UPDATES = [
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "message_reaction",
]
"""The update types asked for (``message_reaction`` is only sent when asked for by name)."""
MESSAGES = ("message", "channel_post")
EDITS = ("edited_message", "edited_channel_post")
TYPES_BY_EXTENSION = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "tgs": "application/x-tgsticker",
    "webm": "video/webm",
    "mp4": "video/mp4",
    "oga": "audio/ogg",
    "ogg": "audio/ogg",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "pdf": "application/pdf",
}
"""A file's type by the extension of its path at Telegram (photos and stickers name none)."""

Download = Callable[[str], Awaitable[tuple[bytes, str]]]
"""A received file's bytes and its path at Telegram, by its ``file_id``."""


class UpdateSink(Protocol):
    """Where an update's contents go: the session's messages and events."""

    async def message(self, message: InboundMessage) -> str: ...
    async def event(self, event: EngineEvent) -> None: ...


@dataclass(slots=True)
class Handled:
    """What a batch of updates held: counts, for the answer and the log."""

    updates: int = 0
    messages: int = 0
    events: int = 0
    ignored: int = 0


async def report(
    update: dict[str, Any], bot_id: str, sink: UpdateSink, download: Download, handled: Handled
) -> None:
    """Report one update to ``sink``."""
    handled.updates += 1
    update_id = update.get("update_id")
    for field in MESSAGES:
        message = update.get(field)
        if isinstance(message, dict) and _is_message(message):
            await sink.message(await inbound(message, update_id, bot_id, download))
            handled.messages += 1
            return
    for field in EDITS:
        edited = _edit(update.get(field))
        if edited is not None:
            await sink.event(edited)
            handled.events += 1
            return
    reaction = _reaction(update.get("message_reaction"), update_id, bot_id)
    if reaction is not None:
        await sink.message(reaction)
        handled.messages += 1
        return
    handled.ignored += 1


async def inbound(
    message: dict[str, Any], update_id: Any, bot_id: str, download: Download
) -> InboundMessage:
    """A received message in zapgate's terms; Telegram's object is kept as ``raw``."""
    chat = message["chat"]["id"]
    kind, text = "text", _str(message.get("text"))
    media = location = contact = None
    voice = False
    note: str | None = None
    found = _file_of(message)
    if found is not None:
        kind, item, voice = found
        media, note = await _file(item, kind, download)
        text = _str(message.get("caption"))
    elif isinstance(message.get("venue"), dict):
        kind, location = "location", _venue(message["venue"])
    elif isinstance(message.get("location"), dict):
        kind, location = "location", _location(message["location"])
    elif isinstance(message.get("contact"), dict):
        kind, contact = "contact", _contact(message["contact"])
    if kind in ("location", "contact") and location is None and contact is None:
        kind = "text"
    if text is None and kind == "text":
        text = _str(message.get("caption"))
    replied = message.get("reply_to_message")
    reply_to = (
        engine_id(chat, replied["message_id"])
        if isinstance(replied, dict) and isinstance(replied.get("message_id"), int)
        else None
    )
    raw: dict[str, Any] = {**message, "update_id": update_id, "user": _user(message)}
    if note:
        raw["media_error"] = note
    return InboundMessage(
        engine_message_id=engine_id(chat, message["message_id"]),
        sender=f"{chat}{SUFFIX}",
        recipient=f"{bot_id}{SUFFIX}",
        kind=kind,
        text=text,
        timestamp_ms=_ms(message.get("date")) or now_ms(),
        media=media,
        voice=voice,
        location=location,
        contact=contact,
        reply_to=reply_to,
        raw=raw,
        once=True,
    )


def _file_of(message: dict[str, Any]) -> tuple[str, dict[str, Any], bool] | None:
    """The message's file: its kind, Telegram's object for it, and whether it is a voice note.
    A photo comes in several sizes: the largest is taken."""
    photo = message.get("photo")
    if isinstance(photo, list) and photo:
        sizes = [p for p in photo if isinstance(p, dict) and isinstance(p.get("file_id"), str)]
        if sizes:
            return "image", max(sizes, key=_area), False
    for field, kind, voice in (
        ("video", "video", False),
        ("video_note", "video", False),
        ("animation", "video", False),  # a GIF, as Telegram keeps it (an MP4)
        ("voice", "audio", True),
        ("audio", "audio", False),
        ("sticker", "sticker", False),
        ("document", "document", False),
    ):
        item = message.get(field)
        if isinstance(item, dict) and isinstance(item.get("file_id"), str):
            return kind, item, voice
    return None


async def _file(
    item: dict[str, Any], kind: str, download: Download
) -> tuple[Media | None, str | None]:
    """The file of a media message, or why it could not be had (the message is kept)."""
    try:
        data, path = await download(item["file_id"])
    except BotApiError as error:
        return None, str(error)
    extension = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    mime = (
        _str(item.get("mime_type"))
        or TYPES_BY_EXTENSION.get(extension)
        or mimetypes.guess_type(path)[0]
        or ("image/jpeg" if kind == "image" else "application/octet-stream")
    )
    return Media(data, mime.split(";")[0].strip(), _str(item.get("file_name"))), None


def _edit(message: Any) -> MessageEdited | None:
    """An edited text (or caption); None for other edits (a live location moving)."""
    if not _is_message(message):
        return None
    text = _str(message.get("text")) or _str(message.get("caption"))
    if text is None:
        return None
    stamp = _ms(message.get("edit_date")) or now_ms()
    return MessageEdited(engine_id(message["chat"]["id"], message["message_id"]), text, stamp)


def _reaction(update: Any, update_id: Any, bot_id: str) -> InboundMessage | None:
    """A reaction changed on a message: the emoji added (``""``: taken back). Custom and paid
    reactions have no emoji to show: ignored."""
    if not isinstance(update, dict) or not isinstance(update.get("message_id"), int):
        return None
    chat = update.get("chat")
    if not isinstance(chat, dict) or not isinstance(chat.get("id"), int):
        return None
    old, new = _emoji(update.get("old_reaction")), _emoji(update.get("new_reaction"))
    added = [e for e in new if e not in old]
    if added:
        emoji = added[0]
    elif not _list(update.get("new_reaction")):
        emoji = ""  # every reaction taken back
    else:
        return None  # only a custom or paid reaction, or the same ones again
    target = engine_id(chat["id"], update["message_id"])
    user = update.get("user") if isinstance(update.get("user"), dict) else None
    raw = {**update, "update_id": update_id, "user": _user({"from": user} if user else {})}
    return InboundMessage(
        engine_message_id=f"{target}:reaction:{update_id}",
        sender=f"{chat['id']}{SUFFIX}",
        recipient=f"{bot_id}{SUFFIX}",
        kind="reaction",
        text=None,
        timestamp_ms=_ms(update.get("date")) or now_ms(),
        target=target,
        emoji=emoji,
        raw=raw,
        once=True,
    )


def _emoji(reactions: Any) -> list[str]:
    return [
        r["emoji"]
        for r in _list(reactions)
        if isinstance(r, dict) and r.get("type") == "emoji" and isinstance(r.get("emoji"), str)
    ]


def _venue(venue: dict[str, Any]) -> Location | None:
    place = _location(venue.get("location"))
    if place is None:
        return None
    return Location(
        place.latitude, place.longitude, _str(venue.get("title")), _str(venue.get("address"))
    )


def _location(item: Any) -> Location | None:
    if not isinstance(item, dict):
        return None
    latitude, longitude = _number(item.get("latitude")), _number(item.get("longitude"))
    if latitude is None or longitude is None:
        return None
    return Location(latitude, longitude)


def _contact(item: dict[str, Any]) -> Contact | None:
    """A shared contact: its name and phone, and its vCard (one is made when it has none)."""
    phone = _str(item.get("phone_number"))
    if phone is None:
        return None
    name = " ".join(p for p in (_str(item.get("first_name")), _str(item.get("last_name"))) if p)
    vcard = _str(item.get("vcard"))
    if vcard is None:
        vcard = "\n".join(
            ["BEGIN:VCARD", "VERSION:3.0", f"FN:{name}", f"TEL;type=CELL:{phone}", "END:VCARD"]
        )
    return Contact(name, (phone,), vcard)


def _user(message: dict[str, Any]) -> dict[str, Any] | None:
    """Who wrote it: the Telegram user's id, username and first name (none in a channel)."""
    user = message.get("from")
    if not isinstance(user, dict):
        return None
    return {key: user.get(key) for key in ("id", "username", "first_name")}


def _is_message(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("message_id"), int)
        and isinstance(value.get("chat"), dict)
        and isinstance(value["chat"].get("id"), int)
    )


def _area(size: dict[str, Any]) -> int:
    width, height = size.get("width"), size.get("height")
    if isinstance(width, int) and isinstance(height, int):
        return width * height
    file_size = size.get("file_size")
    return file_size if isinstance(file_size, int) else 0


def _ms(seconds: Any) -> int:
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        return int(seconds * 1000)
    return 0
