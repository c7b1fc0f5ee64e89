"""SQL for API keys; a key is found by its public lookup part, across tenants."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapgate.clock import now_ms
from zapgate.db.tables import api_keys, auth_invalidations, tenants


async def all_tenants_find_key_by_lookup(engine: AsyncEngine, lookup: str) -> dict[str, Any] | None:
    """The live key with this lookup part, whichever tenant owns it (how a caller is identified),
    with its tenant's ``tenant_status``."""
    statement = (
        sa.select(api_keys, tenants.c.status.label("tenant_status"))
        .join(tenants, tenants.c.id == api_keys.c.tenant_id)
        .where(api_keys.c.prefix == lookup, api_keys.c.revoked_at.is_(None))
    )
    async with engine.connect() as connection:
        row = (await connection.execute(statement)).mappings().first()
    return dict(row) if row else None


async def insert(
    connection: AsyncConnection,
    key_id: str,
    tenant: str,
    name: str,
    lookup: str,
    key_hash: str,
    role: str = "admin",
    scopes: str = "admin",
    sessions: list[str] | None = None,
    expires_at: int | None = None,
) -> dict[str, Any]:
    """Store a key's hash; returns its public record."""
    record: dict[str, Any] = {
        "id": key_id,
        "name": name,
        "scopes": scopes,
        "sessions": sessions,
        "expires_at": expires_at,
        "created_at": now_ms(),
        "last_used_at": None,
        "revoked_at": None,
    }
    await connection.execute(
        api_keys.insert().values(
            tenant_id=tenant, prefix=lookup, key_hash=key_hash, role=role, **record
        )
    )
    return record


async def all_tenants_count_live_keys(connection: AsyncConnection) -> int:
    """How many keys are not revoked, across tenants (the first-start check)."""
    statement = (
        sa.select(sa.func.count()).select_from(api_keys).where(api_keys.c.revoked_at.is_(None))
    )
    return int(await connection.scalar(statement) or 0)


async def all_tenants_lookup_exists(connection: AsyncConnection, lookup: str) -> bool:
    """Whether a key with this lookup part is stored (lookup parts are unique across tenants)."""
    found = await connection.scalar(sa.select(api_keys.c.id).where(api_keys.c.prefix == lookup))
    return found is not None


async def revoke_named_except(
    connection: AsyncConnection, tenant: str, name: str, keep_lookup: str
) -> None:
    """Revoke ``tenant``'s keys called ``name`` but ``keep_lookup`` (a replaced admin key)."""
    await connection.execute(
        sa.update(api_keys)
        .where(
            api_keys.c.tenant_id == tenant,
            api_keys.c.name == name,
            api_keys.c.prefix != keep_lookup,
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=now_ms())
    )


async def reinstate_named(
    connection: AsyncConnection,
    tenant: str,
    name: str,
    lookup: str,
    key_hash: str,
    scopes: str,
) -> bool:
    """Make ``tenant``'s key called ``name`` with this lookup live again with ``scopes`` (the
    configured operator key coming back); False when the lookup belongs to another key."""
    result = await connection.execute(
        sa.update(api_keys)
        .where(
            api_keys.c.tenant_id == tenant,
            api_keys.c.name == name,
            api_keys.c.prefix == lookup,
            api_keys.c.key_hash == key_hash,
        )
        .values(revoked_at=None, scopes=scopes, role="admin")
    )
    return bool(result.rowcount)


PUBLIC_COLUMNS = (
    api_keys.c.id,
    api_keys.c.name,
    api_keys.c.scopes,
    api_keys.c.sessions,
    api_keys.c.expires_at,
    api_keys.c.created_at,
    api_keys.c.last_used_at,
    api_keys.c.revoked_at,
)
"""What the keys API shows of a key: never its hash or lookup part."""


async def list_keys(engine: AsyncEngine, tenant: str) -> list[dict[str, Any]]:
    """``tenant``'s keys, oldest first, without hashes."""
    statement = (
        sa.select(*PUBLIC_COLUMNS)
        .where(api_keys.c.tenant_id == tenant)
        .order_by(api_keys.c.created_at, api_keys.c.id)
    )
    async with engine.connect() as connection:
        return [dict(row) for row in (await connection.execute(statement)).mappings()]


async def revoke(connection: AsyncConnection, tenant: str, key_id: str, now: int) -> bool:
    """Revoke ``tenant``'s live key ``key_id``; False if it has no such live key."""
    result = await connection.execute(
        sa.update(api_keys)
        .where(
            api_keys.c.tenant_id == tenant,
            api_keys.c.id == key_id,
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    return bool(result.rowcount)


async def name_and_scopes(
    connection: AsyncConnection, tenant: str, key_id: str
) -> tuple[str | None, list[str]]:
    """The name and stored scopes of ``tenant``'s key ``key_id`` (None and none if it has none
    such)."""
    statement = sa.select(api_keys.c.name, api_keys.c.scopes).where(
        api_keys.c.tenant_id == tenant, api_keys.c.id == key_id
    )
    found = (await connection.execute(statement)).first()
    return (str(found.name), str(found.scopes).split()) if found else (None, [])


async def touch(connection: AsyncConnection, tenant: str, key_id: str, now: int) -> None:
    """Record that ``tenant``'s key ``key_id`` was verified at ``now``."""
    await connection.execute(
        sa.update(api_keys)
        .where(api_keys.c.tenant_id == tenant, api_keys.c.id == key_id)
        .values(last_used_at=now)
    )


async def insert_invalidation(
    connection: AsyncConnection,
    invalidation_id: str,
    tenant: str,
    key_id: str | None,
    reason: str,
    at: int,
) -> None:
    """Leave a signal that ``tenant``'s key ``key_id`` (None: every key of it) changed."""
    await connection.execute(
        auth_invalidations.insert().values(
            id=invalidation_id, tenant_id=tenant, key_id=key_id, reason=reason, at=at
        )
    )


async def all_tenants_invalidations_since(engine: AsyncEngine, since: int) -> list[dict[str, Any]]:
    """Every tenant's signals left at ``since`` or later, oldest first (what each node reads)."""
    statement = (
        sa.select(auth_invalidations)
        .where(auth_invalidations.c.at >= since)
        .order_by(auth_invalidations.c.at, auth_invalidations.c.id)
    )
    async with engine.connect() as connection:
        return [dict(row) for row in (await connection.execute(statement)).mappings()]


async def all_tenants_latest_invalidation(engine: AsyncEngine) -> int | None:
    """When the newest signal was left (None: there is none)."""
    async with engine.connect() as connection:
        found = await connection.scalar(sa.select(sa.func.max(auth_invalidations.c.at)))
    return int(found) if found is not None else None


async def all_tenants_prune_invalidations(connection: AsyncConnection, before: int) -> None:
    """Forget signals older than ``before`` (every node has read them long since)."""
    await connection.execute(sa.delete(auth_invalidations).where(auth_invalidations.c.at < before))
