"""The original routes, served as-is on the default session.

``POST /whatsapp/send`` takes ``{"number", "message"}`` and answers ``{"success": true, ...}``;
``GET /whatsapp/messages`` answers a JSON array, newest first, paginated with ``limit`` and
``before`` (the ``Link`` header carries the next page).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, StrictStr

from zapgate.http.auth import LegacyReader, LegacySender
from zapgate.http.deps import services_of
from zapgate.http.errors import responses
from zapgate.http.idempotency import IdempotencyKey, idempotent
from zapgate.http.openapi import MESSAGE_OPERATIONS, links, success
from zapgate.http.responses import Json
from zapgate.messages.commands import send_text
from zapgate.messages.model import Message
from zapgate.messages.repository import HistoryQuery
from zapgate.messages.schemas import MAX_TEXT, MessageOut, phone_field

router = APIRouter(prefix="/whatsapp", tags=["original contract"])
SEND_LINKS = links("message_id", "$response.body#/id", MESSAGE_OPERATIONS)
NEXT_PAGE = {
    "description": 'the next page, `<...>; rel="next"`, when this page is full',
    "schema": {"type": "string"},
}
PhoneText = Annotated[StrictStr, phone_field(lid=False)]
NumberAsInteger = Annotated[int, Field(ge=10**9, le=10**15 - 1)]
"""A number with country code written as a JSON integer: 10 to 15 digits."""


class LegacySend(BaseModel):
    """The original body."""

    number: PhoneText | NumberAsInteger = Field(
        examples=["5511999999999"], description="digits with country code (text or an integer)"
    )
    message: StrictStr = Field(min_length=1, max_length=MAX_TEXT, examples=["Olá, mundo!"])


class LegacySendResult(BaseModel):
    """The original answer, plus the stored message."""

    success: bool
    id: str
    status: str
    message: MessageOut


class LegacyMessage(MessageOut):
    """A stored message with the original ``body`` (its text)."""

    body: str | None = Field(description="the text, as the original contract named it")


@router.post(
    "/send",
    response_model=LegacySendResult,
    responses={
        **responses(404, 409, 413, 503),
        **success(200, "The queued message", links=SEND_LINKS),
    },
    summary="Send a text on the default session (original contract)",
)
async def send(
    request: Request, body: LegacySend, caller: LegacySender, idempotency_key: IdempotencyKey = None
) -> Json:
    services = services_of(request)
    session = services.settings.default_session
    return await idempotent(
        request,
        caller.tenant,
        idempotency_key,
        _answer,
        lambda claim: send_text(
            services,
            caller.tenant,
            session,
            str(body.number),
            body.message,
            claim,
            whatsapp_only=True,
        ),
    )


def _answer(message: Message) -> tuple[int, dict[str, Any]]:
    return 200, legacy_send_result(message)


@router.get(
    "/messages",
    response_model=list[LegacyMessage],
    responses={
        **responses(404),
        **success(200, "Messages, newest first", headers={"Link": NEXT_PAGE}),
    },
    summary="Messages of the default session, newest first (original contract)",
)
async def messages(
    request: Request,
    caller: LegacyReader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[str | None, Query(max_length=64, description="a message id")] = None,
) -> Json:
    services = services_of(request)
    session = services.settings.default_session
    await services.sessions.require(caller.tenant, session)
    query = HistoryQuery(tenant=caller.tenant, session=session, limit=limit, before=before)
    body, headers = legacy_page(await services.messages.history(query), limit)
    return Json(body, headers=headers)


def legacy_page(page: list[Message], limit: int) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The original history answer: the messages, and a ``Link`` to the next page if any."""
    headers = {}
    if len(page) == limit:
        headers["Link"] = f'</whatsapp/messages?limit={limit}&before={page[-1].id}>; rel="next"'
    return [_legacy(m.public()) for m in page], headers


def legacy_send_result(message: Message) -> dict[str, Any]:
    """The original answer to a send, with the stored message."""
    public = message.public()
    return {"success": True, "id": message.id, "status": public["status"], "message": public}


def _legacy(public: dict[str, Any]) -> dict[str, Any]:
    return {**public, "body": public["text"]}
