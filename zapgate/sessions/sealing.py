"""Write-only session secrets (a Cloud API access token, an app secret), sealed at rest.

A session's config is stored with these values encrypted (Fernet: AES-128-CBC with an
HMAC-SHA256, ``sealed:v1:`` in front), and opened when a session is read. The key is
``ZAPGATE_SECRETS_KEY`` when set (then a copy of the database alone does not reveal a token),
else a random server secret kept in the database (every node shares it; it keeps tokens out of
exports, logs and backups of the sessions table, not out of a copy of the whole database).

Keys are installed once per process at start; every key installed opens what it sealed, so
servers of several databases in one process (tests) each read their own sessions.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

log = logging.getLogger(__name__)
SEALED_KEYS = frozenset({"access_token", "app_secret", "auth_token", "bot_token", "secret_token"})
"""Config keys sealed at rest (the engines' write-only secrets)."""
PREFIX = "sealed:v1:"
_keys: list[Fernet] = []


def install(secret: bytes) -> None:
    """Seal with a key made from ``secret`` from now on (and open with it, and earlier ones)."""
    key = Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret).digest()))
    _keys[:] = [key, *(k for k in _keys if k._signing_key != key._signing_key)]


def seal(config: dict[str, Any], owner: str, keys: frozenset[str] = SEALED_KEYS) -> dict[str, Any]:
    """``config`` with its secret values (``keys``) encrypted for ``owner`` (``tenant/session``:
    a value opens only for the owner it was sealed for); as it is when no key is installed yet."""
    if not _keys or not keys & config.keys():
        return config
    sealed = dict(config)
    for name in keys & config.keys():
        value = config[name]
        if isinstance(value, str) and not value.startswith(PREFIX):
            token = _keys[0].encrypt(f"{owner}\n{value}".encode())
            sealed[name] = PREFIX + token.decode()
    return sealed


def unseal(
    config: dict[str, Any], owner: str, keys: frozenset[str] = SEALED_KEYS
) -> dict[str, Any]:
    """``config`` with the values sealed for ``owner`` opened (one no installed key opens, or
    sealed for another session, stays sealed: the engine then fails, its token refused)."""
    if not keys & config.keys():
        return config
    opened = dict(config)
    for name in keys & config.keys():
        value = config[name]
        if isinstance(value, str) and value.startswith(PREFIX) and _keys:
            try:
                plain = MultiFernet(_keys).decrypt(value[len(PREFIX) :].encode()).decode()
            except InvalidToken:
                log.error("a session's %s was sealed with another key (ZAPGATE_SECRETS_KEY?)", name)
                continue
            sealed_for, _, secret = plain.partition("\n")
            if sealed_for == owner:
                opened[name] = secret
            else:
                log.error("session %s holds a %s sealed for another session", owner, name)
    return opened


def is_sealed(value: Any) -> bool:
    """Whether ``value`` looks sealed (a caller may not send one: it is the server's)."""
    return isinstance(value, str) and value.startswith(PREFIX)
