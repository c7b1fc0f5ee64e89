"""REST routes for messages."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request

from zapgate.clock import from_datetime
from zapgate.http.auth import Caller
from zapgate.http.deps import Instant, SessionName, services_of
from zapgate.http.errors import responses
from zapgate.http.idempotency import IdempotencyKey, idempotent
from zapgate.http.openapi import MESSAGE_OPERATIONS, links, success
from zapgate.http.responses import Json
from zapgate.messages.commands import send_text
from zapgate.messages.model import Direction, Message
from zapgate.messages.repository import HistoryQuery
from zapgate.messages.schemas import MessageOut, MessagePage, SendText
from zapgate.phone import chat_id, normalize_number

router = APIRouter(prefix="/api/v1", tags=["messages"])
MAX_PAGE = 500
MESSAGE_LINKS = links("message_id", "$response.body#/id", MESSAGE_OPERATIONS)
MessageId = Annotated[str, Path(max_length=64, examples=["msg_01J0000000000000000000000"])]


@router.post(
    "/sessions/{session}/messages",
    status_code=202,
    response_model=MessageOut,
    responses={
        **responses(404, 409, 413, 503),
        **success(202, "The queued message", links=MESSAGE_LINKS),
    },
    summary="Send a text message (queued, then sent by the session's outbox)",
)
async def send_message(
    request: Request,
    session: SessionName,
    body: SendText,
    caller: Caller,
    idempotency_key: IdempotencyKey = None,
) -> Json:
    services = services_of(request)
    return await idempotent(
        request,
        caller.tenant,
        idempotency_key,
        accepted,
        lambda claim: send_text(services, caller.tenant, session, body.to, body.text, claim),
    )


def accepted(message: Message) -> tuple[int, dict[str, Any]]:
    """The answer to an accepted send."""
    return 202, message.public()


@router.get(
    "/sessions/{session}/messages",
    response_model=MessagePage,
    responses=responses(404),
    summary="Message history of a session, newest first",
)
async def list_messages(
    request: Request,
    session: SessionName,
    caller: Caller,
    chat: Annotated[str | None, Query(max_length=128, description="a number or chat id")] = None,
    direction: Literal["in", "out"] | None = None,
    since: Annotated[Instant | None, Query(description="ISO 8601, inclusive")] = None,
    until: Annotated[Instant | None, Query(description="ISO 8601, exclusive")] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> Json:
    services = services_of(request)
    await services.sessions.require(caller.tenant, session)
    query = HistoryQuery(
        tenant=caller.tenant,
        session=session,
        limit=limit,
        chat_id=_chat(chat, services.settings.default_country_code),
        direction=Direction(direction) if direction else None,
        since_ms=from_datetime(since) if since else None,
        until_ms=from_datetime(until) if until else None,
        before=cursor,
    )
    return Json(history_body(await services.messages.history(query), limit))


def history_body(page: list[Message], limit: int) -> dict[str, Any]:
    """A history page's answer: its messages and the cursor of the next page, if any."""
    next_cursor = page[-1].id if len(page) == limit else None
    return {"data": [m.public() for m in page], "next_cursor": next_cursor}


@router.get(
    "/messages/{message_id}",
    response_model=MessageOut,
    responses=responses(404),
    summary="One message by id",
)
async def get_message(request: Request, message_id: MessageId, caller: Caller) -> Json:
    message = await services_of(request).messages.get(caller.tenant, message_id)
    return Json(message.public())


def _chat(chat: str | None, country_code: str) -> str | None:
    if chat is None:
        return None
    if "@" in chat and not chat.endswith("@c.us"):
        return chat
    return chat_id(normalize_number(chat, country_code))
