"""Request and response bodies of the sinks API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictStr,
    field_validator,
)

from zapgate.http.deps import Instant
from zapgate.validation import INT64_MAX, JsonInt, whole
from zapgate.webhooks.schemas import (
    EVENTS_DOC,
    SESSIONS_DOC,
    DeliveryFields,
    EventName,
    SessionFilter,
    _unset,
)

DEFAULT_KEY = "zapgate.{tenant}.{session}.{type}"
TEMPLATE_DOC = "filled in per event from {tenant}, {session} (_ for none) and {type}"
Template = Annotated[
    StrictStr, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_\-.:/{}]+$")
]
MANDATORY_DOC = (
    "true: an event that no queue's binding takes is returned by RabbitMQ and its delivery is "
    "recorded failed at once with the reason (not retried; retry or replay it once a queue is "
    "bound), instead of dropped unseen; false: RabbitMQ confirms and drops it, as for any AMQP "
    "publisher"
)
BrokerUrl = Annotated[StrictStr, Field(min_length=1, max_length=2048)]
URL_DOC = "the broker, credentials included; never shown again (the answers show it without them)"
ExchangeName = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_\-.:]{1,200}$")]
StreamName = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]
MaxLen = Annotated[Annotated[int, Strict(), Field(ge=1, le=100_000_000)], BeforeValidator(whole)]
"""A stream's length bound, as ``JsonInt`` takes it (its bounds nested: in the schema too)."""


class _Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EventName] = Field(default_factory=list, max_length=50, description=EVENTS_DOC)
    sessions: list[SessionFilter] = Field(
        default_factory=list, max_length=500, description=SESSIONS_DOC
    )
    active: StrictBool = True


class RabbitMqSink(_Filters):
    """Publish each event to a RabbitMQ exchange (a durable topic exchange, declared if
    missing), persistent and confirmed by the broker."""

    type: Literal["rabbitmq"]
    url: BrokerUrl = Field(
        description=URL_DOC,
        pattern=r"^[aA][mM][qQ][pP][sS]?://",
        examples=["amqp://user:pass@rabbit:5672/%2F"],
    )
    exchange: ExchangeName = "zapgate"
    routing_key: Template = Field(default=DEFAULT_KEY, description=TEMPLATE_DOC)
    mandatory: StrictBool = Field(default=True, description=MANDATORY_DOC)


class NatsSink(_Filters):
    """Publish each event to a NATS JetStream subject (the stream is created if missing),
    acknowledged by JetStream; the event id is the ``Nats-Msg-Id`` (a re-publish is dropped)."""

    type: Literal["nats"]
    url: BrokerUrl = Field(
        description=URL_DOC,
        pattern=r"^([nN][aA][tT][sS]|[tT][lL][sS])://",
        examples=["nats://nats:4222"],
    )
    subject: Template = Field(default=DEFAULT_KEY, description=TEMPLATE_DOC)
    stream: StreamName = "ZAPGATE"


class RedisSink(_Filters):
    """Append each event to a Redis stream (``XADD`` trimmed to about ``maxlen`` entries)."""

    type: Literal["redis"]
    url: BrokerUrl = Field(
        description=URL_DOC,
        pattern=r"^[rR][eE][dD][iI][sS][sS]?://",
        examples=["redis://:pass@redis:6379/0"],
    )
    stream: Template = Field(default="zapgate:{tenant}", description=TEMPLATE_DOC)
    maxlen: MaxLen = 100_000


CreateSink = Annotated[RabbitMqSink | NatsSink | RedisSink, Field(discriminator="type")]


def _refuse_null(value: object) -> object:
    if value is None:
        raise ValueError("leave out what you do not change; null is not allowed")
    return value


class UpdateSink(BaseModel):
    """Changes to a sink: only the fields given (never null); its type stays, and the fields of
    another type are refused."""

    model_config = ConfigDict(extra="forbid")

    url: BrokerUrl | None = Field(default=None, json_schema_extra=_unset)
    exchange: ExchangeName | None = Field(default=None, json_schema_extra=_unset)
    routing_key: Template | None = Field(default=None, json_schema_extra=_unset)
    mandatory: StrictBool | None = Field(
        default=None, description=MANDATORY_DOC, json_schema_extra=_unset
    )
    subject: Template | None = Field(default=None, json_schema_extra=_unset)
    stream: Template | None = Field(default=None, json_schema_extra=_unset)
    maxlen: MaxLen | None = Field(default=None, json_schema_extra=_unset)
    events: list[EventName] | None = Field(
        default=None, max_length=50, description=EVENTS_DOC, json_schema_extra=_unset
    )
    sessions: list[SessionFilter] | None = Field(
        default=None, max_length=500, description=SESSIONS_DOC, json_schema_extra=_unset
    )
    active: StrictBool | None = Field(default=None, json_schema_extra=_unset)

    _no_nulls = field_validator("*", mode="before")(_refuse_null)


class SinkOut(BaseModel):
    """A sink (its URL without credentials)."""

    id: str
    type: Literal["rabbitmq", "nats", "redis"]
    url: str
    exchange: str | None = None
    routing_key: str | None = None
    mandatory: bool | None = None
    subject: str | None = None
    stream: str | None = None
    maxlen: int | None = None
    events: list[str]
    sessions: list[str]
    active: bool
    disabled_reason: str | None
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime


class ReplayAfterSeq(BaseModel):
    """Publish again every matching event after this seq."""

    model_config = ConfigDict(extra="forbid")

    after_seq: JsonInt = Field(ge=0, le=INT64_MAX)


class ReplaySince(BaseModel):
    """Publish again every matching event since this time."""

    model_config = ConfigDict(extra="forbid")

    since: Instant


SinkReplay = ReplayAfterSeq | ReplaySince


class SinkDeliveryOut(DeliveryFields):
    """One event's delivery to one sink, with its attempts (``last_status_code`` is null)."""

    sink_id: str


class SinkDeliveryPage(BaseModel):
    """Deliveries, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    data: list[SinkDeliveryOut]
    next_cursor: str | None
