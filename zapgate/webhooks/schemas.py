"""Request and response bodies of the webhooks API."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictStr,
    field_validator,
)

from zapgate.http.deps import Instant
from zapgate.http.openapi import without_null
from zapgate.names import SESSION_NAME

HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
HEADER_VALUE = re.compile(r"^[\x20-\x7e\t]{0,4096}$")
EventName = Literal[
    "session.status",
    "session.qr",
    "session.health",
    "message.received",
    "message.queued",
    "message.sent",
    "message.status",
    "message.edited",
    "message.revoked",
    "message.poll_vote",
    "call.received",
    "webhook.disabled",
    "sink.disabled",
    "integration.disabled",
]
"""The event types a subscription can ask for (``zapgate.events.model.EventType``)."""
EVENTS_DOC = "event types to deliver; empty means all (there is no wildcard)"
SESSIONS_DOC = "session names; empty means all"
SessionFilter = Annotated[StrictStr, Field(pattern=SESSION_NAME)]
HeaderName = Annotated[StrictStr, Field(pattern=HEADER_NAME.pattern)]
HeaderValue = Annotated[StrictStr, Field(pattern=HEADER_VALUE.pattern)]
HEADERS_DOC = (
    "sent with every delivery (not the webhook-* signature headers, Content-Type or "
    "X-Zapgate-Request-Id)"
)


def _unset(schema: dict[str, Any]) -> None:
    """A PATCH field: absent means unchanged and null is refused, so the schema has no null."""
    without_null(schema)


def _only_valid_names(schema: dict[str, Any]) -> None:
    """Header names other than ``HeaderName`` are refused, not free-form."""
    schema["additionalProperties"] = False


def _unset_headers(schema: dict[str, Any]) -> None:
    _unset(schema)
    _only_valid_names(schema)


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise ValueError("leave out what you do not change; null is not allowed")
    return value


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
    events: list[EventName] = Field(default_factory=list, max_length=50, description=EVENTS_DOC)
    sessions: list[SessionFilter] = Field(
        default_factory=list, max_length=500, description=SESSIONS_DOC
    )
    headers: dict[HeaderName, HeaderValue] = Field(
        default_factory=dict,
        max_length=20,
        description=HEADERS_DOC,
        json_schema_extra=_only_valid_names,
    )
    active: StrictBool = True

    _headers_ok = field_validator("headers")(_check_headers)


class UpdateWebhook(BaseModel):
    """Changes to a subscription: only the fields given; leave out (never null) what stays."""

    model_config = ConfigDict(extra="forbid")

    url: StrictStr | None = Field(default=None, max_length=2048, json_schema_extra=_unset)
    events: list[EventName] | None = Field(
        default=None, max_length=50, description=EVENTS_DOC, json_schema_extra=_unset
    )
    sessions: list[SessionFilter] | None = Field(
        default=None, max_length=500, description=SESSIONS_DOC, json_schema_extra=_unset
    )
    headers: dict[HeaderName, HeaderValue] | None = Field(
        default=None, max_length=20, description=HEADERS_DOC, json_schema_extra=_unset_headers
    )
    active: StrictBool | None = Field(default=None, json_schema_extra=_unset)

    _headers_ok = field_validator("headers")(_check_headers)
    _no_nulls = field_validator("*", mode="before")(_refuse_null)


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

    grace_seconds: StrictFloat | None = Field(
        default=None, ge=0, le=7 * 86_400, description="null or absent: the configured default"
    )


class Replay(BaseModel):
    """Deliver again every matching event since this time."""

    model_config = ConfigDict(extra="forbid")

    since: Instant


class Replayed(BaseModel):
    """How many deliveries a replay queued."""

    replayed: int


class DeliveryFields(BaseModel):
    """What every delivery shows (webhooks', sinks' and integrations' add their owner's id)."""

    id: str
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
    request_id: str | None = Field(
        description="the X-Request-Id of the request that caused the event (sent as the "
        "X-Zapgate-Request-Id header); null when none did"
    )
    attempt_log: list[dict[str, Any]] = Field(default_factory=list)


class DeliveryOut(DeliveryFields):
    """One event's delivery to one subscription, with its attempts."""

    webhook_id: str


class DeliveryPage(BaseModel):
    """Deliveries, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    data: list[DeliveryOut]
    next_cursor: str | None
