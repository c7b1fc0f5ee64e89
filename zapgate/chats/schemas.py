"""Request and response bodies of the chats API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from zapgate.channels import OTHER_CHANNEL_CHAT, TELEGRAM_PATTERN
from zapgate.messages.schemas import ADDRESS_PATTERN, MessageOut, message_ref

GROUP_PATTERN = r"^[0-9]{6,30}(-[0-9]{6,20})?@g\.us$"
CHAT_PATTERN = f"{ADDRESS_PATTERN}|{GROUP_PATTERN}|{TELEGRAM_PATTERN}|{OTHER_CHANNEL_CHAT}"
"""A chat in a path: a phone number (``@c.us`` optional), a LID or a group id."""


class ChatOut(BaseModel):
    """A chat of the session's stored history."""

    id: str = Field(description="the chat id: <number>@c.us, <digits>@lid or a group's @g.us")
    phone: str | None = Field(
        description="the phone number: of a user chat, or the one last received with a LID"
    )
    lid: str | None = Field(description="the LID, for a LID chat")
    unread_count: int = Field(description="inbound messages after the read mark")
    read_up_to: str | None = Field(description="the last message marked read (null: none)")
    read_at: datetime | None
    last_activity: datetime = Field(description="the last message's timestamp")
    last_message: MessageOut


class ChatPage(BaseModel):
    """A page of chats, newest activity first (by the last message stored): pass
    ``next_cursor`` as ``cursor`` for the next page. A chat that gets a message meanwhile moves
    to the front, so a walk through the pages shows each chat at most once."""

    data: list[ChatOut]
    next_cursor: str | None


class ReadRequest(BaseModel):
    """Up to which message the chat is read (default: its newest)."""

    model_config = ConfigDict(extra="forbid")

    message_id: StrictStr | None = message_ref("the last message read (a message of this chat)")


class ReadOut(ChatOut):
    """The chat as it is now, and what became of the read receipts."""

    receipts: str = Field(
        description="sent; unsupported (the engine cannot send them); not_running (the "
        "session is not running or connected here); failed. The mark is stored in any case."
    )
