"""SQL of the session integrations: chats taken over from the bot, and what the Chatwoot mirror
linked (each chat's conversation, each message's twin). Every function is scoped by tenant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.clock import now_ms
from zapgate.db.committer import UnitOfWork
from zapgate.db.tables import bot_pauses, chatwoot_conversations, chatwoot_messages, messages

# chats a human took over --------------------------------------------------------------------


async def pause(unit: UnitOfWork, tenant: str, session: str, chat: str) -> int:
    """Stop asking the bot about ``chat``; when it was paused (kept if it already was)."""
    where = _chat(bot_pauses, tenant, session, chat)
    since = await unit.connection.scalar(sa.select(bot_pauses.c.paused_at).where(where))
    if since is not None:
        return int(since)
    at = now_ms()
    row = {"tenant_id": tenant, "session": session, "chat": chat, "paused_at": at}
    await unit.connection.execute(bot_pauses.insert().values(**row))
    return at


async def resume(unit: UnitOfWork, tenant: str, session: str, chat: str) -> bool:
    """Ask the bot about ``chat`` again; False if it was not paused."""
    where = _chat(bot_pauses, tenant, session, chat)
    return bool((await unit.connection.execute(sa.delete(bot_pauses).where(where))).rowcount)


async def paused(engine: AsyncEngine, tenant: str, session: str, chat: str) -> bool:
    """Whether a human took ``chat`` over."""
    statement = sa.select(sa.func.count()).where(_chat(bot_pauses, tenant, session, chat))
    async with engine.connect() as connection:
        return bool(await connection.scalar(statement))


async def paused_chats(engine: AsyncEngine, tenant: str, session: str) -> list[tuple[str, int]]:
    """The chats of a session a human took over, with when (oldest first)."""
    statement = (
        sa.select(bot_pauses.c.chat, bot_pauses.c.paused_at)
        .where(bot_pauses.c.tenant_id == tenant, bot_pauses.c.session == session)
        .order_by(bot_pauses.c.paused_at)
        .limit(1000)
    )
    async with engine.connect() as connection:
        return [(row[0], int(row[1])) for row in await connection.execute(statement)]


async def forget(unit: UnitOfWork, tenant: str, session: str, kind: str) -> None:
    """Drop what a session's integration of ``kind`` kept (it is gone)."""
    tables = (bot_pauses,) if kind == "bot" else (chatwoot_conversations, chatwoot_messages)
    for table in tables:
        await unit.connection.execute(
            sa.delete(table).where(table.c.tenant_id == tenant, table.c.session == session)
        )


# the Chatwoot mirror -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Conversation:
    """A chat's Chatwoot contact and conversation."""

    chat: str
    contact_id: int
    conversation_id: int
    source_id: str


async def conversation_of(
    engine: AsyncEngine, tenant: str, session: str, chat: str
) -> Conversation | None:
    """The conversation a chat is mirrored into."""
    statement = sa.select(chatwoot_conversations).where(
        _chat(chatwoot_conversations, tenant, session, chat)
    )
    async with engine.connect() as connection:
        row = (await connection.execute(statement)).mappings().first()
    return _conversation(row) if row else None


async def chat_of(
    engine: AsyncEngine, tenant: str, session: str, conversation_id: int
) -> Conversation | None:
    """The chat a Chatwoot conversation mirrors."""
    c = chatwoot_conversations.c
    statement = sa.select(chatwoot_conversations).where(
        c.tenant_id == tenant, c.session == session, c.conversation_id == conversation_id
    )
    async with engine.connect() as connection:
        row = (await connection.execute(statement)).mappings().first()
    return _conversation(row) if row else None


async def link_conversation(
    unit: UnitOfWork, tenant: str, session: str, link: Conversation
) -> None:
    """Remember (or replace) the conversation of a chat."""
    where = _chat(chatwoot_conversations, tenant, session, link.chat)
    await unit.connection.execute(sa.delete(chatwoot_conversations).where(where))
    await unit.connection.execute(
        chatwoot_conversations.insert().values(
            tenant_id=tenant,
            session=session,
            chat=link.chat,
            contact_id=link.contact_id,
            conversation_id=link.conversation_id,
            source_id=link.source_id,
            created_at=now_ms(),
        )
    )


