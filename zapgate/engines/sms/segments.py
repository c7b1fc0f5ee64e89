"""How many SMS segments a text takes, and in which encoding (GSM 03.38 or UCS-2).

A text made only of the GSM 7-bit default alphabet goes as GSM-7: one septet a character, two
for a character of the extension table (an escape, then the character). Anything else sends the
whole text as UCS-2, counted in UTF-16 code units (a character beyond the BMP, such as most
emoji, takes two). One segment holds 160 septets or 70 units; a longer text is split into parts
of 153 septets or 67 units (the rest of each part is the concatenation header), and a part never
ends between an escape and its character, nor between the halves of a surrogate pair.
"""

from __future__ import annotations

GSM_7 = "GSM-7"
UCS_2 = "UCS-2"
BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The GSM 03.38 default alphabet, one septet each (its escape, 0x1B, is no character)."""
EXTENSION = frozenset("\f^{}\\[~]|€")
"""The default alphabet's extension table: an escape and the character, two septets each."""
SINGLE = {GSM_7: 160, UCS_2: 70}
"""What one segment holds (septets, or UTF-16 code units)."""
PART = {GSM_7: 153, UCS_2: 67}
"""What each part of a longer text holds (the rest is the concatenation header)."""


def count(text: str) -> tuple[str, int]:
    """The encoding ``text`` goes in and its number of segments (an empty text still takes one).

    >>> count("Olá")
    ('GSM-7', 1)
    >>> count("Olá 👋")
    ('UCS-2', 1)
    """
    encoding = GSM_7 if all(ch in BASIC or ch in EXTENSION for ch in text) else UCS_2
    sizes = [_size(ch, encoding) for ch in text]
    if sum(sizes) <= SINGLE[encoding]:
        return encoding, 1
    segments, used = 1, 0
    for size in sizes:  # a character is never split across two parts
        if used + size > PART[encoding]:
            segments, used = segments + 1, 0
        used += size
    return encoding, segments


def _size(ch: str, encoding: str) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) of one character."""
    if encoding == GSM_7:
        return 2 if ch in EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


def sms_fields(text: str | None) -> dict[str, str | int]:
    """What a message of ``text`` shows on an SMS session: its ``encoding`` and ``segments``."""
    encoding, segments = count(text or "")
    return {"encoding": encoding, "segments": segments}
