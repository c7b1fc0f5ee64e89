"""SQL for media; every query is scoped by tenant."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapgate.db.tables import media, messages
from zapgate.ids import new_id
from zapgate.media.model import MediaDraft, StoredMedia


async def claim(
    connection: AsyncConnection, tenant: str, draft: MediaDraft, now: int
) -> tuple[StoredMedia, bool]:
    """The tenant's record of ``draft``'s bytes, made if missing; and whether it was made.

    Using a file again makes it new for retention (``created_at`` is its last use).
    """
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    made = await connection.execute(
        insert(media)
        .values(
            id=new_id("med"),
            tenant_id=tenant,
            sha256=draft.sha256,
            size=draft.size,
            mime_type=draft.mime_type,
            filename=draft.filename,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "sha256"])
    )
    where = (media.c.tenant_id == tenant) & (media.c.sha256 == draft.sha256)
    if not made.rowcount:
        await connection.execute(sa.update(media).where(where).values(created_at=now))
    row = (await connection.execute(sa.select(media).where(where))).mappings().one()
    return StoredMedia.from_row(row), bool(made.rowcount)


async def get(engine: AsyncEngine, tenant: str, media_id: str) -> StoredMedia | None:
    """One file of ``tenant``."""
    statement = sa.select(media).where(media.c.tenant_id == tenant, media.c.id == media_id)
    async with engine.connect() as connection:
        row = (await connection.execute(statement)).mappings().first()
    return StoredMedia.from_row(row) if row else None


async def unused(
    engine: AsyncEngine, tenant: str, before_ms: int, limit: int, expired_before_ms: int | None
) -> list[StoredMedia]:
    """Files to remove: unused by any message since before ``before_ms``, or (with retention)
    last used before ``expired_before_ms``."""
    used = sa.exists().where(messages.c.tenant_id == tenant, messages.c.media_id == media.c.id)
    stale = (media.c.created_at < before_ms) & ~used
    if expired_before_ms is not None:
        stale = stale | (media.c.created_at < expired_before_ms)
    statement = sa.select(media).where(media.c.tenant_id == tenant, stale).limit(limit)
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).mappings().all()
    return [StoredMedia.from_row(row) for row in rows]


async def delete(connection: AsyncConnection, tenant: str, found: StoredMedia) -> bool:
    """Remove the record of ``found`` unless it was used again since; whether it went."""
    gone = await connection.execute(
        sa.delete(media).where(
            media.c.tenant_id == tenant,
            media.c.id == found.id,
            media.c.created_at == found.created_at,
        )
    )
    return bool(gone.rowcount)


async def recorded(connection: AsyncConnection, tenant: str, sha256: str) -> bool:
    """Whether the tenant has a record of the file ``sha256``."""
    statement = sa.select(media.c.id).where(media.c.tenant_id == tenant, media.c.sha256 == sha256)
    return (await connection.execute(statement)).first() is not None


async def all_tenants_with_media(engine: AsyncEngine) -> list[str]:
    """Every tenant that has files (for the sweeper, which then works tenant by tenant)."""
    async with engine.connect() as connection:
        found = await connection.execute(sa.select(media.c.tenant_id).distinct())
        return list(found.scalars())


async def unused_one(engine: AsyncEngine, tenant: str, media_id: str) -> StoredMedia | None:
    """The tenant's file ``media_id`` if no message uses it (None when one does, or it is gone)."""
    used = sa.exists().where(messages.c.tenant_id == tenant, messages.c.media_id == media.c.id)
    statement = sa.select(media).where(media.c.tenant_id == tenant, media.c.id == media_id, ~used)
    async with engine.connect() as connection:
        row = (await connection.execute(statement)).mappings().first()
    return StoredMedia.from_row(row) if row else None
