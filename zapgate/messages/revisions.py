"""What happens to a stored message after it was sent or received: its text edited, the message
deleted for everyone (or cancelled while queued), votes on a poll. Each change is written with
its event in one transaction; a deleted message's file goes too when no other message uses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zapgate.channels import Channel
from zapgate.clock import now_ms, to_iso
from zapgate.db.committer import Committer, UnitOfWork
from zapgate.engines.base import MessageEdited, MessageRevoked, PollVote
from zapgate.errors import MessageNotEditable, MessageNotRevocable
from zapgate.events.model import EventDraft, EventType
from zapgate.messages import repository
from zapgate.messages.model import Direction, Message, MessageStatus
from zapgate.validation import scrub_text

if TYPE_CHECKING:
    from zapgate.messages.service import MessageService

EDITABLE = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ)
"""The statuses of a sent text that can be edited."""
REVOCABLE = (*EDITABLE, MessageStatus.PLAYED)
"""The statuses of a sent message that can be deleted for everyone."""
GONE = (MessageStatus.REVOKED, MessageStatus.CANCELLED, MessageStatus.FAILED)
"""A message in one of these has nothing left to edit, delete or vote on."""
MAX_SELECTED = 12
MAX_OPTION = 100


class MessageRevisions:
    """Edits, deletions and poll votes of stored messages (the engine already did them)."""

    def __init__(self, committer: Committer, messages: MessageService) -> None:
        self._committer = committer
        self._messages = messages

    # this account's messages -------------------------------------------------------------------

    async def edited(self, message: Message, text: str) -> Message:
        """Store the new text of a sent text, with its ``message.edited`` event;
        MessageNotEditable if it is no longer a sent text."""
        now = now_ms()
        content = {**(message.content or {}), "edited_at": to_iso(now)}
        values: dict[str, object] = {"text": text, "content": content, "updated_at": now}
        allowed = [status.value for status in EDITABLE]

        async def job(unit: UnitOfWork) -> Message | None:
            where = repository.by_id(message.tenant, message.id)
            edited = await repository.revise(unit.connection, where, allowed, values)
            if edited is not None:
                unit.emit(self._event(edited, EventType.MESSAGE_EDITED))
            return edited

        edited = await self._committer.run(job)
        if edited is None:
            raise MessageNotEditable(f"message {message.id!r} is no longer a sent text")
        return edited

    async def revoked(self, message: Message) -> Message:
        """Keep a sent message deleted for everyone: ``revoked``, without its text or file,
        with its ``message.revoked`` event."""
        allowed = [status.value for status in REVOCABLE]
        return await self._clear(message, allowed, MessageStatus.REVOKED)

    async def cancelled(self, message: Message) -> Message:
        """Take a queued message out of the outbox (never sent): ``cancelled``, without its text
        or file, with a ``message.status`` event."""
        return await self._clear(message, [MessageStatus.QUEUED.value], MessageStatus.CANCELLED)

    async def _clear(self, message: Message, allowed: list[str], status: MessageStatus) -> Message:
        now = now_ms()
        values = _cleared(status, now)
        event = EventType.MESSAGE_STATUS if status is MessageStatus.CANCELLED else None

        async def job(unit: UnitOfWork) -> Message | None:
            where = repository.by_id(message.tenant, message.id)
            cleared = await repository.revise(unit.connection, where, allowed, values)
            if cleared is None:
                return None
            if status is MessageStatus.CANCELLED:
                await self._messages.depth.release(unit, message.tenant, message.session)
            unit.emit(self._event(cleared, event or EventType.MESSAGE_REVOKED))
            return cleared

        cleared = await self._committer.run(job)
        if cleared is None:
            raise MessageNotRevocable(f"message {message.id!r} changed meanwhile; look again")
        await self._release(message)
        return cleared

    # what the engine reports -------------------------------------------------------------------

    async def record_edit(self, tenant: str, session: str, edit: MessageEdited) -> Message | None:
        """A message of the session got a new text (its sender edited it); None if unknown."""
        now = now_ms()
        text = scrub_text(edit.text)

        async def job(unit: UnitOfWork) -> Message | None:
            found = await self._find(unit, tenant, session, edit.engine_message_id)
            if found is None:
                return None
            content = {**(found.content or {}), "edited_at": to_iso(edit.timestamp_ms or now)}
            values: dict[str, object] = {"text": text, "content": content, "updated_at": now}
            where = repository.by_id(tenant, found.id)
            edited = await repository.revise(unit.connection, where, [found.status.value], values)
            if edited is not None:
                unit.emit(self._event(edited, EventType.MESSAGE_EDITED))
            return edited

        return await self._committer.run(job, background=tenant)

    async def record_revoke(
        self, tenant: str, session: str, revoke: MessageRevoked
    ) -> Message | None:
        """A message of the session was deleted for everyone by its sender; None if unknown."""
        values = _cleared(MessageStatus.REVOKED, now_ms(), revoke.timestamp_ms)

        async def job(unit: UnitOfWork) -> Message | None:
            found = await self._find(unit, tenant, session, revoke.engine_message_id)
            if found is None or found.status is MessageStatus.QUEUED:
                return None
            where = repository.by_id(tenant, found.id)
            cleared = await repository.revise(unit.connection, where, [found.status.value], values)
            if cleared is not None:
                unit.emit(self._event(cleared, EventType.MESSAGE_REVOKED))
                return found  # as it was: its file is released below
            return None

        was = await self._committer.run(job, background=tenant)
        if was is None:
            return None
        await self._release(was)
        return await self._messages.get(tenant, was.id)

    async def record_vote(self, tenant: str, session: str, vote: PollVote) -> dict[str, Any]:
        """A vote in a poll: kept on the poll message (each voter's latest) with a
        ``message.poll_vote`` event, also when the poll is not known here; returns its payload."""
        voter = _address(scrub_text(vote.voter))
        selected = [scrub_text(option)[:MAX_OPTION] for option in vote.selected[:MAX_SELECTED]]
        at = to_iso(vote.timestamp_ms or now_ms())

        async def job(unit: UnitOfWork) -> dict[str, Any]:
            found = await self._find(unit, tenant, session, vote.poll_engine_message_id)
            poll = (found.content or {}).get("poll") if found is not None else None
            payload: dict[str, Any] = {
                "message_id": None,
                "chat_id": None,
                "voter": voter,
                "selected": selected,
                "timestamp": at,
                "poll": None,
            }
            if found is not None and isinstance(poll, dict):
                votes = {
                    **(poll.get("votes") or {}),
                    voter: {"selected": selected, "timestamp": at},
                }
                poll = {**poll, "votes": votes}
                values: dict[str, object] = {
                    "content": {**(found.content or {}), "poll": poll},
                    "updated_at": now_ms(),
                }
                where = repository.by_id(tenant, found.id)
                await repository.transition(unit.connection, where, [found.status.value], values)
                payload.update(message_id=found.id, chat_id=found.chat_id, poll=poll)
            kind = EventType.MESSAGE_POLL_VOTE  # polls are WhatsApp's
            unit.emit(EventDraft(tenant, session, kind, payload, channel=Channel.WHATSAPP))
            return payload

        return await self._committer.run(job, background=tenant)

    # helpers -----------------------------------------------------------------------------------

    async def _find(
        self, unit: UnitOfWork, tenant: str, session: str, engine_message_id: str
    ) -> Message | None:
        """The message the engine means, unless it has nothing left to change."""
        found = await repository.load_by_engine_id(
            unit.connection, tenant, session, scrub_text(engine_message_id)
        )
        return None if found is None or found.status in GONE else found

    async def _release(self, message: Message) -> None:
        """Remove the file of a deleted message, unless another message uses it."""
        media = self._messages.media
        if message.media_id is not None and media is not None:
            await media.release(message.tenant, message.media_id)

    def _event(self, message: Message, event_type: str) -> EventDraft:
        return self._messages.event_of(message, event_type)


def _cleared(status: MessageStatus, now: int, at_ms: int | None = None) -> dict[str, object]:
    """What a deleted message keeps: its place in the history and when it went."""
    return {
        "status": status.value,
        "text": None,
        "content": {"revoked_at": to_iso(at_ms or now)},
        "media_id": None,
        "updated_at": now,
    }


def _address(chat: str) -> str:
    """A user's number without ``@c.us``; any other id (a LID, a group) whole."""
    return chat[: -len("@c.us")] if chat.endswith("@c.us") else chat


def is_own(message: Message) -> bool:
    """Whether this account sent ``message``."""
    return message.direction is Direction.OUT
