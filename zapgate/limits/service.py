"""Limits in use: each tenant's limits (cached), request rates per key, failed authentications
per client address, and open streams per key. All counters live in this process."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.db.committer import Committer, Refusal, UnitOfWork
from zapgate.errors import QuotaExceeded, RateLimited, TenantNotFound
from zapgate.limits import repository
from zapgate.limits.buckets import Decision, TokenBuckets
from zapgate.limits.concurrency import KeyConcurrency
from zapgate.limits.model import Limits, quota_message
from zapgate.limits.streams import StreamSlot, StreamSlots
from zapgate.tenants import repository as tenant_store

MINUTE = 60.0


class LimitService:
    """Answers "may this go ahead?" for requests, streams and count quotas."""

    def __init__(
        self,
        database: AsyncEngine,
        committer: Committer,
        defaults: Limits,
        auth_failures_per_minute: int,
        cache_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._committer = committer
        self.defaults = defaults
        self._failures_per_minute = auth_failures_per_minute
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, Limits]] = {}
        self._requests = TokenBuckets(clock)
        self._failures = TokenBuckets(clock)
        self.streams = StreamSlots()
        self.concurrency = KeyConcurrency()

    # a tenant's limits -------------------------------------------------------------------------

    async def of(self, tenant: str) -> Limits:
        """``tenant``'s limits: the defaults with its stored overrides (cached briefly)."""
        cached = self._cache.get(tenant)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        limits = self.defaults.overridden(await repository.get(self._database, tenant))
        if self._cache_seconds > 0:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[tenant] = (self._clock() + self._cache_seconds, limits)
        return limits

    async def overrides(self, tenant: str) -> dict[str, Any]:
        """``tenant``'s own limits (those it has not set are absent)."""
        stored = await repository.get(self._database, tenant)
        return {name: value for name, value in stored.items() if value is not None}

    def forget(self, tenant: str) -> None:
        """Drop ``tenant``'s cached limits (it was deleted)."""
        self._cache.pop(tenant, None)

    async def set_overrides(self, tenant: str, values: dict[str, Any]) -> Limits:
        """Store ``tenant``'s own limits (None clears one back to the default); returns them.

        TenantNotFound for an unknown tenant (nothing is created).
        """

        async def job(unit: UnitOfWork) -> None:
            if not await tenant_store.exists(unit.connection, tenant):
                raise TenantNotFound(f"no tenant {tenant!r}")
            if values:
                await repository.put(unit.connection, tenant, values)

        await self._committer.run(job)
        self._cache.pop(tenant, None)
        return await self.of(tenant)

    # requests ----------------------------------------------------------------------------------

    def take_request(self, limits: Limits, key_id: str, cost: int = 1) -> Decision | None:
        """Count a request of ``key_id`` (``cost`` tokens) against its tenant's ``limits``;
        RateLimited when they are not there.

        Returns the decision (for the RateLimit headers), or None when rates are unlimited.
        """
        if not limits.rate_limited:
            return None
        cost = max(1, min(cost, limits.burst))
        decision = self._requests.take(key_id, limits.rate_per_key, limits.burst, cost)
        if not decision.allowed:
            raise RateLimited(
                f"over {limits.rate_per_key:g} requests per second for this key "
                f"(burst {limits.burst}; ZAPGATE_RATE_LIMIT_PER_KEY); "
                f"retry after {decision.headers()['Retry-After']} s",
                decision.headers(),
                decision.retry_after,
            )
        return decision

    # failed authentications ---------------------------------------------------------------------

    def address_blocked(self, address: str | None) -> RateLimited | None:
        """The refusal for an address with no failed authentications left, else None."""
        if not self._failures_per_minute or address is None:
            return None
        rate, burst = self._failures_per_minute / MINUTE, self._failures_per_minute
        tokens = self._failures.peek(address, rate, burst)
        if tokens >= 1:
            return None
        waiting = Decision(False, burst, 0, (1 - tokens) / rate, MINUTE)
        return RateLimited(
            f"too many failed authentications from this address (over "
            f"{self._failures_per_minute} a minute; ZAPGATE_AUTH_FAILURES_PER_MINUTE)",
            waiting.headers("auth-failures"),
            waiting.retry_after,
        )

    def record_failure(self, address: str | None) -> None:
        """One failed authentication from ``address``."""
        if self._failures_per_minute and address is not None:
            rate, burst = self._failures_per_minute / MINUTE, self._failures_per_minute
            self._failures.take(address, rate, burst)

    # streams and count quotas ------------------------------------------------------------------

    async def open_stream(self, tenant: str, key_id: str) -> StreamSlot:
        """A slot for one more open stream of ``key_id``; QuotaExceeded when none is free."""
        limit = (await self.of(tenant)).streams_per_key
        slot = self.streams.acquire(key_id, limit)
        if slot is None:
            raise QuotaExceeded(quota_message("streams_per_key", limit))
        return slot

    @staticmethod
    def no_room(limits: Limits, name: str, used: int) -> Refusal | None:
        """The refusal (QuotaExceeded) when ``used`` already fills the count quota ``name``."""
        limit = getattr(limits, name)
        if limit and used >= limit:
            return Refusal(QuotaExceeded(quota_message(name, limit)))
        return None
