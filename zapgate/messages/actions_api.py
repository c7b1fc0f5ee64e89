"""REST routes acting on what was sent: edit a text, delete a message for everyone, and what a
chat shows while you write (presence)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from zapgate.auth.scopes import Scope
from zapgate.auth.service import Principal
from zapgate.clock import now_ms
from zapgate.engines.base import EngineEvent, MessageEdited, MessageRevoked, Presence
from zapgate.errors import MessageNotFound, SessionNotReady
from zapgate.http.auth import Admin, Sender, needs
from zapgate.http.deps import SessionName, services_of
from zapgate.http.errors import responses
from zapgate.http.openapi import success
from zapgate.http.responses import Json
from zapgate.messages import actions
from zapgate.messages.api import MessageId
from zapgate.messages.model import Message
from zapgate.messages.schemas import EditMessage, MessageOut, SetPresence
from zapgate.phone import chat_id, normalize_address, normalize_number
from zapgate.services import Services
from zapgate.sessions.schemas import CallOut, SimulatedCall, SimulatedEdit, SimulatedRevoke

router = APIRouter(prefix="/api/v1", tags=["messages"])
MessageSender = Annotated[Principal, Depends(needs(Scope.SEND, filtered=True))]
"""``Sender`` for a route about a message: its session is checked once the message is found."""


async def _sendable(request: Request, message_id: MessageId, caller: MessageSender) -> Message:
    return await actions.sendable(services_of(request), caller, message_id)


SendableMessage = Annotated[Message, Depends(_sendable)]
"""The caller's message (404 as ``GET`` when not; 403 without the send scope for its session),
found before the body is read."""
_GROUP_OR_ID = r"[0-9]{5,25}(-[0-9]{5,15})?@(c\.us|g\.us|lid)"
CHAT_PATTERN = rf"^([+0-9 ().\-/]{{6,40}}|{_GROUP_OR_ID})$"
ChatParam = Annotated[
    str,
    Path(
        max_length=64,
        pattern=CHAT_PATTERN,
        description="a phone number, or a chat id: <number>@c.us, a LID (@lid), a group (@g.us)",
        examples=["5511999999999"],
    ),
]
_CHAT_ID = re.compile(_GROUP_OR_ID)


@router.patch(
    "/messages/{message_id}",
    response_model=MessageOut,
    responses={**responses(404, 409, 413, 503), **success(200, "The edited message")},
    summary="Edit a sent text (on WhatsApp, and here: edited_at, event message.edited)",
    description="Only a text this account sent, once sent (sent, delivered or read): else 409 "
    "`message_not_editable`. The session must be WORKING (409 `session_not_ready`); WhatsApp "
    "refuses edits after about 15 minutes (409 `engine_refused`); an engine that cannot edit "
    "answers 422 `unsupported`.",
)
async def edit_message(
    request: Request,
    message_id: MessageId,
    caller: MessageSender,
    message: SendableMessage,
    body: EditMessage,
) -> Json:
    edited = await actions.edit(services_of(request), message, body.text)
    return Json(edited.public())


@router.delete(
    "/messages/{message_id}",
    response_model=MessageOut,
    responses={
        **responses(404, 409, 503),
        **success(200, "The message, now revoked (or cancelled): without its text or file"),
    },
    summary="Delete a message for everyone (a queued one is cancelled, never sent)",
    description="A sent message is deleted on WhatsApp for everyone and kept here as `revoked` "
    "(event `message.revoked`); a queued one is taken out of the outbox as `cancelled` (event "
    "`message.status`). Either way its text goes, and its file when no other message uses it. "
    "Only messages this account sent (409 `message_not_revocable`); WhatsApp refuses after "
    "about two days (409 `engine_refused`); an engine that cannot answers 422 `unsupported`.",
)
async def delete_message(
    request: Request, message_id: MessageId, caller: MessageSender, message: SendableMessage
) -> Json:
    deleted = await actions.delete(services_of(request), message)
    return Json(deleted.public())


@router.post(
    "/sessions/{session}/chats/{chat}/presence",
    status_code=204,
    responses=responses(404, 409, 413, 503),
    summary="Show typing or recording in a chat (paused: stop)",
    description="What the other side sees while you write: `typing`, `recording` (a voice "
    "note) or `paused`. WhatsApp clears it by itself after a while or when a message is sent. "
    "An engine that cannot answers 422 `unsupported`.",
)
async def set_presence(
    request: Request, session: SessionName, chat: ChatParam, body: SetPresence, caller: Sender
) -> Response:
    services = services_of(request)
    chat_of = _chat(chat, services.settings.default_country_code)
    await actions.presence(services, caller.tenant, session, chat_of, Presence(body.state))
    return Response(status_code=204)


def _chat(chat: str, country_code: str) -> str:
    """The chat id a path names (a number is normalised as in sends)."""
    if _CHAT_ID.fullmatch(chat):
        return chat
    return chat_id(normalize_number(chat, country_code))


@router.post(
    "/sessions/{session}/simulate/call",
    status_code=202,
    response_model=CallOut,
    tags=["sessions"],
    responses={**responses(404, 409, 413, 503), **success(202, "The call, ringing")},
    summary="Simulator: someone calls the session now",
    description="What is done with it (the session config's `calls`: reject, reply) shows in "
    "its `call.received` event.",
)
async def simulate_call(
    request: Request, session: SessionName, body: SimulatedCall, caller: Admin
) -> Json:
    services = services_of(request)
    number = normalize_address(body.from_, services.settings.default_country_code)
    call_id = await services.sessions.simulate_call(caller.tenant, session, number, body.video)
    return Json({"id": call_id, "from": number, "video": body.video}, status_code=202)


@router.post(
    "/sessions/{session}/simulate/edit",
    response_model=MessageOut,
    tags=["sessions"],
    responses={**responses(404, 409, 413, 503), **success(200, "The message, edited")},
    summary="Simulator: the sender of a message of this session edits it (message.edited)",
)
async def simulate_edit(
    request: Request, session: SessionName, body: SimulatedEdit, caller: Admin
) -> Json:
    services = services_of(request)
    message = await _of_session(services, caller.tenant, session, body.message_id)
    assert message.engine_message_id is not None
    edit = MessageEdited(message.engine_message_id, body.text, now_ms())
    return Json((await _simulated(services, message, edit)).public())


@router.post(
    "/sessions/{session}/simulate/revoke",
    response_model=MessageOut,
    tags=["sessions"],
    responses={**responses(404, 409, 413, 503), **success(200, "The message, revoked")},
    summary="Simulator: the sender of a message of this session deletes it for everyone "
    "(message.revoked)",
)
async def simulate_revoke(
    request: Request, session: SessionName, body: SimulatedRevoke, caller: Admin
) -> Json:
    services = services_of(request)
    message = await _of_session(services, caller.tenant, session, body.message_id)
    assert message.engine_message_id is not None
    revoke = MessageRevoked(message.engine_message_id, now_ms())
    return Json((await _simulated(services, message, revoke)).public())


async def _of_session(services: Services, tenant: str, session: str, message_id: str) -> Message:
    """A message of ``session`` the engine knows (SessionNotReady while queued)."""
    await services.sessions.require(tenant, session)
    message = await services.messages.get(tenant, message_id)
    if message.session != session:
        raise MessageNotFound(f"no message {message_id!r} in session {session!r}")
    if message.engine_message_id is None:
        raise SessionNotReady(f"message {message_id!r} was never sent: the phone lacks it")
    return message


async def _simulated(services: Services, message: Message, event: EngineEvent) -> Message:
    await services.sessions.simulate_event(message.tenant, message.session, event)
    return await services.messages.get(message.tenant, message.id)
