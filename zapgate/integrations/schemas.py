"""Request and response bodies of the session integrations API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictStr

from zapgate.validation import JsonInt
from zapgate.webhooks.schemas import DeliveryFields

ChatName = Annotated[StrictStr, Field(min_length=1, max_length=128)]
Keyword = Annotated[StrictStr, Field(min_length=1, max_length=100)]


class PutChatwoot(BaseModel):
    """A Chatwoot API-channel inbox to mirror the session into."""

    model_config = ConfigDict(extra="forbid")

    base_url: StrictStr = Field(
        min_length=1, max_length=2048, examples=["https://chatwoot.example.com"]
    )
    account_id: JsonInt = Field(ge=1, le=2**31)
    inbox_id: JsonInt = Field(ge=1, le=2**31, description="an API-channel inbox")
    api_token: StrictStr = Field(
        min_length=1, max_length=200, description="a user's access token (never shown again)"
    )
    webhook_secret: StrictStr | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="the inbox's webhook secret (Chatwoot 4.13+): every call must then carry "
        "X-Chatwoot-Signature made with it",
    )
    active: StrictBool = True


class ChatwootOut(BaseModel):
    """A session's Chatwoot mirror (never its token)."""

    session: str
    base_url: str
    account_id: int
    inbox_id: int
    callback_url: str = Field(
        description="paste as the inbox's webhook URL: agents' replies come back through it "
        "(it carries the integration's token: keep it secret)"
    )
    signature_checked: bool = Field(description="whether a webhook_secret was given")
    active: bool
    disabled_reason: str | None
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime


class BotFilter(BaseModel):
    """Which messages go to the bot: every part given must take it; none: all of them."""

    model_config = ConfigDict(extra="forbid")

    chats: list[ChatName] = Field(
        default_factory=list, max_length=500, description="numbers or chat ids; empty: every chat"
    )
    prefix: StrictStr | None = Field(
        default=None, min_length=1, max_length=100, description="the text starts with it"
    )
    keywords: list[Keyword] = Field(
        default_factory=list,
        max_length=50,
        description="the text has one of them, as a whole word (any case)",
    )


class PutBot(BaseModel):
    """A bot that answers the session's chats (Typebot, Dify, Flowise, n8n, your own)."""

    model_config = ConfigDict(extra="forbid")

    url: StrictStr = Field(min_length=1, max_length=2048, examples=["https://bot.example.com/wa"])
    filter: BotFilter = Field(default_factory=BotFilter)
    timeout_seconds: StrictFloat = Field(default=10.0, ge=1, le=60)
    active: StrictBool = True


class BotOut(BaseModel):
    """A session's bot (its secret only in the answer to a PUT)."""

    session: str
    url: str
    filter: BotFilter
    timeout_seconds: float
    active: bool
    disabled_reason: str | None
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime
    secret: str | None = Field(
        default=None,
        description="whsec_...: the bot's requests are signed with it (Standard Webhooks); "
        "shown in the answer to a PUT only",
    )


class PausedChat(BaseModel):
    """A chat a human took over: the bot is not asked about it until it is resumed."""

    chat: str
    paused: bool
    paused_at: datetime | None


class PausedChats(BaseModel):
    """The chats of the session a human took over."""

    data: list[PausedChat]


class IntegrationDeliveryOut(DeliveryFields):
    """One event sent to an integration, with its attempts (``attempt_log[].response``: what
    was done, such as ``skipped: a human took the chat over``)."""

    integration_id: str


class IntegrationDeliveryPage(BaseModel):
    """Deliveries, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    data: list[IntegrationDeliveryOut]
    next_cursor: str | None
