"""Phone numbers and chat ids, normalised in one place."""

from __future__ import annotations

import re

from zapgate.errors import InvalidPhoneNumber

_SEPARATORS = re.compile(r"[\s().\-/]")
_USER_SUFFIX = "@c.us"
LID_SUFFIX = "@lid"
_MIN_DIGITS, _MAX_DIGITS = 10, 15
_LID = re.compile(r"[0-9]{6,20}@lid")


def normalize_number(raw: str, default_country_code: str = "") -> str:
    """Digits with country code (E.164 without ``+``); raises InvalidPhoneNumber.

    Accepts ``+55 (11) 99999-9999``, ``5511999999999`` and ``5511999999999@c.us``. When
    ``default_country_code`` is set, a national number written without ``+`` (10 or 11 digits
    after an optional trunk ``0``) gets it prepended.
    """
    text = raw.strip()
    if text.endswith(_USER_SUFFIX):
        text = text[: -len(_USER_SUFFIX)]
    text = _SEPARATORS.sub("", text)
    if text.startswith("+"):
        text = text[1:]
    elif default_country_code and text.isdigit():
        text = _with_country_code(text, default_country_code)
    if not text.isdigit() or not text.isascii():
        raise InvalidPhoneNumber(f"{raw!r} is not a phone number: use digits with country code")
    if not _MIN_DIGITS <= len(text) <= _MAX_DIGITS or text.startswith("0"):
        raise InvalidPhoneNumber(
            f"{raw!r} is not a phone number: expected {_MIN_DIGITS}-{_MAX_DIGITS} digits "
            "with country code, e.g. 5511999999999"
        )
    return text


def _with_country_code(digits: str, country_code: str) -> str:
    national = digits[1:] if digits.startswith("0") else digits
    if len(national) in (10, 11):
        return country_code + national
    return digits


def normalize_address(raw: str, default_country_code: str = "") -> str:
    """A phone number as ``normalize_number`` makes it, or a LID as ``<digits>@lid``.

    A LID (WhatsApp's opaque ``@lid`` id, used where it hides a phone number) is 6-20 digits
    followed by ``@lid``; anything else must be a phone number (InvalidPhoneNumber otherwise).
    """
    text = raw.strip()
    if text.endswith(LID_SUFFIX):
        if not _LID.fullmatch(text) or not text.isascii():
            raise InvalidPhoneNumber(f"{raw!r} is not a LID: expected 6-20 digits and @lid")
        return text
    return normalize_number(raw, default_country_code)


def is_lid(address: str) -> bool:
    """Whether ``address`` (a normalised address or chat id) is a LID."""
    return address.endswith(LID_SUFFIX)


def chat_id(number: str) -> str:
    """The WhatsApp user chat id of a normalised number; a chat id (a LID) is kept as it is."""
    return number if "@" in number else number + _USER_SUFFIX


_SHOWN_WITHOUT = (_USER_SUFFIX, "@telegram", "@sms")
"""Suffixes an address is shown without: WhatsApp users', and the other channels' (see
``zapgate.channels``)."""


def address_of(chat: str) -> str:
    """How a chat id is shown and sent to: a user's number without ``@c.us``, a Telegram chat or
    an SMS number without its channel's suffix, any other id (a LID, a group) whole."""
    for suffix in _SHOWN_WITHOUT:
        if chat.endswith(suffix):
            return chat[: -len(suffix)]
    return chat


def number_of(chat: str) -> str:
    """The number part of a chat id."""
    return chat.split("@", 1)[0]
