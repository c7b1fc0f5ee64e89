"""What a file really is: its type sniffed from its bytes, never taken from the sender's word."""

from __future__ import annotations

import re

import filetype

from zapgate.errors import MediaRejected

SNIFF_BYTES = 8192
"""How much of the start of a file sniffing reads."""
GENERIC = "application/octet-stream"
TEXT_TYPES = frozenset({"text/plain", "text/csv", "text/vcard", "text/x-vcard", "text/calendar"})
"""Declared types believed for bytes that sniff as nothing but read as UTF-8 text."""
_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")

WANTED = {
    "image": ("image/jpeg", "image/png", "image/webp", "image/gif"),
    "sticker": ("image/webp", "image/png"),
    "video": ("video/",),
    "audio": ("audio/",),
}
"""What each media type accepts (a ``/``-ending entry is a family); a document takes anything."""


def sniff(head: bytes, declared: str | None = None) -> str:
    """The type of a file starting with ``head``: what its bytes say, else a declared text type
    if they are UTF-8 text, else ``application/octet-stream``."""
    found = filetype.guess_mime(head[:SNIFF_BYTES])
    if found:
        return str(found)
    wanted = (declared or "").split(";", 1)[0].strip().lower()
    if wanted in TEXT_TYPES and _is_text(head[:SNIFF_BYTES]):
        return wanted
    return GENERIC


def check(kind: str, mime_type: str) -> None:
    """MediaRejected unless a file of ``mime_type`` may be sent as ``kind``."""
    wanted = WANTED.get(kind)
    if wanted is None or any(
        mime_type.startswith(w) if w.endswith("/") else mime_type == w for w in wanted
    ):
        return
    raise MediaRejected(f"a {kind} must be {' or '.join(wanted)}; this file is {mime_type}")


def valid_mime(value: str) -> bool:
    """Whether ``value`` looks like a MIME type (``type/subtype``, no parameters)."""
    return _MIME.fullmatch(value) is not None


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:  # a character cut at the end of the head is fine
        return error.start >= len(head) - 3 and b"\x00" not in head
    return b"\x00" not in head
