"""SQL for the audit log: append (in a committer job), page newest first, expire."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.audit.model import ID_PREFIX, AuditEntry, AuditQuery
from zapgate.db.committer import UnitOfWork
from zapgate.db.tables import audit_log
from zapgate.ids import first_id_at


def insert(unit: UnitOfWork, entry: AuditEntry) -> None:
    """Append ``entry`` when the unit's batch flushes."""
    unit.insert(audit_log, _row(entry))


def _row(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "tenant_id": entry.tenant,
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "result": entry.result.value,
        "status": entry.status,
        "address": entry.address,
        "detail": entry.detail,
    }


async def page(engine: AsyncEngine, query: AuditQuery) -> list[AuditEntry]:
    """A page of ``query.tenant``'s entries, newest first. Time bounds become id bounds (an
    id's time is its entry's ``at``), so every filter seeks an index on (tenant, ..., id)."""
    columns = audit_log.c
    statement = sa.select(audit_log).where(columns.tenant_id == query.tenant)
    if query.actor is not None:
        statement = statement.where(columns.actor == query.actor)
    if query.action is not None:
        statement = statement.where(columns.action == query.action)
    if query.result is not None:
        statement = statement.where(columns.result == query.result.value)
    if query.since_ms is not None:
        statement = statement.where(columns.id >= first_id_at(ID_PREFIX, query.since_ms))
    if query.until_ms is not None:
        statement = statement.where(columns.id < first_id_at(ID_PREFIX, query.until_ms))
    if query.before is not None:
        statement = statement.where(columns.id < query.before)
    if not query.unattributed:
        statement = statement.where(columns.actor.is_not(None))
    statement = statement.order_by(columns.id.desc()).limit(query.limit)
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).mappings().all()
    return [AuditEntry.from_row(row) for row in rows]


async def all_tenants_delete_older_than(engine: AsyncEngine, cutoff_ms: int) -> int:
    """Retention: remove every tenant's entries made before ``cutoff_ms``; returns how many."""
    oldest_kept = first_id_at(ID_PREFIX, cutoff_ms)
    async with engine.begin() as connection:
        result = await connection.execute(sa.delete(audit_log).where(audit_log.c.id < oldest_kept))
    return int(result.rowcount or 0)
