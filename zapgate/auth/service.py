"""Who is calling: API keys checked against stored hashes, with a short-lived verification cache."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.auth import keys
from zapgate.auth import repository as key_store
from zapgate.db.committer import Committer, UnitOfWork
from zapgate.errors import InvalidInput, Unauthorized
from zapgate.tenants import repository as tenant_store

CACHE_MAX = 10_000
CONFIGURED = "ZAPGATE_API_KEY"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    tenant: str
    key_id: str
    role: str


class Authenticator:
    """Resolves presented keys to principals."""

    def __init__(
        self, engine: AsyncEngine, committer: Committer, enabled: bool, cache_seconds: float
    ) -> None:
        self._engine = engine
        self._committer = committer
        self.enabled = enabled
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Principal]] = {}
        self.anonymous = Principal("default", "anonymous", "admin")

    async def authenticate(self, presented: str | None) -> Principal:
        """The principal of ``presented``, or Unauthorized."""
        if not self.enabled:
            return self.anonymous
        if not presented:
            raise Unauthorized("missing API key: send Authorization: Bearer <key>")
        digest = keys.hash_key(presented)
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        principal = await self._verify(presented)
        self._remember(digest, principal)
        return principal

    def cached(self, presented: str | None) -> Principal | None:
        """The principal of a key verified recently, without touching the database."""
        if not presented:
            return None
        cached = self._cache.get(keys.hash_key(presented))
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        return None

    async def _verify(self, presented: str) -> Principal:
        row = await key_store.all_tenants_find_key_by_lookup(
            self._engine, keys.lookup_of(presented)
        )
        if row is None or not keys.matches(presented, row["key_hash"]):
            raise Unauthorized("invalid API key")
        return Principal(row["tenant_id"], row["id"], row["role"])

    def _remember(self, digest: str, principal: Principal) -> None:
        if self._cache_seconds <= 0:
            return
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[digest] = (time.monotonic() + self._cache_seconds, principal)

    async def create_key(self, tenant: str, name: str) -> str:
        """Issue a key for ``tenant`` (created if new); returns the plaintext, shown once."""
        issued = keys.issue()

        async def job(unit: UnitOfWork) -> None:
            await tenant_store.ensure(unit.connection, tenant, tenant)
            await key_store.insert(
                unit.connection, issued.id, tenant, name, issued.prefix, issued.key_hash
            )

        await self._committer.run(job)
        return issued.plaintext

    async def bootstrap(self, tenant: str, configured_key: str | None) -> str | None:
        """Make sure the admin can get in; returns a generated key to print once, if one was made.

        A configured ``ZAPGATE_API_KEY`` is stored (hashed) for ``tenant`` and replaces the one
        configured before. Without one, a key is generated only when no key exists at all.
        """
        if configured_key is not None:
            lookup = keys.lookup_of(configured_key)

            async def store_configured(unit: UnitOfWork) -> None:
                await tenant_store.ensure(unit.connection, tenant, tenant)
                await key_store.revoke_named_except(unit.connection, tenant, CONFIGURED, lookup)
                if await key_store.all_tenants_lookup_exists(unit.connection, lookup):
                    # configured before (maybe replaced since, so revoked): it is the key again
                    if not await key_store.reinstate_named(
                        unit.connection, tenant, CONFIGURED, lookup, keys.hash_key(configured_key)
                    ):
                        raise InvalidInput(
                            "ZAPGATE_API_KEY has the lookup part of another stored key; "
                            "choose another key"
                        )
                else:
                    await key_store.insert(
                        unit.connection,
                        f"key_{lookup[:12]}",
                        tenant,
                        CONFIGURED,
                        lookup,
                        keys.hash_key(configured_key),
                    )

            await self._committer.run(store_configured)
            return None

        async def count(unit: UnitOfWork) -> int:
            return await key_store.all_tenants_count_live_keys(unit.connection)

        if await self._committer.run(count) > 0:
            return None
        return await self.create_key(tenant, "admin (generated at first start)")
