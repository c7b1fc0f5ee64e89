"""A Cloud API session's config, checked by the session API (bad input: 422).

``access_token`` and ``app_secret`` are write-only: the API never shows them again (see
``SECRET_KEYS``). ``base_url`` is the tenant's to choose, so it passes the webhooks' SSRF guard.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zapgate.webhooks import ssrf

GRAPH_URL = "https://graph.facebook.com"
GRAPH_VERSION = "v24.0"
SECRET_KEYS = frozenset({"access_token", "app_secret"})
"""Config keys never returned by the API (a config update that leaves one out keeps it)."""
MAX_RATE = 1000
"""Meta's highest throughput tier, in messages per second."""


class CloudApiConfig(BaseModel):
    """What a ``cloudapi`` session needs from Meta's app dashboard."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    phone_number_id: str = Field(pattern=r"^[0-9]{1,32}$", description="the sender's id")
    access_token: str = Field(min_length=1, max_length=4096, pattern=r"^[!-~]+$", repr=False)
    """A system user's permanent token (write-only)."""
    app_secret: str = Field(min_length=1, max_length=256, pattern=r"^[!-~]+$", repr=False)
    """Signs Meta's callbacks (write-only)."""
    verify_token: str = Field(min_length=1, max_length=256, pattern=r"^[!-~]+$")
    """Chosen by you, typed into Meta's dashboard: answers the callback URL's handshake."""
    waba_id: str | None = Field(default=None, pattern=r"^[0-9]{1,32}$")
    api_version: str = Field(default=GRAPH_VERSION, pattern=r"^v[0-9]{1,3}\.[0-9]{1,2}$")
    base_url: str = Field(default=GRAPH_URL, max_length=2048, pattern=r"^https?://[^/?#\s]+/?$")
    rate_per_second: int = Field(default=80, ge=1, le=MAX_RATE)
    """Sends in any 1-second window, at most (Meta's default tier is 80; tiers reach 1,000)."""
    pair_rate_per_minute: float = Field(default=10.0, ge=0, le=600)
    """Sends to one recipient per minute once its burst is spent (Meta: about one per 6 s)."""
    pair_burst: int = Field(default=45, ge=1, le=1000)
    """Sends to one recipient in a burst before ``pair_rate_per_minute`` applies."""
    timeout_seconds: float = Field(default=20.0, ge=1, le=120)
    """How long one Graph API call may take."""
    health_seconds: float = Field(default=60.0, ge=1, le=3600)
    """How often the phone number is looked at (a sign of life; a revoked token shows)."""

    @property
    def graph(self) -> str:
        """The Graph API's root for this version, e.g. ``https://graph.facebook.com/v24.0``."""
        return f"{self.base_url.rstrip('/')}/{self.api_version}"


@lru_cache(maxsize=8)
def checked_model(allowlist: ssrf.Allowlist) -> type[CloudApiConfig]:
    """``CloudApiConfig`` that also refuses a ``base_url`` the SSRF guard refuses."""

    class CheckedCloudApiConfig(CloudApiConfig):
        @model_validator(mode="after")
        def _safe_base_url(self) -> CheckedCloudApiConfig:
            try:
                ssrf.check_url(self.base_url, allowlist)
            except ssrf.UnsafeUrl as unsafe:
                raise ValueError(f"base_url: {unsafe}") from None
            return self

    return CheckedCloudApiConfig


def parse(options: dict[str, Any]) -> CloudApiConfig:
    """The config of a session (checked when it was stored)."""
    return CloudApiConfig.model_validate(options)
