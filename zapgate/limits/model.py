"""What a tenant may use: its limits, each 0 = unlimited.

Defaults come from settings (``ZAPGATE_*``); a tenant's stored overrides replace single values.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from zapgate.config import Settings


@dataclass(frozen=True, slots=True)
class Limit:
    """How one limit is named to users: its setting, and what it counts."""

    setting: str
    counts: str


LIMITS: dict[str, Limit] = {
    "rate_per_key": Limit("ZAPGATE_RATE_LIMIT_PER_KEY", "requests per second per key"),
    "burst": Limit("ZAPGATE_RATE_LIMIT_BURST", "requests in a burst per key"),
    "concurrent_per_key": Limit(
        "ZAPGATE_MAX_CONCURRENT_REQUESTS_PER_KEY", "requests in progress per key (more wait)"
    ),
    "sessions": Limit("ZAPGATE_MAX_SESSIONS_PER_TENANT", "sessions per tenant"),
    "webhooks": Limit("ZAPGATE_MAX_WEBHOOKS_PER_TENANT", "webhooks per tenant"),
    "sinks": Limit("ZAPGATE_MAX_SINKS_PER_TENANT", "event sinks per tenant"),
    "queued_per_session": Limit("ZAPGATE_MAX_QUEUED_PER_SESSION", "queued messages per session"),
    "streams_per_key": Limit(
        "ZAPGATE_MAX_STREAMS_PER_KEY", "open streams (SSE, long-polls, Socket.IO) per key"
    ),
    "media_retention_days": Limit(
        "ZAPGATE_MEDIA_RETENTION_DAYS", "days a file is kept after its last use (0: kept)"
    ),
}


@dataclass(frozen=True, slots=True)
class Limits:
    """One tenant's limits; 0 means unlimited."""

    rate_per_key: float
    burst: int
    concurrent_per_key: int
    sessions: int
    webhooks: int
    queued_per_session: int
    streams_per_key: int
    media_retention_days: int = 0
    sinks: int = 10

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """The defaults every tenant gets."""
        return cls(
            rate_per_key=settings.rate_limit_per_key,
            burst=settings.rate_limit_burst,
            concurrent_per_key=settings.max_concurrent_requests_per_key,
            sessions=settings.max_sessions_per_tenant,
            webhooks=settings.max_webhooks_per_tenant,
            queued_per_session=settings.max_queued_per_session,
            streams_per_key=settings.max_streams_per_key,
            media_retention_days=settings.media_retention_days,
            sinks=settings.max_sinks_per_tenant,
        )

    def overridden(self, overrides: dict[str, Any]) -> Limits:
        """These limits with a tenant's stored values (None keeps the default)."""
        known = {f.name for f in fields(self)}
        given = {k: v for k, v in overrides.items() if k in known and v is not None}
        return replace(self, **given)

    @property
    def rate_limited(self) -> bool:
        """False when requests per key are not limited."""
        return self.rate_per_key > 0 and self.burst > 0


def quota_message(name: str, value: float) -> str:
    """The detail of a ``quota_exceeded`` error, naming the limit and how to raise it."""
    limit = LIMITS[name]
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return (
        f"the limit of {shown} {limit.counts} is reached ({limit.setting}, "
        "or the tenant's own limit set with `zapgate tenants limits`)"
    )
