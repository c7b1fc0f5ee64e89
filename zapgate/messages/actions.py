"""The use cases on a message already sent: edit its text, delete it for everyone (or cancel it
while queued); and a chat's presence. The engine acts first, then the store follows."""

from __future__ import annotations

from zapgate.auth.scopes import Scope
from zapgate.auth.service import Principal
from zapgate.engines.base import Presence
from zapgate.errors import MessageNotEditable, MessageNotFound, MessageNotRevocable
from zapgate.messages.model import Direction, Message, MessageStatus
from zapgate.messages.revisions import EDITABLE, REVOCABLE
from zapgate.services import Services


async def edit(services: Services, message: Message, text: str) -> Message:
    """Edit a sent text: on WhatsApp (the session's engine), then here (``message.edited``)."""
    if message.direction is not Direction.OUT or message.kind != "text":
        raise MessageNotEditable("only a text this account sent can be edited")
    if message.status not in EDITABLE or message.engine_message_id is None:
        raise MessageNotEditable(
            f"a {message.status.value} text cannot be edited (only sent, delivered or read)"
        )
    await services.sessions.edit_message(
        message.tenant, message.session, message.chat_id, message.engine_message_id, text
    )
    return await services.messages.revisions.edited(message, text)


async def delete(services: Services, message: Message) -> Message:
    """Delete a message for everyone (``revoked``), or cancel it while queued (``cancelled``,
    never sent); either way its text and file go (the file when no other message uses it)."""
    if message.direction is not Direction.OUT:
        raise MessageNotRevocable("only a message this account sent can be deleted for everyone")
    revisions = services.messages.revisions
    if message.status is MessageStatus.QUEUED:
        if services.sessions.sending(message.tenant, message.session, message.id):
            raise MessageNotRevocable(
                "the message is being sent right now; delete it again in a moment (once sent, "
                "it is deleted for everyone)"
            )
        return await revisions.cancelled(message)
    if message.status not in REVOCABLE or message.engine_message_id is None:
        raise MessageNotRevocable(f"a {message.status.value} message cannot be deleted")
    await services.sessions.revoke_message(
        message.tenant, message.session, message.chat_id, message.engine_message_id
    )
    return await revisions.revoked(message)


async def presence(
    services: Services, tenant: str, session: str, chat: str, state: Presence
) -> None:
    """Show ``state`` in ``chat`` (a chat id)."""
    await services.sessions.require(tenant, session)
    await services.sessions.set_presence(tenant, session, chat, state)


async def sendable(services: Services, caller: Principal, message_id: str) -> Message:
    """The caller's message: MessageNotFound when another tenant's or outside the key's
    sessions (as ``GET``), 403 without the send scope for its session."""
    message = await services.messages.get(caller.tenant, message_id)
    if caller.sessions is not None and message.session not in caller.sessions:
        raise MessageNotFound(f"no message {message_id!r}")
    caller.require(Scope.SEND, message.session)
    return message
