"""REST routes for messages."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request

from zapgate.clock import from_datetime
from zapgate.errors import InvalidInput, MessageNotFound
from zapgate.http.auth import Reader, Sender, Watcher
from zapgate.http.deps import Instant, SessionName, services_of
from zapgate.http.errors import responses
from zapgate.http.idempotency import IdempotencyKey, idempotent
from zapgate.http.openapi import MESSAGE_OPERATIONS, links, success
from zapgate.http.responses import Json
from zapgate.messages import search
from zapgate.messages.commands import channel_chat, send
from zapgate.messages.model import Direction, Message
from zapgate.messages.reading import SEND_REQUEST_BODY, read_send
from zapgate.messages.repository import HistoryQuery
from zapgate.messages.schemas import MessageOut, MessagePage
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
    openapi_extra={"requestBody": SEND_REQUEST_BODY},
    summary="Send a message of any type (queued, then sent by the session's outbox)",
    description="JSON: `type` is text (the default), image, video, audio, document, sticker, "
    "location, contact or reaction; a file comes as `media.base64` or `media.url` (fetched "
    "by zapgate; public addresses only). Multipart: the fields `to`, `type`, `caption`, "
    "`reply_to`, `voice` and the file in `file`. A file's type is sniffed from its bytes. "
    "422 `unsupported_message_type` when the session's engine cannot send the type.",
)
async def send_message(
    request: Request,
    session: SessionName,
    caller: Sender,
    idempotency_key: IdempotencyKey = None,
) -> Json:
    services = services_of(request)
    body, upload = await read_send(request)
    return await idempotent(
        request,
        caller.tenant,
        idempotency_key,
        accepted,
        lambda claim: send(services, caller.tenant, session, body, claim, upload),
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
    caller: Reader,
    chat: Annotated[str | None, Query(max_length=128, description="a number or chat id")] = None,
    direction: Literal["in", "out"] | None = None,
    since: Annotated[
        Instant | None,
        Query(description="ISO 8601, inclusive; with since or until, newest first by timestamp"),
    ] = None,
    until: Annotated[
        Instant | None,
        Query(description="ISO 8601, exclusive; with since or until, newest first by timestamp"),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=search.MAX_QUERY_LENGTH,
            description="search: only messages whose text (or caption) has every word of q, in "
            "any order, as a whole word, ignoring case and accents (`nao` finds `Não`). A word "
            "is a run of letters and digits of any script (anything else only separates words; "
            "without a word q finds nothing). q has 1 to "
            f"{search.MAX_QUERY_TERMS} terms: what lies between spaces and ASCII punctuation",
            json_schema_extra={"pattern": search.QUERY_PATTERN},
            examples=["nao sei"],
        ),
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=CURSOR_PATTERN,
            description="the next_cursor of the previous page (same filters)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> Json:
    services = services_of(request)
    await services.sessions.require(caller.tenant, session)
    before, before_ms = _cursor(cursor)
    if before is not None and before_ms is None and (since is not None or until is not None):
        # an id alone (from a page by id): where that message is in time
        before_ms = (await services.messages.get(caller.tenant, before)).created_at
    query = HistoryQuery(
        tenant=caller.tenant,
        session=session,
        limit=limit,
        chat_id=(await channel_chat(services, caller.tenant, session, chat) if chat else None)
        or _chat(chat, services.settings.default_country_code),
        direction=Direction(direction) if direction else None,
        since_ms=from_datetime(since) if since else None,
        until_ms=from_datetime(until) if until else None,
        before=before,
        before_ms=before_ms,
        search=_search(q),
    )
    page = await services.messages.history(query)
    return Json(history_body(page, limit, by_time=query.by_time))


def history_body(page: list[Message], limit: int, by_time: bool = False) -> dict[str, Any]:
    """A history page's answer: its messages and the cursor of the next page, if any.

    The cursor is the last message's id; on pages by time (``since``/``until``) it is
    ``<created_at ms>.<id>``, so the next page seeks there without looking the message up.
    """
    next_cursor = None
    if len(page) == limit:
        last = page[-1]
        timed = by_time and abs(last.created_at) < 10**_MS_DIGITS  # else looked up by id
        next_cursor = f"{last.created_at}.{last.id}" if timed else last.id
    return {"data": [m.public() for m in page], "next_cursor": next_cursor}


ID_CURSOR = r"[A-Za-z0-9_]{1,40}"
"""A cursor of a page by id: a message id."""
_MS_DIGITS = 18
CURSOR_PATTERN = rf"^(-?[0-9]{{1,{_MS_DIGITS}}}\.)?{ID_CURSOR}$"
"""A message id, after ``<created_at ms>.`` on pages by time."""
_CURSOR = re.compile(CURSOR_PATTERN)


def _cursor(cursor: str | None) -> tuple[str | None, int | None]:
    """The id a page continues after, and its ``created_at`` if the cursor carries it."""
    if cursor is None:
        return None, None
    found = _CURSOR.fullmatch(cursor)
    if found is None:  # the query's pattern checked it already
        raise InvalidInput("cursor: not a next_cursor")
    at, _, message_id = cursor.rpartition(".")
    return message_id, int(at) if at else None


@router.get(
    "/messages/{message_id}",
    response_model=MessageOut,
    responses=responses(404),
    summary="One message by id",
)
async def get_message(request: Request, message_id: MessageId, caller: Watcher) -> Json:
    message = await services_of(request).messages.get(caller.tenant, message_id)
    if caller.sessions is not None and message.session not in caller.sessions:
        raise MessageNotFound(f"no message {message_id!r}")  # as another tenant's: not shown
    return Json(message.public())


def _search(q: str | None) -> tuple[str, ...] | None:
    """The words a search for ``q`` needs (None: no search)."""
    if q is None:
        return None
    words = search.query(q)
    if words is None:  # the query's pattern, published but not checked by the framework
        raise InvalidInput(
            f"q: 1 to {search.MAX_QUERY_TERMS} terms, between spaces and ASCII punctuation"
        )
    return words


def _chat(chat: str | None, country_code: str) -> str | None:
    if chat is None:
        return None
    if "@" in chat and not chat.endswith("@c.us"):
        return chat
    return chat_id(normalize_number(chat, country_code))
