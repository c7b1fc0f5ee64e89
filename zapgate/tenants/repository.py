"""SQL for tenants: the row every other table hangs from, and its event counter."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapgate.clock import now_ms
from zapgate.db.tables import sessions, tenant_owned, tenants
from zapgate.tenants.model import Tenant, TenantStatus


async def ensure(connection: AsyncConnection, tenant: str, name: str) -> None:
    """Create ``tenant`` unless it exists."""
    if not await exists(connection, tenant):
        await connection.execute(
            tenants.insert().values(id=tenant, name=name, last_seq=0, created_at=now_ms())
        )


async def exists(connection: AsyncConnection, tenant: str) -> bool:
    """Whether ``tenant`` is stored."""
    found = await connection.scalar(sa.select(tenants.c.id).where(tenants.c.id == tenant))
    return found is not None


async def create(connection: AsyncConnection, tenant: str, name: str) -> Tenant | None:
    """Create ``tenant``; None if it exists."""
    if await exists(connection, tenant):
        return None
    created = Tenant(tenant, name, 0, now_ms())
    await connection.execute(
        tenants.insert().values(
            id=tenant, name=name, last_seq=0, created_at=created.created_at, status=created.status
        )
    )
    return created


def all_tenants_active() -> sa.ScalarSelect[str]:
    """The ids of the active tenants, as a subquery (whose sessions may run)."""
    active = TenantStatus.ACTIVE.value
    return sa.select(tenants.c.id).where(tenants.c.status == active).scalar_subquery()


async def status_of(connection: AsyncConnection, tenant: str) -> str | None:
    """``tenant``'s status (None: there is no such tenant)."""
    found = await connection.scalar(sa.select(tenants.c.status).where(tenants.c.id == tenant))
    return str(found) if found is not None else None


async def all_tenants_not_active(connection: AsyncConnection) -> set[str]:
    """The tenants that are suspended or being deleted."""
    statement = sa.select(tenants.c.id).where(tenants.c.status != TenantStatus.ACTIVE.value)
    return {str(tenant) for tenant in (await connection.scalars(statement))}


async def all_tenants_deleting(engine: AsyncEngine) -> list[str]:
    """The tenants whose deletion has begun (to finish after a restart)."""
    statement = sa.select(tenants.c.id).where(tenants.c.status == TenantStatus.DELETING.value)
    async with engine.connect() as connection:
        return [str(tenant) for tenant in await connection.scalars(statement)]


async def all_tenants_page(engine: AsyncEngine, after: str | None, limit: int) -> list[Tenant]:
    """Tenants in id order after ``after`` (the operator's list)."""
    statement = sa.select(tenants).order_by(tenants.c.id).limit(limit)
    if after is not None:
        statement = statement.where(tenants.c.id > after)
    async with engine.connect() as connection:
        return [Tenant.from_row(row) for row in (await connection.execute(statement)).mappings()]


async def set_status(
    connection: AsyncConnection, tenant: str, status: TenantStatus, suspended_at: int | None
) -> Tenant | None:
    """Set ``tenant``'s status; returns it as stored (None: no such tenant)."""
    statement = (
        sa.update(tenants)
        .where(tenants.c.id == tenant)
        .values(status=status.value, suspended_at=suspended_at)
        .returning(*tenants.c)
    )
    row = (await connection.execute(statement)).mappings().first()
    return Tenant.from_row(row) if row else None


async def rename(connection: AsyncConnection, tenant: str, name: str) -> None:
    """Change ``tenant``'s display name."""
    await connection.execute(sa.update(tenants).where(tenants.c.id == tenant).values(name=name))


async def count_sessions(connection: AsyncConnection, tenant: str) -> int:
    """How many sessions ``tenant`` has."""
    statement = sa.select(sa.func.count()).select_from(sessions)
    return int(await connection.scalar(statement.where(sessions.c.tenant_id == tenant)) or 0)


__all__ = ["tenant_owned"]  # the tables a tenant's deletion empties, in order


async def delete_some(
    connection: AsyncConnection, table: sa.Table, tenant: str, chunk: int | None
) -> int:
    """Delete up to ``chunk`` (None: all) of ``tenant``'s rows of ``table``, chosen by primary
    key; returns how many went."""
    if chunk is None:
        result = await connection.execute(sa.delete(table).where(table.c.tenant_id == tenant))
        return int(result.rowcount or 0)
    key = list(table.primary_key.columns)
    some = sa.select(*key).where(table.c.tenant_id == tenant).limit(chunk)
    chosen = key[0].in_(some) if len(key) == 1 else sa.tuple_(*key).in_(some)
    result = await connection.execute(sa.delete(table).where(chosen))
    return int(result.rowcount or 0)


async def is_deleting(connection: AsyncConnection, tenant: str, created_at: int) -> bool:
    """Whether ``tenant`` is still the one whose deletion began (made at ``created_at``)."""
    statement = sa.select(tenants.c.id).where(
        tenants.c.id == tenant,
        tenants.c.status == TenantStatus.DELETING.value,
        tenants.c.created_at == created_at,
    )
    return await connection.scalar(statement) is not None


async def delete(connection: AsyncConnection, tenant: str) -> None:
    """Delete ``tenant``'s own row (its other rows are gone by now)."""
    await connection.execute(sa.delete(tenants).where(tenants.c.id == tenant))


async def get(connection: AsyncConnection, tenant: str) -> Tenant | None:
    """One tenant."""
    statement = sa.select(tenants).where(tenants.c.id == tenant)
    row = (await connection.execute(statement)).mappings().first()
    return Tenant.from_row(row) if row else None


async def last_seq(connection: AsyncConnection, tenant: str) -> int:
    """The newest seq of ``tenant``'s event log (0 when it has none)."""
    value = await connection.scalar(sa.select(tenants.c.last_seq).where(tenants.c.id == tenant))
    return int(value or 0)


_ADVANCE_SEQ = (
    sa.update(tenants)
    .where(tenants.c.id == sa.bindparam("tenant"))
    .values(last_seq=tenants.c.last_seq + sa.bindparam("count", type_=sa.BigInteger))
    .returning(tenants.c.last_seq)
)
"""Built once: it runs in every write batch."""


async def advance_seq(connection: AsyncConnection, tenant: str, count: int) -> int:
    """Reserve ``count`` seqs of ``tenant``; returns the last one (LookupError if unknown).

    ``UPDATE ... RETURNING`` locks the tenant's row until commit, so writers of one tenant
    commit in seq order and a reader never sees seq N+1 before N.
    """
    last = (
        await connection.execute(_ADVANCE_SEQ, {"tenant": tenant, "count": count})
    ).scalar_one_or_none()
    if last is None:
        raise LookupError(f"unknown tenant {tenant!r}")
    return int(last)


async def all_tenants_last_seqs(connection: AsyncConnection) -> dict[str, int]:
    """The newest seq of every tenant."""
    rows = (await connection.execute(sa.select(tenants.c.id, tenants.c.last_seq))).all()
    return {str(tenant): int(seq) for tenant, seq in rows}
