"""zapgate's outbound messages as Bot API calls: the method, its parameters, and the file.

Message ids are zapgate's engine ids ``<chat id>:<message id>`` (a Telegram message id is only
unique within its chat). A reaction's emoji must be one Telegram offers; the variation selector
WhatsApp-style emoji carry (``❤️``) is dropped when Telegram's form lacks it (``❤``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from zapgate.engines.base import OutboundMessage, PermanentEngineError, UnsupportedMessageType

MAX_TEXT = 4096
MAX_CAPTION = 1024
CAPTIONED = frozenset({"image", "video", "audio", "document"})
FILE_FIELDS = {
    "image": ("sendPhoto", "photo"),
    "video": ("sendVideo", "video"),
    "audio": ("sendAudio", "audio"),
    "document": ("sendDocument", "document"),
    "sticker": ("sendSticker", "sticker"),
}
VOICE = ("sendVoice", "voice")
SUFFIX = "@telegram"
_CHAT = re.compile(r"-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31}")
_VARIATION = "\ufe0f"


@dataclass(frozen=True, slots=True)
class Call:
    """One Bot API call: ``file_field`` names the parameter the message's file goes in."""

    method: str
    params: dict[str, Any]
    file_field: str | None = None


def chat_of(address: str) -> int | str:
    """A chat id for the Bot API: an integer, or a public ``@username`` (PermanentEngineError
    for anything else, such as a phone number's WhatsApp id)."""
    bare = address.strip().removesuffix(SUFFIX)
    if not _CHAT.fullmatch(bare):
        raise PermanentEngineError(
            f"telegram: {address!r} is not a Telegram chat (a numeric chat id or @username)"
        )
    return bare if bare.startswith("@") else int(bare)


def message_ref(engine_id: str) -> tuple[int, int]:
    """The chat and message ids in an engine id ``<chat id>:<message id>[:...]``."""
    parts = engine_id.split(":")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        raise PermanentEngineError(f"telegram: {engine_id!r} is not a Telegram message") from None


def engine_id(chat: int, message_id: int) -> str:
    return f"{chat}:{message_id}"


def call_for(message: OutboundMessage) -> Call:
    """The call that sends ``message``; UnsupportedMessageType for what Telegram lacks."""
    chat = chat_of(message.to)
    params: dict[str, Any] = {"chat_id": chat}
    kind = message.kind
    if kind == "reaction":
        return _reaction(chat, message)
    if kind == "text":
        text = message.text or ""
        if not 1 <= len(text) <= MAX_TEXT:
            raise UnsupportedMessageType(f"telegram: a text has 1 to {MAX_TEXT} characters")
        params["text"] = text
        params["link_preview_options"] = {"is_disabled": not message.link_preview}
        call = Call("sendMessage", params)
    elif kind in FILE_FIELDS:
        if message.media is None:
            raise UnsupportedMessageType(f"telegram: a {kind} message needs its file")
        method, field = VOICE if kind == "audio" and message.voice else FILE_FIELDS[kind]
        if kind in CAPTIONED and message.text:
            params["caption"] = message.text[:MAX_CAPTION]
        call = Call(method, params, field)
    elif kind == "location" and message.location is not None:
        call = _location(params, message)
    elif kind == "contact" and message.contact is not None:
        call = _contact(params, message)
    else:
        raise UnsupportedMessageType(f"the telegram engine cannot send {kind!r} messages")
    if message.reply_to:
        replied_chat, replied = message_ref(message.reply_to)
        reply: dict[str, Any] = {"message_id": replied}
        if isinstance(chat, int) and replied_chat != chat:
            reply["chat_id"] = replied_chat
        params["reply_parameters"] = reply
    return call


def _location(params: dict[str, Any], message: OutboundMessage) -> Call:
    """A bare point (``sendLocation``), or a named place (``sendVenue``: a title and address)."""
    place = message.location
    assert place is not None
    params |= {"latitude": place.latitude, "longitude": place.longitude}
    if place.name or place.address:
        params |= {"title": place.name or place.address, "address": place.address or ""}
        return Call("sendVenue", params)
    return Call("sendLocation", params)


def _contact(params: dict[str, Any], message: OutboundMessage) -> Call:
    """A card: its first phone, the name split in first and last, and the vCard (the rest of
    its phones are in the vCard)."""
    card = message.contact
    assert card is not None
    if not card.phones:
        raise UnsupportedMessageType("telegram: a contact needs a phone number")
    first, _, last = card.name.strip().partition(" ")
    params |= {"phone_number": card.phones[0], "first_name": first or card.name or "?"}
    if last.strip():
        params["last_name"] = last.strip()
    if card.vcard:
        params["vcard"] = card.vcard[:2048]
    return Call("sendContact", params)


def _reaction(chat: int | str, message: OutboundMessage) -> Call:
    """``setMessageReaction``: one emoji, or none to take the bot's reaction back."""
    if message.target is None:
        raise UnsupportedMessageType("telegram: a reaction needs the message it reacts to")
    _, target = message_ref(message.target)
    emoji = message.emoji or ""
    chosen: list[dict[str, str]] = []
    if emoji:
        shown = emoji if emoji in REACTIONS else emoji.replace(_VARIATION, "")
        if shown not in REACTIONS:
            raise PermanentEngineError(f"telegram: {emoji!r} is not a reaction Telegram offers")
        chosen = [{"type": "emoji", "emoji": shown}]
    return Call("setMessageReaction", {"chat_id": chat, "message_id": target, "reaction": chosen})


REACTIONS = frozenset(
    [
        "👍",
        "👎",
        "❤",
        "🔥",
        "🥰",
        "👏",
        "😁",
        "🤔",
        "🤯",
        "😱",
        "🤬",
        "😢",
        "🎉",
        "🤩",
        "🤮",
        "💩",
        "🙏",
        "👌",
        "🕊",
        "🤡",
        "🥱",
        "🥴",
        "😍",
        "🐳",
        "❤\u200d🔥",
        "🌚",
        "🌭",
        "💯",
        "🤣",
        "⚡",
        "🍌",
        "🏆",
        "💔",
        "🤨",
        "😐",
        "🍓",
        "🍾",
        "💋",
        "🖕",
        "😈",
        "😴",
        "😭",
        "🤓",
        "👻",
        "👨\u200d💻",
        "👀",
        "🎃",
        "🙈",
        "😇",
        "😨",
        "🤝",
        "✍",
        "🤗",
        "🫡",
        "🎅",
        "🎄",
        "☃",
        "💅",
        "🤪",
        "🗿",
        "🆒",
        "💘",
        "🙉",
        "🦄",
        "😘",
        "💊",
        "🙊",
        "😎",
        "👾",
        "🤷\u200d♂",
        "🤷",
        "🤷\u200d♀",
        "😡",
    ]
)
"""The emoji a ``ReactionTypeEmoji`` may carry (the Bot API's list)."""