async def unlink_conversation(unit: UnitOfWork, tenant: str, session: str, chat: str) -> None:
    """Forget a chat's conversation (deleted in Chatwoot: the next message opens another)."""
    where = _chat(chatwoot_conversations, tenant, session, chat)
    await unit.connection.execute(sa.delete(chatwoot_conversations).where(where))


async def link_message(
    unit: UnitOfWork,
    tenant: str,
    session: str,
    message_id: str,
    conversation_id: int,
    chatwoot_id: int,
    part: int = 0,
) -> None:
    """Remember (or replace: a replayed event is posted again) a message's Chatwoot twin."""
    c = chatwoot_messages.c
    await unit.connection.execute(
        sa.delete(chatwoot_messages).where(c.tenant_id == tenant, c.message_id == message_id)
    )
    add_twin(unit, tenant, session, message_id, conversation_id, chatwoot_id, part)


def add_twin(
    unit: UnitOfWork,
    tenant: str,
    session: str,
    message_id: str,
    conversation_id: int,
    chatwoot_id: int,
    part: int = 0,
) -> None:
    """Remember the Chatwoot twin of a message being written (an agent's reply, ``part`` of
    it): in its write, so the mirror never sees the message without it."""
    unit.insert(
        chatwoot_messages,
        {
            "tenant_id": tenant,
            "message_id": message_id,
            "session": session,
            "conversation_id": conversation_id,
            "chatwoot_id": chatwoot_id,
            "created_at": now_ms(),
            "part": part,
        },
    )


@dataclass(frozen=True, slots=True)
class Twin:
    """A message's Chatwoot twin."""

    conversation_id: int
    chatwoot_id: int
    part: int
    """Which message of an agent's reply with several files (0: the first, whose statuses show)."""
    part_failed: bool
    """Whether a message of that reply failed, or one was refused before it became one
    (``refused_part``: a twin with no message)."""


async def twin_of(engine: AsyncEngine, tenant: str, message_id: str) -> Twin | None:
    """A message's Chatwoot twin, read with whether a part of its reply failed (one query)."""
    c, sibling, m = chatwoot_messages.c, chatwoot_messages.alias("sibling"), messages.c
    failed = (
        sa.select(sa.literal(1))
        .select_from(
            sibling.outerjoin(
                messages, sa.and_(m.id == sibling.c.message_id, m.tenant_id == tenant)
            )
        )
        .where(
            sibling.c.tenant_id == tenant,
            sibling.c.chatwoot_id == c.chatwoot_id,
            sa.or_(m.status == "failed", m.id.is_(None)),
        )
        .exists()
    )
    statement = sa.select(c.conversation_id, c.chatwoot_id, c.part, failed).where(
        c.tenant_id == tenant, c.message_id == message_id
    )
    async with engine.connect() as connection:
        row = (await connection.execute(statement)).first()
    return Twin(int(row[0]), int(row[1]), int(row[2]), bool(row[3])) if row else None


async def refused_part(
    unit: UnitOfWork,
    tenant: str,
    session: str,
    conversation_id: int,
    chatwoot_id: int,
    part: int,
) -> None:
    """Remember that ``part`` of an agent's reply could not be queued (after earlier parts
    were): a twin with no message, so the reply's ``Twin.part_failed`` keeps it shown failed."""
    marker = f"refused:{chatwoot_id}:{part}"
    await link_message(unit, tenant, session, marker, conversation_id, chatwoot_id, part)


def _chat(table: sa.Table, tenant: str, session: str, chat: str) -> sa.ColumnElement[bool]:
    return sa.and_(table.c.tenant_id == tenant, table.c.session == session, table.c.chat == chat)


def _conversation(row: Any) -> Conversation:
    return Conversation(
        row["chat"], int(row["contact_id"]), int(row["conversation_id"]), row["source_id"]
    )
