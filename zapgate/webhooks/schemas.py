"""Request and response bodies of the webhooks API."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    field_validator,
    model_validator,
)

HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
HEADER_VALUE = re.compile(r"^[\x20-\x7e\t]{0,4096}$")


def _check_headers(headers: dict[str, str] | None) -> dict[str, str] | None:
    for name, value in (headers or {}).items():
        if not HEADER_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid header name")
        if not HEADER_VALUE.match(value):
            raise ValueError(f"the value of {name!r} must be printable ASCII (no line breaks)")
    return headers


class CreateWebhook(BaseModel):
    """A new subscription."""

    model_config = ConfigDict(extra="forbid")

    url: StrictStr = Field(max_length=2048, examples=["https://example.com/hooks/whatsapp"])
    events: list[StrictStr] = Field(
        default_factory=list, max_length=50, description="event types; empty means all"
    )
    sessions: list[StrictStr] = Field(
        default_factory=list, max_length=500, description="session names; empty means all"
    )
    headers: dict[StrictStr, StrictStr] = Field(
        default_factory=dict, max_length=20, description="sent with every delivery"
    )
    active: StrictBool = True

    _headers_ok = field_validator("headers")(_check_headers)


class UpdateWebhook(BaseModel):
    """Changes to a subscription (only the fields given)."""

    model_config = ConfigDict(extra="forbid")

    url: StrictStr | None = Field(default=None, max_length=2048)
    events: list[StrictStr] | None = Field(default=None, max_length=50)
    sessions: list[StrictStr] | None = Field(default=None, max_length=500)
    headers: dict[StrictStr, StrictStr] | None = Field(default=None, max_length=20)
    active: StrictBool | None = None

    _headers_ok = field_validator("headers")(_check_headers)

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = [key for key, value in data.items() if value is None]
            if nulls:
                raise ValueError(f"leave out what you do not change; null is not allowed: {nulls}")
        return data


class WebhookOut(BaseModel):
    """A subscription (its secret is shown only when created or rotated)."""

    id: str
    url: str
    events: list[str]
    sessions: list[str]
    headers: dict[str, str]
    active: bool
    disabled_reason: str | None
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime
    secret: str | None = Field(
        default=None, description="whsec_...: shown once, when created or rotated"
    )


class RotateSecret(BaseModel):
    """How long the old secret keeps signing alongside the new one."""

    model_config = ConfigDict(extra="forbid")

    grace_seconds: float | None = Field(default=None, ge=0, le=7 * 86_400)


class Replay(BaseModel):
    """Deliver again every matching event since this time."""

    model_config = ConfigDict(extra="forbid")

    since: datetime


class DeliveryOut(BaseModel):
    """One event's delivery to one subscription, with its attempts."""

    id: str
    webhook_id: str
    event_id: str
    event_seq: int
    session: str | None
    status: str = Field(description="pending, succeeded or failed")
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    attempt_log: list[dict[str, Any]] = Field(default_factory=list)


class DeliveryPage(BaseModel):
    """Deliveries, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    data: list[DeliveryOut]
    next_cursor: str | None
