"""SQL for the event log: allocate sequence numbers, append, read after a cursor."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapgate.db.tables import events
from zapgate.events.model import Event, EventDraft
from zapgate.tenants import repository as tenant_store

_INSERT = events.insert()
"""Built once: a statement reused keeps its cache key (one per batch otherwise)."""


async def all_tenants_append(connection: AsyncConnection, drafts: list[EventDraft]) -> list[Event]:
    """Give ``drafts`` (of any tenants: a batch is shared) their seq per tenant and insert them.

    Each tenant's seqs come from ``tenant_store.advance_seq``, whose row lock keeps one
    tenant's writers committing in seq order.
    """
    by_tenant: dict[str, list[EventDraft]] = defaultdict(list)
    for draft in drafts:
        by_tenant[draft.tenant].append(draft)
    placed: dict[str, Event] = {}
    for tenant, group in sorted(by_tenant.items()):
        last = await tenant_store.advance_seq(connection, tenant, len(group))
        first = last - len(group) + 1
        for offset, draft in enumerate(group):
            placed[draft.id] = draft.placed(first + offset)
    result = [placed[draft.id] for draft in drafts]
    await connection.execute(_INSERT, [_row(event) for event in result])
    return result


def _row(event: Event) -> dict[str, object]:
    return {
        "id": event.id,
        "tenant_id": event.tenant,
        "seq": event.seq,
        "session": event.session,
        "type": event.type,
        "payload": event.payload,
        "created_at": event.created_at,
        "actor": event.actor,
        "request_id": event.request_id,
        "channel": event.channel,
    }


async def read_after(
    engine: AsyncEngine,
    tenant: str,
    after: int,
    limit: int,
    session: str | frozenset[str] | None = None,
    max_bytes: int | None = None,
) -> list[Event]:
    """Events of ``tenant`` with seq > ``after``, oldest first, of ``session`` (one, some, or
    None: all); with ``max_bytes``, only as many as fit in that many characters of payload
    (always at least one), so a page of big events is never loaded whole."""
    query = (
        sa.select(events)
        .where(events.c.tenant_id == tenant, events.c.seq > after)
        .order_by(events.c.seq)
    )
    if isinstance(session, str):
        query = query.where(events.c.session == session)
    elif session is not None:
        query = query.where(events.c.session.in_(sorted(session)))
    async with engine.connect() as connection:
        if max_bytes is not None and limit > 1:
            limit = await _fitting(connection, query, limit, max_bytes)
        rows = (await connection.execute(query.limit(limit))).mappings().all()
    return [Event.from_row(row) for row in rows]


async def _fitting(
    connection: AsyncConnection, query: sa.Select[tuple[object, ...]], limit: int, max_bytes: int
) -> int:
    """How many of the first ``limit`` rows of ``query`` fit in ``max_bytes`` of payload (the
    database measures them; nothing is loaded). Seqs only grow, so the count stays right."""
    size = sa.func.length(sa.cast(events.c.payload, sa.Text))
    sizes = query.with_only_columns(size).limit(limit)
    total = fitting = 0
    for (length,) in await connection.execute(sizes):
        total += length or 0
        if total > max_bytes:
            break
        fitting += 1
    return max(fitting, 1)


async def last_seq(engine: AsyncEngine, tenant: str) -> int:
    """The newest seq of ``tenant`` (0 when it has none)."""
    async with engine.connect() as connection:
        return await tenant_store.last_seq(connection, tenant)


async def all_tenants_last_seqs(engine: AsyncEngine) -> dict[str, int]:
    """The newest seq of every tenant."""
    async with engine.connect() as connection:
        return await tenant_store.all_tenants_last_seqs(connection)


async def first_kept_seq(engine: AsyncEngine, tenant: str) -> int:
    """The oldest seq still in the log (last seq + 1 when retention removed them all)."""
    async with engine.connect() as connection:
        oldest = await connection.scalar(
            sa.select(sa.func.min(events.c.seq)).where(events.c.tenant_id == tenant)
        )
        if oldest is not None:
            return int(oldest)
        return await tenant_store.last_seq(connection, tenant) + 1


async def all_tenants_delete_older_than(engine: AsyncEngine, cutoff_ms: int) -> int:
    """Retention: remove events of every tenant created before ``cutoff_ms``; returns how many."""
    async with engine.begin() as connection:
        result = await connection.execute(sa.delete(events).where(events.c.created_at < cutoff_ms))
    return int(result.rowcount or 0)


async def last_seq_in(connection: AsyncConnection, tenant: str) -> int:
    """The newest seq of ``tenant`` as the transaction of ``connection`` sees it."""
    return await tenant_store.last_seq(connection, tenant)


async def by_ids(engine: AsyncEngine, tenant: str, event_ids: Collection[str]) -> list[Event]:
    """The events of ``tenant`` among ``event_ids`` still in the log (in no particular order)."""
    if not event_ids:
        return []
    query = sa.select(events).where(events.c.tenant_id == tenant, events.c.id.in_(set(event_ids)))
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    return [Event.from_row(row) for row in rows]


async def created_since(
    engine: AsyncEngine, tenant: str, since_ms: int, up_to_seq: int, limit: int
) -> list[Event]:
    """Events of ``tenant`` created at or after ``since_ms`` with seq <= ``up_to_seq``, in order,
    without their payloads (empty): what a replay needs to plan deliveries, at a tenth of the
    memory."""
    return await _without_payloads(
        engine, tenant, events.c.created_at >= since_ms, up_to_seq, limit
    )


async def between_seqs(
    engine: AsyncEngine, tenant: str, after_seq: int, up_to_seq: int, limit: int
) -> list[Event]:
    """Events of ``tenant`` with ``after_seq`` < seq <= ``up_to_seq``, in order, without their
    payloads (as :func:`created_since`)."""
    return await _without_payloads(engine, tenant, events.c.seq > after_seq, up_to_seq, limit)


async def _without_payloads(
    engine: AsyncEngine, tenant: str, start: Any, up_to_seq: int, limit: int
) -> list[Event]:
    columns = [column for column in events.c if column.name != "payload"]
    query = (
        sa.select(*columns)
        .where(events.c.tenant_id == tenant, start, events.c.seq <= up_to_seq)
        .order_by(events.c.seq)
        .limit(limit)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    return [Event.from_row({**row, "payload": {}}) for row in rows]


async def latest_of_type(
    engine: AsyncEngine, tenant: str, session: str, event_type: str, since_seq: int = 0
) -> Event | None:
    """The newest event of ``event_type`` about ``session`` (after ``since_seq``), if any."""
    query = (
        sa.select(events)
        .where(
            events.c.tenant_id == tenant,
            events.c.seq > since_seq,
            events.c.session == session,
            events.c.type == event_type,
        )
        .order_by(events.c.seq.desc())
        .limit(1)
    )
    async with engine.connect() as connection:
        row = (await connection.execute(query)).mappings().first()
    return Event.from_row(row) if row else None


async def newest_seq(engine: AsyncEngine, tenant: str) -> int:
    """The seq of ``tenant``'s newest event (0: none yet): where a reader of only what comes
    next starts."""
    statement = sa.select(sa.func.max(events.c.seq)).where(events.c.tenant_id == tenant)
    async with engine.connect() as connection:
        return int(await connection.scalar(statement) or 0)
