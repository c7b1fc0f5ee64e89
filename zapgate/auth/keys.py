"""API key format and hashing. Keys are 256-bit random, so one SHA-256 is the right hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

KEY_PREFIX = "zg"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: ``plaintext`` is shown once and never stored."""

    id: str
    prefix: str
    plaintext: str
    key_hash: str


def issue() -> IssuedKey:
    """A fresh key ``zg_<lookup>_<secret>``."""
    lookup = secrets.token_hex(6)
    plaintext = f"{KEY_PREFIX}_{lookup}_{secrets.token_urlsafe(32)}"
    return IssuedKey(f"key_{lookup}", lookup, plaintext, hash_key(plaintext))


def hash_key(plaintext: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def lookup_of(plaintext: str) -> str:
    """The indexed lookup part of a key; for keys not in zapgate's format, a hash-derived one."""
    parts = plaintext.split("_")
    if len(parts) >= 3 and parts[0] == KEY_PREFIX and len(parts[1]) == 12:
        return parts[1]
    return "x" + hash_key(plaintext)[:23]


def matches(plaintext: str, key_hash: str) -> bool:
    """Constant-time comparison of a presented key with a stored hash."""
    return hmac.compare_digest(hash_key(plaintext), key_hash)
