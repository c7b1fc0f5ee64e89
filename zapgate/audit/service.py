"""Audit use cases: record an entry, record a failed authentication (capped), read a page.

Entries are written by the group committer as background work of their tenant, so recording
never costs a transaction of its own. Callers nobody could identify (failed authentications)
have no tenant: their entries go to the operator's tenant, at most ``unknown_per_minute`` of
them (one token bucket for the whole process), so no number of hostile clients can flood the
database; the next entry recorded says how many were not (``detail.suppressed``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.audit import repository
from zapgate.audit.model import AuditEntry, AuditQuery, Result
from zapgate.db.committer import Committer, UnitOfWork
from zapgate.limits.buckets import TokenBuckets

log = logging.getLogger(__name__)
MINUTE = 60.0
_UNKNOWN = "unknown callers"


class AuditService:
    """Appends to and reads tenants' audit logs."""

    def __init__(
        self,
        database: AsyncEngine,
        committer: Committer,
        operator_tenant: str,
        unknown_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._committer = committer
        self.operator_tenant = operator_tenant
        self._unknown_per_minute = unknown_per_minute
        self._bucket = TokenBuckets(clock, max_keys=1)
        self.suppressed = 0
        """Entries of unknown callers not recorded since the process started (over the cap)."""
        self._unreported = 0

    async def record(
        self,
        tenant: str,
        actor: str | None,
        action: str,
        target: str | None,
        result: Result = Result.OK,
        *,
        status: int | None = None,
        address: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Append an entry to ``tenant``'s log; returns it once committed."""
        entry = AuditEntry.new(tenant, actor, action, target, result, status, address, detail)
        await self._append(entry)
        return entry

    async def record_unknown(
        self,
        action: str,
        target: str | None,
        status: int,
        address: str | None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry | None:
        """Append a refusal of a caller nobody identified (a failed authentication) to the
        operator's log, unless over the cap (then None: counted in ``suppressed``)."""
        if not self._take_unknown():
            return None
        if self._unreported:
            detail = {**(detail or {}), "suppressed": self._unreported}
            self._unreported = 0
        return await self.record(
            self.operator_tenant,
            None,
            action,
            target,
            Result.of_status(status),
            status=status,
            address=address,
            detail=detail,
        )

    async def page(self, query: AuditQuery) -> list[AuditEntry]:
        """A page of a tenant's log, newest first."""
        return await repository.page(self._database, query)

    async def _append(self, entry: AuditEntry) -> None:
        async def job(unit: UnitOfWork) -> None:
            repository.insert(unit, entry)

        await self._committer.run(job, background=entry.tenant)

    def _take_unknown(self) -> bool:
        limit = self._unknown_per_minute
        if not limit:
            return True
        if self._bucket.take(_UNKNOWN, limit / MINUTE, limit).allowed:
            return True
        if not self._unreported:
            log.warning("over %s failed authentications a minute: not all are audited", limit)
        self.suppressed += 1
        self._unreported += 1
        return False
