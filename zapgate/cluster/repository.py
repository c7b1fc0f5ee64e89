"""SQL for nodes: a row per zapgate process, across tenants (a node serves them all)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapgate.db.tables import nodes


async def all_tenants_register(
    connection: AsyncConnection, name: str, incarnation: str, now: int, sessions: int
) -> dict[str, Any] | None:
    """Register node ``name`` as this ``incarnation``; returns the row it replaced, if any (a
    node of that name that stopped without leaving, or is still alive elsewhere)."""
    found = (
        (await connection.execute(sa.select(nodes).where(nodes.c.name == name))).mappings().first()
    )
    values = {"incarnation": incarnation, "started_at": now, "last_seen": now, "sessions": sessions}
    if found is None:
        await connection.execute(nodes.insert().values(name=name, **values))
        return None
    await connection.execute(sa.update(nodes).where(nodes.c.name == name).values(**values))
    return dict(found)


async def all_tenants_beat(
    connection: AsyncConnection, name: str, incarnation: str, now: int, sessions: int
) -> bool:
    """Beat node ``name``'s heartbeat; False when another incarnation took its name."""
    result = await connection.execute(
        sa.update(nodes)
        .where(nodes.c.name == name, nodes.c.incarnation == incarnation)
        .values(last_seen=now, sessions=sessions)
    )
    return bool(result.rowcount)


async def all_tenants_leave(connection: AsyncConnection, name: str, incarnation: str) -> None:
    """Remove node ``name`` (this incarnation): it stopped."""
    await connection.execute(
        sa.delete(nodes).where(nodes.c.name == name, nodes.c.incarnation == incarnation)
    )


async def all_tenants_forget_dead(connection: AsyncConnection, before: int) -> None:
    """Remove the nodes not seen since ``before`` (long dead)."""
    await connection.execute(sa.delete(nodes).where(nodes.c.last_seen < before))


async def all_tenants_alive(engine: AsyncEngine, since: int) -> list[dict[str, Any]]:
    """The nodes seen at ``since`` or later, by name."""
    statement = sa.select(nodes).where(nodes.c.last_seen >= since).order_by(nodes.c.name)
    async with engine.connect() as connection:
        return [dict(row) for row in (await connection.execute(statement)).mappings()]
