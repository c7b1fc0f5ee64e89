"""Channels: WhatsApp, Telegram and SMS, and the addresses each one reaches.

A session's engine decides its channel. Addresses are stored as chat ids: WhatsApp's own
(``<number>@c.us``, ``...@g.us``, ``...@lid``), a Telegram chat as ``<chat id>@telegram`` (or a
public ``@username``), an SMS number as ``+<E.164>@sms``. So a message's channel is read from its
chat id, and the API shows addresses without the channel's suffix.
"""

from __future__ import annotations

import re
from enum import StrEnum

from zapgate.errors import InvalidPhoneNumber, InvalidRecipient
from zapgate.phone import normalize_address, normalize_number


class Channel(StrEnum):
    WHATSAPP = "whatsapp"
    TELEGRAM = "telegram"
    SMS = "sms"


TELEGRAM_SUFFIX = "@telegram"
SMS_SUFFIX = "@sms"
SUFFIXES = {Channel.TELEGRAM: TELEGRAM_SUFFIX, Channel.SMS: SMS_SUFFIX}
_TELEGRAM_CHAT = re.compile(r"-?[0-9]{1,20}")
_TELEGRAM_USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}")
TELEGRAM_PATTERN = r"^[\t\n\v\f\r ]*(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31})[\t\n\v\f\r ]*$"
"""A Telegram chat id or public username, for the schema (``recipient`` stays the judge)."""
OTHER_CHANNEL_CHAT = r"^(-?[0-9]{1,20}@telegram|\+[0-9]{10,15}@sms)$"
"""A Telegram or SMS chat id, whole."""


def channel_of(chat: str) -> Channel:
    """The channel of a chat id."""
    if chat.endswith(TELEGRAM_SUFFIX) or _TELEGRAM_USERNAME.fullmatch(chat):
        return Channel.TELEGRAM
    if chat.endswith(SMS_SUFFIX):
        return Channel.SMS
    return Channel.WHATSAPP


def bare(chat: str) -> str:
    """A chat id without its channel's suffix (what the channel's own API calls it)."""
    for suffix in SUFFIXES.values():
        if chat.endswith(suffix):
            return chat[: -len(suffix)]
    return chat


def recipient(channel: str, raw: str, default_country_code: str = "") -> str:
    """``raw`` as an address of ``channel`` (a WhatsApp number or LID as ``normalize_address``
    makes it; else a chat id with the channel's suffix); InvalidRecipient when it is not one."""
    text = raw.strip()
    if channel == Channel.TELEGRAM:
        if _TELEGRAM_USERNAME.fullmatch(text):
            return text
        if _TELEGRAM_CHAT.fullmatch(bare(text)):
            return bare(text) + TELEGRAM_SUFFIX
        raise InvalidRecipient(
            f"{raw!r} is not a Telegram chat: use its numeric chat id or a public @username"
        )
    if channel == Channel.SMS:
        try:
            return "+" + normalize_number(bare(text), default_country_code) + SMS_SUFFIX
        except InvalidPhoneNumber as error:
            raise InvalidRecipient(f"{error} (SMS needs an E.164 number)") from None
    if (
        text.endswith((TELEGRAM_SUFFIX, SMS_SUFFIX))
        or _TELEGRAM_USERNAME.fullmatch(text)
        or text.startswith("-")  # a Telegram group's id, not a number with a separator
    ):
        raise InvalidRecipient(f"{raw!r} is not a WhatsApp number")
    return normalize_address(raw, default_country_code)
