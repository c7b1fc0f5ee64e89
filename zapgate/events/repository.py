"""SQL for the event log: allocate sequence numbers, append, read after a cursor."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapgate.db.tables import events, tenants
from zapgate.events.model import Event, EventDraft


async def append(connection: AsyncConnection, drafts: list[EventDraft]) -> list[Event]:
    """Give ``drafts`` their seq (per tenant, in order) and insert them.

    Allocating with ``UPDATE ... RETURNING`` locks the tenant's counter row until commit, so
    writers of one tenant commit in seq order and a reader never sees seq N+1 before N.
    """
    by_tenant: dict[str, list[EventDraft]] = defaultdict(list)
    for draft in drafts:
        by_tenant[draft.tenant].append(draft)
    placed: dict[str, Event] = {}
    for tenant, group in sorted(by_tenant.items()):
        last = await _advance_counter(connection, tenant, len(group))
        first = last - len(group) + 1
        for offset, draft in enumerate(group):
            placed[draft.id] = draft.placed(first + offset)
    result = [placed[draft.id] for draft in drafts]
    await connection.execute(events.insert(), [_row(event) for event in result])
    return result


async def _advance_counter(connection: AsyncConnection, tenant: str, count: int) -> int:
    statement = (
        sa.update(tenants)
        .where(tenants.c.id == tenant)
        .values(last_seq=tenants.c.last_seq + count)
        .returning(tenants.c.last_seq)
    )
    last = (await connection.execute(statement)).scalar_one_or_none()
    if last is None:
        raise LookupError(f"unknown tenant {tenant!r}")
    return int(last)


def _row(event: Event) -> dict[str, object]:
    return {
        "id": event.id,
        "tenant_id": event.tenant,
        "seq": event.seq,
        "session": event.session,
        "type": event.type,
        "payload": event.payload,
        "created_at": event.created_at,
    }


async def read_after(
    engine: AsyncEngine, tenant: str, after: int, limit: int, session: str | None = None
) -> list[Event]:
    """Events of ``tenant`` with seq > ``after``, oldest first."""
    query = (
        sa.select(events)
        .where(events.c.tenant_id == tenant, events.c.seq > after)
        .order_by(events.c.seq)
        .limit(limit)
    )
    if session is not None:
        query = query.where(events.c.session == session)
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    return [Event.from_row(row) for row in rows]


async def last_seq(engine: AsyncEngine, tenant: str) -> int:
    """The newest seq of ``tenant`` (0 when it has none)."""
    async with engine.connect() as connection:
        value = await connection.scalar(sa.select(tenants.c.last_seq).where(tenants.c.id == tenant))
    return int(value or 0)


async def last_seqs(engine: AsyncEngine) -> dict[str, int]:
    """The newest seq of every tenant."""
    async with engine.connect() as connection:
        rows = (await connection.execute(sa.select(tenants.c.id, tenants.c.last_seq))).all()
    return {str(tenant): int(seq) for tenant, seq in rows}


async def first_kept_seq(engine: AsyncEngine, tenant: str) -> int:
    """The oldest seq still in the log (last seq + 1 when retention removed them all)."""
    async with engine.connect() as connection:
        oldest = await connection.scalar(
            sa.select(sa.func.min(events.c.seq)).where(events.c.tenant_id == tenant)
        )
        if oldest is not None:
            return int(oldest)
        last = await connection.scalar(sa.select(tenants.c.last_seq).where(tenants.c.id == tenant))
    return int(last or 0) + 1


async def delete_older_than(engine: AsyncEngine, cutoff_ms: int) -> int:
    """Retention: remove events created before ``cutoff_ms``; returns how many."""
    async with engine.begin() as connection:
        result = await connection.execute(sa.delete(events).where(events.c.created_at < cutoff_ms))
    return int(result.rowcount or 0)


async def last_seq_in(connection: AsyncConnection, tenant: str) -> int:
    """The newest seq of ``tenant`` as the transaction of ``connection`` sees it."""
    value = await connection.scalar(sa.select(tenants.c.last_seq).where(tenants.c.id == tenant))
    return int(value or 0)


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
    """Events of ``tenant`` created at or after ``since_ms`` with seq <= ``up_to_seq``, in order."""
    query = (
        sa.select(events)
        .where(
            events.c.tenant_id == tenant,
            events.c.created_at >= since_ms,
            events.c.seq <= up_to_seq,
        )
        .order_by(events.c.seq)
        .limit(limit)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    return [Event.from_row(row) for row in rows]
