"""SQL for chats; every query is scoped by tenant.

The ``chats`` rows follow the messages: ``touch`` notes each stored message in its write batch,
and the batch writes one upsert per chat it touched (one statement for all of them), in the
messages' transaction. A page of chats then reads ``ix_chats_activity`` and one message per chat,
whatever the length of the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapgate.chats.model import Chat
from zapgate.db.committer import UnitOfWork
from zapgate.db.tables import chats, messages
from zapgate.messages.model import Direction, Message

_NOTED = "chats.noted"
"""The ``UnitOfWork.scratch`` key of what the batch's messages did to their chats."""
PHONE_MAX = 32


@dataclass(slots=True)
class _Noted:
    last: str
    inbound: int
    phone: str | None


@dataclass(frozen=True, slots=True)
class ChatQuery:
    """A page of a session's chats, newest activity first; ``before`` is the cursor (the last
    message id of the previous page's last chat)."""

    tenant: str
    session: str
    limit: int
    before: str | None = None
    unread_only: bool = False


def touch(unit: UnitOfWork, message: Message) -> None:
    """Note ``message`` (of ``message.tenant``) as its chat's newest activity, and an inbound
    one as unread; written for the whole batch at its flush (``UnitOfWork.at_flush``)."""
    noted: dict[tuple[str, str, str], _Noted] | None = unit.scratch.get(_NOTED)
    if noted is None:
        noted = unit.scratch[_NOTED] = {}
        unit.at_flush(partial(_write, noted))
    key = (message.tenant, message.session, message.chat_id)
    inbound = int(message.direction is Direction.IN)
    phone = (message.content or {}).get("from_phone")
    phone = phone[:PHONE_MAX] if isinstance(phone, str) and phone else None
    entry = noted.get(key)
    if entry is None:
        noted[key] = _Noted(message.id, inbound, phone)
        return
    entry.last = max(entry.last, message.id)
    entry.inbound += inbound
    entry.phone = phone or entry.phone


async def _write(noted: dict[tuple[str, str, str], _Noted], connection: AsyncConnection) -> None:
    """One upsert for every chat the batch touched (in key order: rows locked in one order)."""
    rows = [
        {
            "tenant_id": tenant,
            "session": session,
            "chat_id": chat,
            "last_message_id": entry.last,
            "unread": entry.inbound,
            "phone": entry.phone,
        }
        for (tenant, session, chat), entry in sorted(noted.items())
    ]
    if rows:
        await connection.execute(_upsert(connection.dialect.name), rows)


@lru_cache(maxsize=4)
def _upsert(dialect: str) -> sa.Insert:
    """``INSERT ... ON CONFLICT DO UPDATE`` (SQLite and PostgreSQL say it alike): the newer of
    the two last messages, the unread counts added."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(chats)
    new, c = statement.excluded, chats.c
    return statement.on_conflict_do_update(
        index_elements=[c.tenant_id, c.session, c.chat_id],
        set_={
            "last_message_id": sa.case(
                (new.last_message_id > c.last_message_id, new.last_message_id),
                else_=c.last_message_id,
            ),
            "unread": c.unread + new.unread,
            "phone": sa.func.coalesce(new.phone, c.phone),
        },
    )


_MESSAGE = [column for column in messages.c if column.name != "search_text"]
_CHAT = [chats.c.unread, chats.c.read_up_to, chats.c.read_at, chats.c.phone]


def _with_last_message() -> sa.Select[Any]:
    c = chats.c
    joined = sa.join(
        chats,
        messages,
        sa.and_(messages.c.tenant_id == c.tenant_id, messages.c.id == c.last_message_id),
    )
    return (
        sa.select(*_MESSAGE, *_CHAT)
        .select_from(joined)
        .where(c.tenant_id == sa.bindparam("t"), c.session == sa.bindparam("s"))
    )


@lru_cache(maxsize=8)
def _page(before: bool, unread_only: bool) -> sa.Select[Any]:
    c = chats.c
    statement = _with_last_message()
    if before:
        statement = statement.where(c.last_message_id < sa.bindparam("before"))
    if unread_only:
        statement = statement.where(c.unread > 0)
    limit = sa.bindparam("n", type_=sa.Integer)
    return statement.order_by(c.last_message_id.desc()).limit(limit)


async def page(engine: AsyncEngine, query: ChatQuery) -> list[Chat]:
    """One page of chats, newest activity first."""
    params: dict[str, Any] = {"t": query.tenant, "s": query.session, "n": query.limit}
    if query.before is not None:
        params["before"] = query.before
    statement = _page(query.before is not None, query.unread_only)
    async with engine.connect() as connection:
        rows = (await connection.execute(statement, params)).mappings().all()
    return [Chat.from_row(row) for row in rows]


_ONE = _with_last_message().where(chats.c.chat_id == sa.bindparam("chat"))


async def get(engine: AsyncEngine, tenant: str, session: str, chat_id: str) -> Chat | None:
    """One chat of a session."""
    params = {"t": tenant, "s": session, "chat": chat_id}
    async with engine.connect() as connection:
        row = (await connection.execute(_ONE, params)).mappings().first()
    return Chat.from_row(row) if row else None


async def read_mark(
    connection: AsyncConnection, tenant: str, session: str, chat_id: str
) -> tuple[str, str | None] | None:
    """A chat's last message id and read mark (None: no such chat)."""
    c = chats.c
    statement = sa.select(c.last_message_id, c.read_up_to).where(
        c.tenant_id == tenant, c.session == session, c.chat_id == chat_id
    )
    row = (await connection.execute(statement)).first()
    return (row[0], row[1]) if row else None


