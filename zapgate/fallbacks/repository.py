"""SQL of SMS fallbacks (``fallbacks``): recorded with their WhatsApp message, found when due
(or when the message failed), settled once."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapgate.db.committer import UnitOfWork
from zapgate.db.tables import fallbacks, messages

PENDING, SENT, SKIPPED = "pending", "sent", "skipped"


@dataclass(frozen=True, slots=True)
class Due:
    tenant: str
    message_id: str
    sms_session: str


def record(unit: UnitOfWork, tenant: str, message_id: str, sms_session: str, due_at: int) -> None:
    """A pending fallback of ``message_id``, written with the message."""
    row = {
        "message_id": message_id,
        "tenant_id": tenant,
        "sms_session": sms_session,
        "due_at": due_at,
        "status": PENDING,
        "sms_id": None,
    }
    unit.insert(fallbacks, row)


async def all_tenants_due(engine: AsyncEngine, now: int, limit: int) -> list[Due]:
    """Pending fallbacks whose time has come, or whose message failed (every tenant's)."""
    f, m = fallbacks.c, messages.c
    failed = (
        sa.select(m.id)
        .where(m.id == f.message_id, m.tenant_id == f.tenant_id, m.status == "failed")
        .exists()
    )
    statement = (
        sa.select(f.tenant_id, f.message_id, f.sms_session)
        .where(f.status == PENDING, sa.or_(f.due_at <= now, failed))
        .order_by(f.due_at)
        .limit(limit)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    return [Due(str(t), str(i), str(s)) for t, i, s in rows]


async def settle(
    connection: AsyncConnection, tenant: str, message_id: str, status: str, sms_id: str | None
) -> bool:
    """Mark a pending fallback ``sent`` (with its SMS) or ``skipped``; False if it was settled
    already (by another node, or before a restart)."""
    statement = (
        sa.update(fallbacks)
        .where(
            fallbacks.c.tenant_id == tenant,
            fallbacks.c.message_id == message_id,
            fallbacks.c.status == PENDING,
        )
        .values(status=status, sms_id=sms_id)
    )
    result = await connection.execute(statement)
    return bool(result.rowcount)


async def all_tenants_delete_settled_before(engine: AsyncEngine, cutoff: int) -> int:
    """Forget settled fallbacks due before ``cutoff`` (retention)."""
    statement = sa.delete(fallbacks).where(
        fallbacks.c.status != PENDING, fallbacks.c.due_at < cutoff
    )
    async with engine.begin() as connection:
        return int((await connection.execute(statement)).rowcount or 0)
