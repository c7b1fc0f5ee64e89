"""REST routes for chats: the conversations of a session's stored history."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from zapgate.chats.repository import ChatQuery
from zapgate.chats.schemas import (
    CHAT_PATTERN,
    GROUP_PATTERN,
    ChatOut,
    ChatPage,
    ReadOut,
    ReadRequest,
)
from zapgate.chats.service import ChatService
from zapgate.http.auth import Reader, Sender
from zapgate.http.deps import SessionName, services_of
from zapgate.http.errors import responses
from zapgate.http.responses import Json
from zapgate.messages.api import ID_CURSOR, MAX_PAGE, history_body
from zapgate.messages.commands import channel_chat
from zapgate.messages.model import Direction
from zapgate.messages.repository import HistoryQuery
from zapgate.messages.schemas import MessagePage
from zapgate.phone import chat_id, normalize_address
from zapgate.services import Services

router = APIRouter(prefix="/api/v1/sessions/{session}/chats", tags=["chats"])
ChatParam = Annotated[
    str,
    Path(
        max_length=128,
        pattern=CHAT_PATTERN,
        description="a phone number, a chat id (<number>@c.us), a LID (<digits>@lid) or a "
        "group id (@g.us); on a Telegram session a chat id or @username, on an SMS session a "
        "number",
        examples=["5511999999999"],
    ),
]
Cursor = Annotated[
    str | None,
    Query(
        max_length=40,
        pattern=f"^{ID_CURSOR}$",
        description="the next_cursor of the previous page",
    ),
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
_GROUP = re.compile(GROUP_PATTERN)


def chats_of(services: Services) -> ChatService:
    """The chat use cases over the app's services (no state of their own)."""
    return ChatService(services.database, services.committer, services.sessions)


async def parse_chat(services: Services, tenant: str, session: str, chat: str) -> str:
    """The chat id a path names (an address is normalised as in sends, for the session's
    channel)."""
    other = await channel_chat(services, tenant, session, chat)
    if other is not None:
        return other
    if _GROUP.fullmatch(chat):
        return chat
    return chat_id(normalize_address(chat, services.settings.default_country_code))


@router.get(
    "",
    response_model=ChatPage,
    responses=responses(404),
    summary="The session's chats, newest activity first, with last message and unread count",
    description="From the stored history, whatever the engine. `unread_count` counts the "
    "inbound messages after the chat's read mark (`POST .../chats/{chat}/read`).",
)
async def list_chats(
    request: Request,
    session: SessionName,
    caller: Reader,
    cursor: Cursor = None,
    limit: Limit = 50,
    unread: Annotated[bool, Query(description="only chats with unread messages")] = False,
) -> Json:
    query = ChatQuery(caller.tenant, session, limit, cursor, unread)
    page = await chats_of(services_of(request)).page(query)
    next_cursor = page[-1].last.id if len(page) == limit else None
    return Json({"data": [chat.public() for chat in page], "next_cursor": next_cursor})


@router.get(
    "/{chat}",
    response_model=ChatOut,
    responses=responses(404),
    summary="One chat: last message, unread count, read mark",
)
async def get_chat(request: Request, session: SessionName, chat: ChatParam, caller: Reader) -> Json:
    services = services_of(request)
    found = await chats_of(services).get(
        caller.tenant, session, await parse_chat(services, caller.tenant, session, chat)
    )
    return Json(found.public())


@router.get(
    "/{chat}/messages",
    response_model=MessagePage,
    responses=responses(404),
    summary="A chat's messages, newest first (the history filtered by chat)",
)
async def list_chat_messages(
    request: Request,
    session: SessionName,
    chat: ChatParam,
    caller: Reader,
    direction: Literal["in", "out"] | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Json:
    services = services_of(request)
    await services.sessions.require(caller.tenant, session)
    query = HistoryQuery(
        tenant=caller.tenant,
        session=session,
        limit=limit,
        chat_id=await parse_chat(services, caller.tenant, session, chat),
        direction=Direction(direction) if direction else None,
        before=cursor,
    )
    return Json(history_body(await services.messages.history(query), limit))


@router.post(
    "/{chat}/read",
    response_model=ReadOut,
    responses=responses(404, 413, 503),
    summary="Mark a chat read (up to a message, default its newest); sends read receipts "
    "where the engine can",
    description="The read mark only moves forward; `unread_count` becomes the inbound "
    "messages after it. The engine is asked for read receipts when it can (`receipts`).",
)
async def read_chat(
    request: Request,
    session: SessionName,
    chat: ChatParam,
    caller: Sender,
    body: ReadRequest | None = None,
) -> Json:
    services = services_of(request)
    up_to = body.message_id if body is not None else None
    found, receipts = await chats_of(services).mark_read(
        caller.tenant, session, await parse_chat(services, caller.tenant, session, chat), up_to
    )
    return Json({**found.public(), "receipts": receipts.value})
