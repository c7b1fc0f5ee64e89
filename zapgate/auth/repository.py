"""SQL for API keys; a key is found by its public lookup part, across tenants."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapgate.clock import now_ms
from zapgate.db.tables import api_keys


async def all_tenants_find_key_by_lookup(engine: AsyncEngine, lookup: str) -> dict[str, Any] | None:
    """The live key with this lookup part, whichever tenant owns it (how a caller is identified)."""
    statement = sa.select(api_keys).where(
        api_keys.c.prefix == lookup, api_keys.c.revoked_at.is_(None)
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
) -> None:
    """Store a key's hash."""
    await connection.execute(
        api_keys.insert().values(
            id=key_id,
            tenant_id=tenant,
            name=name,
            prefix=lookup,
            key_hash=key_hash,
            role=role,
            created_at=now_ms(),
        )
    )


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
    connection: AsyncConnection, tenant: str, name: str, lookup: str, key_hash: str
) -> bool:
    """Make ``tenant``'s key called ``name`` with this lookup live again (the configured admin
    key coming back); False when the lookup belongs to another key."""
    result = await connection.execute(
        sa.update(api_keys)
        .where(
            api_keys.c.tenant_id == tenant,
            api_keys.c.name == name,
            api_keys.c.prefix == lookup,
            api_keys.c.key_hash == key_hash,
        )
        .values(revoked_at=None)
    )
    return bool(result.rowcount)
