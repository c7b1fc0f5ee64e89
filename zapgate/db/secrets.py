"""Server secrets: random values every node shares, made once by the first that asks."""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.clock import now_ms
from zapgate.db.tables import server_secrets


async def secret(engine: AsyncEngine, name: str) -> bytes:
    """The server secret ``name``, made by the first node that asks (shared by every node)."""
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    async with engine.begin() as connection:
        await connection.execute(
            insert(server_secrets)
            .values(name=name, value=secrets.token_urlsafe(32), created_at=now_ms())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        value = await connection.scalar(
            sa.select(server_secrets.c.value).where(server_secrets.c.name == name)
        )
    return str(value).encode()
