"""QR rendering: PNG bytes, a data URI, and text for a terminal."""

from __future__ import annotations

import base64
import io

import segno


def png(raw: str, scale: int = 8) -> bytes:
    """The QR of ``raw`` as a PNG."""
    buffer = io.BytesIO()
    segno.make(raw, error="l").save(buffer, kind="png", scale=scale, border=2)
    return buffer.getvalue()


def data_uri(raw: str) -> str:
    """The QR of ``raw`` as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(png(raw)).decode()


def terminal(raw: str) -> str:
    """The QR of ``raw`` drawn with block characters, for a terminal."""
    buffer = io.StringIO()
    segno.make(raw, error="l").terminal(out=buffer, compact=True, border=2)
    return buffer.getvalue()
