"""Request and response bodies of the tenants API (the operator's)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
)

from zapgate.http.openapi import without_null
from zapgate.names import TENANT_ID
from zapgate.validation import whole

Count = Annotated[StrictInt, Field(ge=0, le=1_000_000_000)]
Rate = Annotated[StrictFloat, Field(ge=0, le=1_000_000)]


def _unset(schema: dict[str, Any]) -> None:
    """Absent means unchanged; null is refused, so the schema has no null."""
    without_null(schema)


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise ValueError("leave out what you do not change; null is not allowed")
    return value


class LimitValues(BaseModel):
    """A tenant's own limits: each replaces its ZAPGATE_* default; 0 = unlimited; null = back to
    the default; absent = unchanged."""

    model_config = ConfigDict(extra="forbid")

    rate_per_key: Rate | None = Field(default=None, description="requests per second per key")
    burst: Count | None = Field(default=None, description="requests in a burst per key")
    concurrent_per_key: Count | None = Field(
        default=None, description="requests in progress per key (more wait)"
    )
    sessions: Count | None = Field(default=None, description="sessions")
    webhooks: Count | None = Field(default=None, description="webhook subscriptions")
    queued_per_session: Count | None = Field(
        default=None, description="queued messages per session"
    )
    streams_per_key: Count | None = Field(
        default=None, description="open streams (SSE, long-polls, Socket.IO) per key"
    )
    media_retention_days: Count | None = Field(
        default=None, description="days a file is kept after its last use (0: kept)"
    )
    sinks: Count | None = Field(default=None, description="event sinks (brokers)")

    _whole_numbers = field_validator(
        "burst",
        "concurrent_per_key",
        "sessions",
        "webhooks",
        "queued_per_session",
        "streams_per_key",
        "media_retention_days",
        "sinks",
        mode="before",
    )(whole)

    @field_validator("rate_per_key", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Any:
        """A rate may be written as a JSON integer."""
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    def given(self) -> dict[str, Any]:
        """The limits named in the body (null ones included: they go back to the default)."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class CreateTenant(BaseModel):
    """A new tenant."""

    model_config = ConfigDict(extra="forbid")

    id: StrictStr = Field(
        pattern=TENANT_ID, description="letters, digits, _ and -; never changes", examples=["acme"]
    )
    name: StrictStr | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="a display name (default: the id)",
        json_schema_extra=_unset,
    )
    limits: LimitValues | None = Field(default=None, json_schema_extra=_unset)

    _no_nulls = field_validator("name", "limits", mode="before")(_refuse_null)


class UpdateTenant(BaseModel):
    """Changes to a tenant: only what is given."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr | None = Field(
        default=None, min_length=1, max_length=200, json_schema_extra=_unset
    )
    limits: LimitValues | None = Field(default=None, json_schema_extra=_unset)

    _no_nulls = field_validator("name", "limits", mode="before")(_refuse_null)


class LimitsOut(BaseModel):
    """Limits in force (0 = unlimited)."""

    rate_per_key: float
    burst: int
    concurrent_per_key: int
    sessions: int
    webhooks: int
    queued_per_session: int
    streams_per_key: int
    media_retention_days: int
    sinks: int


class TenantOut(BaseModel):
    """A tenant as the operator sees it."""

    id: str
    name: str
    status: Literal["active", "suspended", "deleting"] = Field(
        description="suspended: every key refused and sessions stopped; deleting: refused, "
        "and gone once its data is deleted"
    )
    created_at: datetime
    suspended_at: datetime | None
    sessions: int = Field(description="how many sessions it has")
    limits: LimitsOut = Field(description="the limits in force")
    overrides: dict[str, float] = Field(
        description="its own limits (the others are the ZAPGATE_* defaults)"
    )


class TenantPage(BaseModel):
    """Tenants in id order; pass ``next_cursor`` as ``cursor`` for the next page."""

    data: list[TenantOut]
    next_cursor: str | None