async def last_received_engine_id(
    connection: AsyncConnection, tenant: str, session: str, chat_id: str, up_to: str
) -> str | None:
    """The engine's id of the chat's newest inbound message up to ``up_to`` (seeks
    ix_messages_chat)."""
    c = messages.c
    statement = (
        sa.select(c.engine_message_id)
        .where(
            c.tenant_id == tenant,
            c.session == session,
            c.chat_id == chat_id,
            c.id <= up_to,
            c.direction == Direction.IN.value,
            c.engine_message_id.is_not(None),
        )
        .order_by(c.id.desc())
        .limit(1)
    )
    found = (await connection.execute(statement)).scalar()
    return str(found) if found is not None else None


async def in_chat(
    connection: AsyncConnection, tenant: str, session: str, chat_id: str, message_id: str
) -> bool:
    """Whether ``message_id`` is a message of this chat."""
    c = messages.c
    statement = sa.select(c.id).where(
        c.tenant_id == tenant, c.session == session, c.chat_id == chat_id, c.id == message_id
    )
    return (await connection.execute(statement)).first() is not None


async def count_inbound(
    connection: AsyncConnection,
    tenant: str,
    session: str,
    chat_id: str,
    after: str | None,
    up_to: str,
) -> int:
    """Inbound messages of a chat with ids in (``after``, ``up_to``] (seeks ix_messages_chat)."""
    c = messages.c
    statement = sa.select(sa.func.count()).where(
        c.tenant_id == tenant,
        c.session == session,
        c.chat_id == chat_id,
        c.id <= up_to,
        c.direction == Direction.IN.value,
    )
    if after is not None:
        statement = statement.where(c.id > after)
    return int(await connection.scalar(statement) or 0)


async def move_read_mark(
    connection: AsyncConnection,
    tenant: str,
    session: str,
    chat_id: str,
    up_to: str,
    read: int,
    at: int,
) -> bool:
    """Move the read mark forward to ``up_to``, ``read`` inbound messages fewer unread (relative,
    so messages counted meanwhile by another writer stay counted); False if it was there."""
    c = chats.c
    statement = (
        sa.update(chats)
        .where(
            c.tenant_id == tenant,
            c.session == session,
            c.chat_id == chat_id,
            sa.or_(c.read_up_to.is_(None), c.read_up_to < up_to),
        )
        .values(
            read_up_to=up_to,
            read_at=at,
            unread=sa.case((c.unread > read, c.unread - read), else_=0),
        )
    )
    result = await connection.execute(statement)
    return bool(getattr(result, "rowcount", 0))
