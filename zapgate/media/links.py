"""Signed media links: a URL that fetches one file without credentials until it expires.

The link names the media and its expiry and carries an HMAC-SHA256 of both (and the tenant)
under a server secret shared by every node; altering any part, or using it late, is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlencode

MAX_TTL_SECONDS = 7 * 86_400
PATH = "/api/v1/media/{media_id}/content"


class MediaLinks:
    """Signs and checks links with ``secret``."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def path(self, tenant: str, media_id: str, expires_at: int) -> str:
        """The signed path (with its query) of a link valid until ``expires_at`` (Unix s)."""
        query = urlencode(
            {
                "tenant": tenant,
                "expires": expires_at,
                "signature": self._sign(tenant, media_id, expires_at),
            }
        )
        return f"{PATH.format(media_id=media_id)}?{query}"

    def valid(self, tenant: str, media_id: str, expires_at: int, signature: str) -> bool:
        """Whether ``signature`` is the one this server made for these values."""
        return hmac.compare_digest(self._sign(tenant, media_id, expires_at), signature)

    def _sign(self, tenant: str, media_id: str, expires_at: int) -> str:
        message = f"media\n{tenant}\n{media_id}\n{expires_at}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
