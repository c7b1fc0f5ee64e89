"""Limits in use: each tenant's limits (cached), request rates per key, failed authentications
per client address, and open streams per key.

The counters live in this process, except in cluster mode (``redis_url``), where request rates
and failed authentications are counted in Redis with every node (``zapgate.limits.shared``): the
``shared_`` methods. Open streams and requests in progress are counted per node.
"""

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
from zapgate.limits.shared import RedisLink, SharedBuckets
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
        redis_url: str | None = None,
    ) -> None:
        """``redis_url``: cluster mode, request rates and failed authentications are counted in
        Redis with every node."""
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
        self._link = RedisLink(redis_url, clock) if redis_url is not None else None
        self._shared_requests: SharedBuckets | None = None
        self._shared_failures: SharedBuckets | None = None
        if self._link is not None:
            self._shared_requests = SharedBuckets(self._link, "key", self._requests)
            self._shared_failures = SharedBuckets(self._link, "auth", self._failures)

    @property
    def shared(self) -> bool:
        """Whether rates are counted with other nodes (cluster mode): use the ``shared_``
        methods."""
        return self._link is not None

    async def stop(self) -> None:
        """Close the connection to Redis (cluster mode)."""
        if self._link is not None:
            await self._link.close()

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
            raise _over_rate(limits, decision)
        return decision

    async def shared_take_request(
        self, limits: Limits, key_id: str, cost: int = 1
    ) -> Decision | None:
        """``take_request`` counted with every node (one round trip to Redis; this node's
        bucket while Redis is unreachable)."""
        if self._shared_requests is None or not limits.rate_limited:
            return self.take_request(limits, key_id, cost)
        cost = max(1, min(cost, limits.burst))
        shared = self._shared_requests
        decision = await shared.take(key_id, limits.rate_per_key, limits.burst, cost)
        if not decision.allowed:
            raise _over_rate(limits, decision)
        return decision

    # failed authentications ---------------------------------------------------------------------

    def address_blocked(self, address: str | None) -> RateLimited | None:
        """The refusal for an address with no failed authentications left, else None.

        In cluster mode, as this node last heard from Redis (``shared_address_blocked`` asks).
        """
        if not self._failures_per_minute or address is None:
            return None
        rate, burst = self._failures_per_minute / MINUTE, self._failures_per_minute
        return self._blocked(self._failures.peek(address, rate, burst))

    async def shared_address_blocked(self, address: str | None) -> RateLimited | None:
        """``address_blocked`` as counted by every node (a round trip to Redis)."""
        if self._shared_failures is None or not self._failures_per_minute or address is None:
            return self.address_blocked(address)
        rate, burst = self._failures_per_minute / MINUTE, self._failures_per_minute
        return self._blocked(await self._shared_failures.peek(address, rate, burst))

    def _blocked(self, tokens: float) -> RateLimited | None:
        if tokens >= 1:
            return None
        rate, burst = self._failures_per_minute / MINUTE, self._failures_per_minute
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

    async def shared_record_failure(self, address: str | None) -> None:
        """``record_failure`` counted with every node."""
        if self._shared_failures is None:
            self.record_failure(address)
        elif self._failures_per_minute and address is not None:
            rate, burst = self._failures_per_minute / MINUTE, self._failures_per_minute
            await self._shared_failures.take(address, rate, burst)

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


def _over_rate(limits: Limits, decision: Decision) -> RateLimited:
    """The refusal of a request that ``decision`` did not allow."""
    return RateLimited(
        f"over {limits.rate_per_key:g} requests per second for this key "
        f"(burst {limits.burst}; ZAPGATE_RATE_LIMIT_PER_KEY); "
        f"retry after {decision.headers()['Retry-After']} s",
        decision.headers(),
        decision.retry_after,
    )
