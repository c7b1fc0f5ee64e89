"""Standard Webhooks signing: ``whsec_`` secrets, ``v1`` HMAC-SHA256 signatures, headers.

The signed content is ``f"{msg_id}.{timestamp}."`` followed by the raw body bytes; a
signature is ``v1,`` plus the base64 HMAC-SHA256 of it under the decoded secret. The
``webhook-signature`` header holds one signature per valid secret, space-separated, so
a receiver keeps verifying while the sender rotates its secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache
from secrets import token_bytes

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES = 32
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
DEFAULT_TOLERANCE_SECONDS = 300

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"

_VERSION = "v1"


class SignatureError(ValueError):
    """The delivery is not authentic: bad or missing headers, no matching signature, or stale."""


def new_secret() -> str:
    """A fresh random secret, ``whsec_`` + base64 of 32 bytes."""
    return SECRET_PREFIX + base64.b64encode(token_bytes(SECRET_BYTES)).decode("ascii")


@lru_cache(maxsize=4096)
def secret_bytes(secret: str) -> bytes:
    """The HMAC key of ``secret`` (``whsec_`` prefix optional, padding optional); decoded once
    per secret, not once per delivery."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("webhook secret is not valid base64 (expected whsec_<base64>)") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"webhook secret decodes to {len(key)} bytes; "
            f"it must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES}"
        )
    return key


def _digest(key: bytes, msg_id: str, timestamp: int | str, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.digest(key, signed, hashlib.sha256)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` of ``{msg_id}.{timestamp}.{body}`` under ``secret``."""
    if not msg_id or "." in msg_id or any(c.isspace() for c in msg_id):
        raise ValueError("msg_id must be non-empty, without '.' or whitespace")
    digest = _digest(secret_bytes(secret), msg_id, timestamp, body)
    return f"{_VERSION},{base64.b64encode(digest).decode('ascii')}"


def headers(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three ``webhook-*`` headers, with one signature per secret (rotation)."""
    if isinstance(secrets, str):
        raise TypeError("secrets must be a sequence of secrets, not one string")
    if not secrets:
        raise ValueError("at least one secret is needed to sign a webhook")
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(sign(s, msg_id, timestamp, body) for s in secrets),
    }


def _header(received: Mapping[str, str], name: str) -> str:
    for key, value in received.items():
        if key.lower() == name and value:
            return value
    raise SignatureError(f"missing {name} header")


def _check_fresh(value: str, tolerance_seconds: int, now: float | None) -> None:
    if not value.isascii() or not value.isdigit():
        raise SignatureError(f"{TIMESTAMP_HEADER} is not an integer unix timestamp")
    current = time.time() if now is None else now
    if abs(current - int(value)) > tolerance_seconds:
        raise SignatureError(f"{TIMESTAMP_HEADER} is outside the {tolerance_seconds}s tolerance")


def _candidates(signature_header: str) -> list[bytes]:
    found = []
    for item in signature_header.split():
        version, _, encoded = item.partition(",")
        if version != _VERSION:
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Raise :class:`SignatureError` unless ``body`` is authentic and fresh.

    Header names are matched case-insensitively; any ``v1`` signature in the header that
    matches (compared in constant time) is enough, unknown versions are ignored.
    """
    key = secret_bytes(secret)
    msg_id = _header(headers, ID_HEADER)
    timestamp = _header(headers, TIMESTAMP_HEADER)
    _check_fresh(timestamp, tolerance_seconds, now)
    expected = _digest(key, msg_id, timestamp, body)
    matched = False
    for candidate in _candidates(_header(headers, SIGNATURE_HEADER)):
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("no matching signature")
