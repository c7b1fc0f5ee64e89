"""Request and response bodies of the messages API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr

MAX_TEXT = 65_536
_SEPARATOR = r"[\t\n\v\f\r ().\-/]"
PHONE_PATTERN = (
    rf"^{_SEPARATOR}*\+?{_SEPARATOR}*[1-9](?:{_SEPARATOR}*[0-9]){{9,14}}{_SEPARATOR}*"
    r"(?:@c\.us[\t\n\v\f\r ]*)?$"
)
"""What ``zapgate.phone.normalize_number`` accepts, for the schema (it stays the judge, answering
``invalid_phone_number``): 10-15 digits with country code, optional ``+``, spaces, ``().-/``
separators and an ``@c.us`` suffix. With ZAPGATE_DEFAULT_COUNTRY_CODE set, national numbers
are accepted too."""
PHONE_DOC = "digits with country code, e.g. 5511999999999 or +55 (11) 99999-9999"


def phone_field(**extra: Any) -> Any:
    """A phone number field: at most 64 characters, ``PHONE_PATTERN`` in the schema."""
    return Field(
        max_length=64,
        description=PHONE_DOC,
        examples=["5511999999999"],
        json_schema_extra={"pattern": PHONE_PATTERN},
        **extra,
    )


class SendText(BaseModel):
    """A text message to send."""

    model_config = ConfigDict(extra="forbid")

    to: StrictStr = phone_field()
    text: StrictStr = Field(min_length=1, max_length=MAX_TEXT, examples=["Olá, mundo!"])


class MessageOut(BaseModel):
    """A stored message."""

    id: str
    session: str
    direction: str = Field(description="in or out")
    chat_id: str
    from_: str = Field(alias="from")
    to: str
    type: str
    text: str | None
    status: str = Field(description="queued, sent, delivered, read, played, received or failed")
    error: str | None = Field(description="why it failed, or the last retried error")
    attempts: int = Field(description="how many times the engine was asked to send it")
    engine_message_id: str | None
    timestamp: datetime
    updated_at: datetime


class MessagePage(BaseModel):
    """A page of history, newest first (by timestamp when ``since``/``until`` is given); pass
    ``next_cursor`` as ``cursor``, with the same filters, for the next page."""

    data: list[MessageOut]
    next_cursor: str | None
