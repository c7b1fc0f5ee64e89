"""Retention: a periodic cleaner of old events and audit entries, finished deliveries and expired
idempotency keys."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import astuple, dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.audit import repository as audit_log
from zapgate.clock import Clock, now_ms
from zapgate.events import repository as event_log
from zapgate.fallbacks import repository as fallback_store
from zapgate.idempotency.service import Idempotency
from zapgate.tasks import cancel_and_wait
from zapgate.webhooks import repository as webhook_store

log = logging.getLogger(__name__)
DAY_MS = 86_400_000
FIRST_PASS_AFTER_SECONDS = 60.0  # not at the busy moment of start-up, but soon after it


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long things are kept."""

    events_days: float = 30.0
    """Audit entries are kept as long as events."""
    deliveries_days: float = 30.0
    interval_seconds: float = 3600.0


@dataclass(frozen=True, slots=True)
class Cleaned:
    """What one pass removed."""

    events: int
    deliveries: int
    idempotency_keys: int
    audit_entries: int = 0


class RetentionCleaner:
    """Runs ``clean`` every ``interval_seconds``."""

    def __init__(
        self, database: AsyncEngine, idempotency: Idempotency, policy: RetentionPolicy, clock: Clock
    ) -> None:
        self._database = database
        self._idempotency = idempotency
        self._policy = policy
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin the periodic passes."""
        self._task = asyncio.create_task(self._loop(), name="retention")

    async def stop(self) -> None:
        """Stop cleaning."""
        await cancel_and_wait(self._task)
        self._task = None

    async def clean(self) -> Cleaned:
        """One pass."""
        now = now_ms()
        events_cutoff = now - int(self._policy.events_days * DAY_MS)
        events = await event_log.all_tenants_delete_older_than(self._database, events_cutoff)
        audit = await audit_log.all_tenants_delete_older_than(self._database, events_cutoff)
        deliveries = await webhook_store.all_tenants_delete_finished_deliveries(
            self._database, now - int(self._policy.deliveries_days * DAY_MS)
        )
        await fallback_store.all_tenants_delete_settled_before(self._database, events_cutoff)
        keys = await self._idempotency.purge_expired()
        return Cleaned(events, deliveries, keys, audit)

    async def _loop(self) -> None:
        await self._clock.sleep(min(FIRST_PASS_AFTER_SECONDS, self._policy.interval_seconds))
        while True:
            try:
                cleaned = await self.clean()
                if any(astuple(cleaned)):
                    log.info("retention removed %s", cleaned)
            except Exception:
                log.exception("retention pass failed")
            await self._clock.sleep(self._policy.interval_seconds)
