"""SQL for sessions; every query is scoped by tenant."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapgate.clock import now_ms
from zapgate.db.tables import sessions
from zapgate.engines.base import SessionStatus
from zapgate.sessions.model import Session


async def create(
    connection: AsyncConnection,
    tenant: str,
    name: str,
    engine: str,
    config: dict[str, Any],
    metadata: dict[str, Any],
    desired: str = "running",
) -> Session:
    """Insert a stopped session (``desired`` says whether it should run)."""
    now = now_ms()
    row = {
        "tenant_id": tenant,
        "name": name,
        "engine": engine,
        "config": config,
        "metadata": metadata,
        "status": SessionStatus.STOPPED.value,
        "status_reason": None,
        "desired": desired,
        "me": None,
        "created_at": now,
        "updated_at": now,
    }
    await connection.execute(sessions.insert().values(**row))
    return Session.from_row(row)


async def exists(connection: AsyncConnection, tenant: str, name: str) -> bool:
    """Whether the session is stored."""
    found = await connection.scalar(sa.select(sessions.c.name).where(_key(tenant, name)))
    return found is not None


async def get(engine: AsyncEngine, tenant: str, name: str) -> Session | None:
    """One session of ``tenant``."""
    async with engine.connect() as connection:
        row = (
            (await connection.execute(sa.select(sessions).where(_key(tenant, name))))
            .mappings()
            .first()
        )
    return Session.from_row(row) if row else None


async def list_for(engine: AsyncEngine, tenant: str) -> list[Session]:
    """All sessions of ``tenant`` by name."""
    statement = sa.select(sessions).where(sessions.c.tenant_id == tenant).order_by(sessions.c.name)
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).mappings().all()
    return [Session.from_row(row) for row in rows]


async def all_tenants_wanted_running(engine: AsyncEngine) -> list[Session]:
    """Sessions of every tenant that should run on boot (the boot path is tenant-wide by design)."""
    statement = sa.select(sessions).where(sessions.c.desired == "running")
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).mappings().all()
    return [Session.from_row(row) for row in rows]


async def update(
    connection: AsyncConnection, tenant: str, name: str, values: dict[str, Any]
) -> Session | None:
    """Update one session; returns it as stored."""
    statement = (
        sa.update(sessions)
        .where(_key(tenant, name))
        .values(updated_at=now_ms(), **values)
        .returning(*sessions.c)
    )
    row = (await connection.execute(statement)).mappings().first()
    return Session.from_row(row) if row else None


async def delete(connection: AsyncConnection, tenant: str, name: str) -> bool:
    """Remove one session; False if it was not there."""
    result = await connection.execute(sa.delete(sessions).where(_key(tenant, name)))
    return bool(result.rowcount)


async def all_tenants_missing_sessions(
    connection: AsyncConnection, wanted: list[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which ``(tenant, name)`` pairs of ``wanted`` (one write batch: any tenants) are missing."""
    key = sa.tuple_(sessions.c.tenant_id, sessions.c.name)
    found = await connection.execute(
        sa.select(sessions.c.tenant_id, sessions.c.name).where(key.in_(wanted))
    )
    return set(wanted) - {(row[0], row[1]) for row in found}


def _key(tenant: str, name: str) -> sa.ColumnElement[bool]:
    return sa.and_(sessions.c.tenant_id == tenant, sessions.c.name == name)


async def count(connection: AsyncConnection, tenant: str) -> int:
    """How many sessions ``tenant`` has."""
    statement = (
        sa.select(sa.func.count()).select_from(sessions).where(sessions.c.tenant_id == tenant)
    )
    return int(await connection.scalar(statement) or 0)
