"""Audit entries are kept as long as events (ZAPGATE_EVENTS_RETENTION_DAYS), then removed."""

from __future__ import annotations

from dataclasses import replace

from zapgate.audit import repository
from zapgate.audit.model import ID_PREFIX, AuditEntry, AuditQuery, Result
from zapgate.clock import now_ms
from zapgate.db.committer import UnitOfWork
from zapgate.ids import first_id_at
from zapgate.retention import DAY_MS
from zapgate.services import Services


async def test_entries_older_than_the_events_are_removed(services: Services) -> None:
    old_ms = now_ms() - 31 * DAY_MS
    fresh = await services.audit.record("default", "cli", "zapgate keys create", "keys/key_new")
    template = AuditEntry.new("default", "cli", "zapgate keys create", "keys/key_old", Result.OK)
    old = replace(template, id=first_id_at(ID_PREFIX, old_ms), at=old_ms)

    async def job(unit: UnitOfWork) -> None:
        repository.insert(unit, old)

    await services.committer.run(job)
    assert [e.id for e in await services.audit.page(AuditQuery("default", 10))] == [
        fresh.id,
        old.id,
    ]
    cleaned = await services.retention.clean()
    assert cleaned.audit_entries == 1
    assert [e.id for e in await services.audit.page(AuditQuery("default", 10))] == [fresh.id]
