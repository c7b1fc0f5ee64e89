"""The media store protocol, its errors and its keys (``<tenant>/<sha256 hex>``)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from zapgate.names import TENANT_ID

_TENANT = re.compile(TENANT_ID)
_SHA256 = re.compile(r"[0-9a-f]{64}")


class MediaMissing(Exception):
    """No file under this key."""


class MediaStoreError(Exception):
    """The store is unreachable or misconfigured (the caller answers 503)."""


def split_key(key: str) -> tuple[str, str]:
    """``(tenant, sha256)`` of ``key``; ValueError unless it is ``<tenant>/<64 lowercase hex>``.

    Nothing else ever reaches a path or an object name, so a key cannot traverse.
    """
    tenant, slash, digest = key.partition("/")
    if not (slash and _TENANT.fullmatch(tenant) and _SHA256.fullmatch(digest)):
        raise ValueError(f"invalid media key {key!r}")
    return tenant, digest


def is_key(key: str) -> bool:
    """Whether ``key`` is a valid key (listings skip anything else)."""
    try:
        split_key(key)
    except ValueError:
        return False
    return True


def split_prefix(prefix: str) -> str | None:
    """The tenant of a listing prefix ``"<tenant>/"``, or None for ``""`` (every tenant)."""
    if prefix == "":
        return None
    tenant = prefix.removesuffix("/")
    if not (prefix.endswith("/") and _TENANT.fullmatch(tenant)):
        raise ValueError(f"invalid media prefix {prefix!r}: '' or '<tenant>/'")
    return tenant


class MediaStore(Protocol):
    """Content-addressed files per tenant: a key always names the same bytes.

    Invalid keys raise ValueError before the storage is touched. A put is atomic (a crash leaves
    nothing under the key) and does nothing when the key exists.
    """

    name: str
    """``"local"`` or ``"s3"``."""

    async def start(self) -> None:
        """Prepare the storage (folders, bucket check) and clear what a crash left behind."""

    async def close(self) -> None: ...

    async def put_file(self, key: str, path: Path) -> None:
        """Publish the complete file at ``path`` under ``key`` (the caller deletes ``path``)."""

    async def put_bytes(self, key: str, data: bytes) -> None:
        """Publish ``data`` under ``key``."""

    async def exists(self, key: str) -> bool: ...

    async def read(self, key: str) -> bytes:
        """The whole content; MediaMissing if absent."""

    def stream(self, key: str, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        """The content in chunks; MediaMissing (at the first iteration) if absent."""

    async def delete(self, key: str) -> None:
        """Remove ``key``; no error if absent."""

    def keys(self, prefix: str) -> AsyncIterator[str]:
        """The keys under ``prefix``: ``"<tenant>/"``, or ``""`` for every tenant."""
