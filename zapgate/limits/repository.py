"""SQL for a tenant's own limits (overrides of the defaults)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapgate.clock import now_ms
from zapgate.db.tables import tenant_limits

COLUMNS = (
    "rate_per_key",
    "burst",
    "concurrent_per_key",
    "sessions",
    "webhooks",
    "queued_per_session",
    "streams_per_key",
    "media_retention_days",
    "sinks",
)


async def get(engine: AsyncEngine, tenant: str) -> dict[str, Any]:
    """The tenant's overrides (missing or None: the default applies)."""
    statement = sa.select(tenant_limits).where(tenant_limits.c.tenant_id == tenant)
    async with engine.connect() as connection:
        row = (await connection.execute(statement)).mappings().first()
    return {name: row[name] for name in COLUMNS} if row else {}


async def put(connection: AsyncConnection, tenant: str, values: dict[str, Any]) -> None:
    """Set (or with None, clear) some of the tenant's overrides."""
    values = {name: values[name] for name in COLUMNS if name in values}
    found = await connection.scalar(
        sa.select(tenant_limits.c.tenant_id).where(tenant_limits.c.tenant_id == tenant)
    )
    if found is None:
        await connection.execute(
            tenant_limits.insert().values(tenant_id=tenant, updated_at=now_ms(), **values)
        )
        return
    await connection.execute(
        sa.update(tenant_limits)
        .where(tenant_limits.c.tenant_id == tenant)
        .values(updated_at=now_ms(), **values)
    )
