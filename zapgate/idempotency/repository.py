"""SQL for stored Idempotency-Key answers; every query is scoped by tenant."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapgate.clock import now_ms
from zapgate.db.committer import UnitOfWork
from zapgate.db.tables import idempotency_claims, idempotency_keys


async def find(connection: AsyncConnection, tenant: str, key: str) -> Any:
    """The unexpired stored answer of ``tenant``'s ``key`` (a row mapping), or None."""
    statement = sa.select(idempotency_keys).where(
        idempotency_keys.c.tenant_id == tenant,
        idempotency_keys.c.key == key,
        idempotency_keys.c.expires_at >= now_ms(),
    )
    return (await connection.execute(statement)).mappings().first()


async def forget_expired(connection: AsyncConnection, tenant: str, key: str) -> None:
    """Delete ``tenant``'s ``key`` if it has expired, so it can be used again."""
    await connection.execute(
        sa.delete(idempotency_keys).where(
            idempotency_keys.c.tenant_id == tenant,
            idempotency_keys.c.key == key,
            idempotency_keys.c.expires_at < now_ms(),
        )
    )


def insert(
    unit: UnitOfWork,
    tenant: str,
    key: str,
    fingerprint: str,
    answer: tuple[int, Any],
    ttl_ms: int,
) -> None:
    """Store the answer (status, body) to ``tenant``'s ``key`` when the write batch flushes."""
    status, body = answer
    now = now_ms()
    unit.insert(
        idempotency_keys,
        {
            "tenant_id": tenant,
            "key": key,
            "fingerprint": fingerprint,
            "response_status": status,
            "response_body": body,
            "created_at": now,
            "expires_at": now + ttl_ms,
        },
    )


async def all_tenants_purge_expired(engine: AsyncEngine) -> int:
    """Retention: delete every tenant's expired keys; returns how many."""
    async with engine.begin() as connection:
        result = await connection.execute(
            sa.delete(idempotency_keys).where(idempotency_keys.c.expires_at < now_ms())
        )
    return int(result.rowcount or 0)


# claims (cluster mode) ---------------------------------------------------------------------------


async def claim(
    connection: AsyncConnection, tenant: str, key: str, claim_id: str, now: int, until: int
) -> bool:
    """Claim ``tenant``'s ``key`` as ``claim_id`` until ``until``, unless a claim unexpired at
    ``now`` holds it (an expired one is taken over); True when claimed."""
    columns = idempotency_claims.c
    taken = await connection.execute(
        sa.update(idempotency_claims)
        .where(columns.tenant_id == tenant, columns.key == key, columns.expires_at < now)
        .values(claim_id=claim_id, expires_at=until)
    )
    if taken.rowcount:
        return True
    insert = _insert(connection)(idempotency_claims).values(
        tenant_id=tenant, key=key, claim_id=claim_id, expires_at=until
    )
    created = await connection.execute(insert.on_conflict_do_nothing())
    return bool(created.rowcount)


async def release(connection: AsyncConnection, tenant: str, key: str, claim_id: str) -> bool:
    """Delete the claim ``claim_id`` of ``tenant``'s ``key``; False when it is not there (it
    expired and was taken over, or purged)."""
    columns = idempotency_claims.c
    result = await connection.execute(
        sa.delete(idempotency_claims).where(
            columns.tenant_id == tenant, columns.key == key, columns.claim_id == claim_id
        )
    )
    return bool(result.rowcount)


async def all_tenants_purge_expired_claims(engine: AsyncEngine) -> int:
    """Retention: delete every tenant's expired claims (left by nodes that died)."""
    async with engine.begin() as connection:
        result = await connection.execute(
            sa.delete(idempotency_claims).where(idempotency_claims.c.expires_at < now_ms())
        )
    return int(result.rowcount or 0)


def _insert(connection: AsyncConnection) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT DO NOTHING."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert
