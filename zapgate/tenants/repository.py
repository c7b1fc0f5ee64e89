"""SQL for tenants: the row every other table hangs from, and its event counter."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from zapgate.clock import now_ms
from zapgate.db.tables import tenants
from zapgate.tenants.model import Tenant


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
