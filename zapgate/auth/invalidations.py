"""Revocations and suspensions reach every node that shares the database.

Whoever revokes a key, or suspends, resumes or deletes a tenant, leaves a row in
``auth_invalidations`` in the same transaction as the change. Every node reads the rows left
since it last looked, a few times a second, and applies those it has not applied yet. Rows are
read by time with a generous lookback and de-duplicated by id, so a row committed late (its
transaction began before another's) is still seen; node clocks only need to agree within the
lookback, as NTP keeps them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.auth import repository as key_store
from zapgate.clock import now_ms
from zapgate.db.committer import Committer, UnitOfWork
from zapgate.ids import new_id
from zapgate.tasks import cancel_and_wait

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 0.25
"""How often a node looks: a revocation elsewhere takes effect here within about this."""
LOOKBACK_MS = 15_000
"""Rows are read again for this long: one committed late, or left by a node whose clock is a
little behind, is still seen."""
KEEP_MS = 3_600_000
"""Rows older than this are deleted (every node has read them long since)."""
PRUNE_EVERY_SECONDS = 600.0


class Reason(StrEnum):
    REVOKED = "revoked"
    SUSPENDED = "suspended"
    RESUMED = "resumed"
    DELETED = "deleted"
    CREATED = "created"
    """A tenant made (maybe with the id of one deleted before): nothing cached of an older one
    with that id may be used."""


@dataclass(frozen=True, slots=True)
class Invalidation:
    """A key revoked (``key_id``), or a tenant suspended, resumed, deleted or created (no
    ``key_id``)."""

    id: str
    tenant: str
    key_id: str | None
    reason: Reason
    at: int

    @classmethod
    def new(cls, tenant: str, reason: Reason, key_id: str | None = None) -> Invalidation:
        """A signal to leave now."""
        return cls(new_id("inv"), tenant, key_id, reason, now_ms())

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Invalidation:
        """Build from an ``auth_invalidations`` row."""
        return cls(row["id"], row["tenant_id"], row["key_id"], Reason(row["reason"]), row["at"])

    async def leave(self, unit: UnitOfWork) -> None:
        """Store this signal in ``unit``'s transaction."""
        await key_store.insert_invalidation(
            unit.connection, self.id, self.tenant, self.key_id, self.reason.value, self.at
        )


Apply = Callable[[Invalidation], None]
Settle = Callable[[set[str]], Awaitable[None]]


class InvalidationWatch:
    """Reads the signals other nodes leave, and applies each once."""

    def __init__(
        self,
        engine: AsyncEngine,
        committer: Committer,
        apply: Apply,
        settle: Settle,
        interval_seconds: float = INTERVAL_SECONDS,
    ) -> None:
        self._engine = engine
        self._committer = committer
        self._apply = apply
        self._settle = settle
        self._unsettled: set[str] = set()
        """Tenants whose status changed since the last look: read from the database then."""
        self._interval = interval_seconds
        self._applied: dict[str, int] = {}
        """Ids of the signals applied here, with when they were left."""
        self._watermark = 0
        self._pruned_at = 0.0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Look from the newest signal on (older ones are already in the stored state)."""
        latest = await key_store.all_tenants_latest_invalidation(self._engine)
        self._watermark = latest if latest is not None else now_ms()
        self._pruned_at = asyncio.get_running_loop().time()
        self._task = asyncio.create_task(self._loop(), name="zapgate-invalidations")

    async def stop(self) -> None:
        """Stop looking."""
        await cancel_and_wait(self._task)
        self._task = None

    def applied(self, invalidation: Invalidation) -> None:
        """Note a signal applied here, so reading it back does nothing (a tenant's status is
        still read from the database at the next look)."""
        self._applied[invalidation.id] = invalidation.at
        if invalidation.key_id is None:
            self._unsettled.add(invalidation.tenant)

    async def poll(self) -> None:
        """Apply the signals left since the last look (minus the lookback) not applied yet."""
        rows = await key_store.all_tenants_invalidations_since(
            self._engine, self._watermark - LOOKBACK_MS
        )
        for row in rows:
            invalidation = Invalidation.from_row(row)
            self._watermark = max(self._watermark, invalidation.at)
            if invalidation.id in self._applied:
                continue
            self._applied[invalidation.id] = invalidation.at
            try:
                self._apply(invalidation)
            except Exception:
                log.exception("could not apply %s", invalidation)
        if self._unsettled:
            tenants, self._unsettled = self._unsettled, set()
            await self._settle(tenants)
        horizon = self._watermark - LOOKBACK_MS
        for known in [i for i, at in self._applied.items() if at < horizon]:
            del self._applied[known]

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.poll()
                if loop.time() - self._pruned_at >= PRUNE_EVERY_SECONDS:
                    self._pruned_at = loop.time()
                    await self._prune()
            except Exception:  # the database is away: look again next time
                log.exception("could not read revocations and suspensions")

    async def _prune(self) -> None:
        before = now_ms() - KEEP_MS

        async def job(unit: UnitOfWork) -> None:
            await key_store.all_tenants_prune_invalidations(unit.connection, before)

        await self._committer.run(job)
