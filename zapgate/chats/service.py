"""Chat use cases: a session's chats from its stored history, and their read marks.

Works for every engine: the history is the source of truth. Marking a chat read also asks the
session's engine to send read receipts when it can (``Capability.CHATS``); when it cannot, or the
session is not running here, the mark is stored all the same.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.chats import repository
from zapgate.chats.model import Chat
from zapgate.clock import now_ms
from zapgate.db.committer import Committer, Refusal, UnitOfWork
from zapgate.engines.base import Capability, EngineError
from zapgate.engines.directory import ChatReader, MessageReader
from zapgate.errors import AppError, ChatNotFound, MessageNotFound
from zapgate.sessions.service import SessionManager

log = logging.getLogger(__name__)


class Receipts(StrEnum):
    """What became of the read receipts of a chat marked read."""

    SENT = "sent"
    UNSUPPORTED = "unsupported"
    """The session's engine cannot send them."""
    NOT_RUNNING = "not_running"
    """The session is not running on this node (or not connected)."""
    FAILED = "failed"


class ChatService:
    def __init__(self, database: AsyncEngine, committer: Committer, sessions: SessionManager):
        self._database = database
        self._committer = committer
        self._sessions = sessions

    async def page(self, query: repository.ChatQuery) -> list[Chat]:
        """A page of the session's chats, newest activity first (SessionNotFound if none)."""
        await self._sessions.require(query.tenant, query.session)
        return await repository.page(self._database, query)

    async def get(self, tenant: str, session: str, chat_id: str) -> Chat:
        """One chat, or ChatNotFound."""
        await self._sessions.require(tenant, session)
        chat = await repository.get(self._database, tenant, session, chat_id)
        if chat is None:
            raise ChatNotFound(f"no chat {chat_id!r} in session {session!r}")
        return chat

    async def mark_read(
        self, tenant: str, session: str, chat_id: str, up_to: str | None = None
    ) -> tuple[Chat, Receipts]:
        """Move the chat's read mark forward to ``up_to`` (default: its newest message), then
        ask the engine for read receipts. A mark at or after ``up_to`` already stays."""
        await self._sessions.require(tenant, session)
        newest: str | None = None
        """The engine's id of the newest received message marked read (for engines that send
        receipts by message)."""

        async def job(unit: UnitOfWork) -> Refusal | None:
            nonlocal newest
            connection = unit.connection
            found = await repository.read_mark(connection, tenant, session, chat_id)
            if found is None:
                return Refusal(ChatNotFound(f"no chat {chat_id!r} in session {session!r}"))
            last, mark = found
            target = up_to or last
            if up_to is not None and not await repository.in_chat(
                connection, tenant, session, chat_id, up_to
            ):
                return Refusal(MessageNotFound(f"message_id: no message {up_to!r} in this chat"))
            newest = await repository.last_received_engine_id(
                connection, tenant, session, chat_id, target
            )
            if mark is not None and target <= mark:
                return None
            read = await repository.count_inbound(
                connection, tenant, session, chat_id, mark, target
            )
            await repository.move_read_mark(
                connection, tenant, session, chat_id, target, read, now_ms()
            )
            return None

        await self._committer.run(job)
        receipts = await self._receipts(tenant, session, chat_id, newest)
        return await self.get(tenant, session, chat_id), receipts

    async def _receipts(
        self, tenant: str, session: str, chat_id: str, newest: str | None
    ) -> Receipts:
        found = await self._sessions.require(tenant, session)
        try:
            engine = self._sessions.running_engine(found, Capability.CHATS)
        except AppError as error:
            unsupported = error.code == "unsupported"
            return Receipts.UNSUPPORTED if unsupported else Receipts.NOT_RUNNING
        try:
            if isinstance(engine, MessageReader):  # by its newest message (the Cloud API)
                if newest is None:
                    return Receipts.SENT  # nothing received to mark
                await engine.mark_message_read(newest)
            elif isinstance(engine, ChatReader):
                await engine.mark_read(chat_id)
            else:
                return Receipts.UNSUPPORTED
        except EngineError as error:
            log.info("read receipts of %s/%s %s: %s", tenant, session, chat_id, error)
            return Receipts.NOT_RUNNING if error.transient else Receipts.FAILED
        return Receipts.SENT
