"""SQL for messages; every query is scoped by tenant."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapgate.db.tables import messages
from zapgate.messages.model import Direction, Message, MessageStatus


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """Filters of a history page; ``before`` is the id cursor (newest first)."""

    tenant: str
    session: str
    limit: int
    chat_id: str | None = None
    direction: Direction | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    before: str | None = None


async def history(engine: AsyncEngine, query: HistoryQuery) -> list[Message]:
    """One page of messages, newest first."""
    statement = sa.select(messages).where(
        messages.c.tenant_id == query.tenant, messages.c.session == query.session
    )
    if query.chat_id is not None:
        statement = statement.where(messages.c.chat_id == query.chat_id)
    if query.direction is not None:
        statement = statement.where(messages.c.direction == query.direction.value)
    if query.since_ms is not None:
        statement = statement.where(messages.c.created_at >= query.since_ms)
    if query.until_ms is not None:
        statement = statement.where(messages.c.created_at < query.until_ms)
    if query.before is not None:
        statement = statement.where(messages.c.id < query.before)
    statement = statement.order_by(messages.c.id.desc()).limit(query.limit)
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).mappings().all()
    return [Message.from_row(row) for row in rows]


async def get(engine: AsyncEngine, tenant: str, message_id: str) -> Message | None:
    """One message of ``tenant``."""
    statement = sa.select(messages).where(
        messages.c.tenant_id == tenant, messages.c.id == message_id
    )
    async with engine.connect() as connection:
        row = (await connection.execute(statement)).mappings().first()
    return Message.from_row(row) if row else None


async def queued(engine: AsyncEngine, tenant: str, session: str, limit: int) -> list[Message]:
    """The oldest queued outbound messages of a session, in order."""
    statement = (
        sa.select(messages)
        .where(
            messages.c.tenant_id == tenant,
            messages.c.session == session,
            messages.c.status == MessageStatus.QUEUED.value,
        )
        .order_by(messages.c.id)
        .limit(limit)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).mappings().all()
    return [Message.from_row(row) for row in rows]


async def transition(
    connection: AsyncConnection,
    where: sa.ColumnElement[bool],
    allowed_from: list[str],
    values: dict[str, object],
) -> Message | None:
    """Move the message matching ``where`` to ``values`` if its status is in ``allowed_from``."""
    statement = (
        sa.update(messages)
        .where(where, messages.c.status.in_(allowed_from))
        .values(**values)
        .returning(*messages.c)
    )
    row = (await connection.execute(statement)).mappings().first()
    return Message.from_row(row) if row else None


def by_id(tenant: str, message_id: str) -> sa.ColumnElement[bool]:
    """Match one message by id."""
    return sa.and_(messages.c.tenant_id == tenant, messages.c.id == message_id)


def by_engine_id(tenant: str, session: str, engine_message_id: str) -> sa.ColumnElement[bool]:
    """Match one outbound message by the engine's id."""
    return sa.and_(
        messages.c.tenant_id == tenant,
        messages.c.session == session,
        messages.c.engine_message_id == engine_message_id,
        messages.c.direction == Direction.OUT.value,
    )


async def exists_by_engine_id(
    engine: AsyncEngine, tenant: str, session: str, engine_message_id: str
) -> bool:
    """Whether an outbound message with this engine id is stored."""
    statement = sa.select(messages.c.id).where(by_engine_id(tenant, session, engine_message_id))
    async with engine.connect() as connection:
        return (await connection.execute(statement)).first() is not None
