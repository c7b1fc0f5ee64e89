"""Request and response bodies of the messages API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictStr

MAX_TEXT = 65_536


class SendText(BaseModel):
    """A text message to send."""

    model_config = ConfigDict(extra="forbid")

    to: StrictStr = Field(min_length=1, max_length=64, examples=["5511999999999"])
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
    """A page of history, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    data: list[MessageOut]
    next_cursor: str | None
