"""Who is calling: API keys checked against stored hashes, with a short-lived verification cache."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.auth import keys
from zapgate.auth import repository as key_store
from zapgate.auth import scopes as scopes_of
from zapgate.auth.scopes import Scope
from zapgate.auth.tokens import JwtVerifier
from zapgate.clock import now_ms
from zapgate.db.committer import Committer, Refusal, UnitOfWork
from zapgate.errors import Conflict, InvalidInput, KeyNotFound, Unauthorized
from zapgate.tenants import repository as tenant_store

CACHE_MAX = 10_000
CONFIGURED = "ZAPGATE_API_KEY"
"""The name of the key configured in ZAPGATE_API_KEY (start-up replaces it; not revocable)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: its tenant, key, the scopes it has (with what they grant) and
    the sessions it is limited to (None: all of its tenant's)."""

    tenant: str
    key_id: str
    role: str
    scopes: frozenset[str] = scopes_of.granted([Scope.ADMIN])
    sessions: frozenset[str] | None = None
    expires_at: int | None = None
    """Epoch ms after which the key is refused (None: never)."""

    def require(self, needed: Scope, session: str | None) -> None:
        """Forbidden unless this caller has ``needed`` for ``session`` (None: no session)."""
        scopes_of.check(self.scopes, self.sessions, needed, session)


@dataclass(frozen=True, slots=True)
class KeyRequest:
    """What a new key may do."""

    name: str
    scopes: frozenset[str]
    sessions: frozenset[str] | None = None
    expires_at: int | None = None


class Authenticator:
    """Resolves presented keys to principals."""

    def __init__(
        self,
        engine: AsyncEngine,
        committer: Committer,
        enabled: bool,
        cache_seconds: float,
        tokens: JwtVerifier | None = None,
    ) -> None:
        self._engine = engine
        self._tokens = tokens if tokens is not None and tokens.enabled else None
        self._committer = committer
        self.enabled = enabled
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Principal]] = {}
        self.anonymous = Principal("default", "anonymous", "admin")
        self.revoked: set[str] = set()
        """Keys revoked through this process: open streams of theirs end."""
        self._revocation_listeners: list[Callable[[str], None]] = []

    def on_revoked(self, listener: Callable[[str], None]) -> None:
        """Call ``listener`` with the id of each key revoked through this process."""
        self._revocation_listeners.append(listener)

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
        if self._tokens is not None and self._tokens.looks_like(presented):
            return await self._verify_token(presented)
        row = await key_store.all_tenants_find_key_by_lookup(
            self._engine, keys.lookup_of(presented)
        )
        if row is None or not keys.matches(presented, row["key_hash"]):
            raise Unauthorized("invalid API key")
        expires_at = row["expires_at"]
        now = now_ms()
        if expires_at is not None and expires_at <= now:
            raise Unauthorized("the API key has expired")
        sessions = row["sessions"]
        tenant, key_id = row["tenant_id"], row["id"]

        async def touch(unit: UnitOfWork) -> None:
            await key_store.touch(unit.connection, tenant, key_id, now)

        await self._committer.run(touch, background=tenant)  # once per cache period per key
        return Principal(
            tenant,
            key_id,
            row["role"],
            scopes_of.parse_stored(row["scopes"]),
            frozenset(sessions) if sessions is not None else None,
            expires_at,
        )

    async def _verify_token(self, token: str) -> Principal:
        assert self._tokens is not None
        claims = self._tokens.verify(token)
        async with self._engine.connect() as connection:
            if not await tenant_store.exists(connection, claims.tenant):
                raise Unauthorized(f"the token's tenant {claims.tenant!r} does not exist")
        return Principal(
            claims.tenant,
            f"jwt:{claims.subject}",
            "jwt",
            claims.scopes,
            None,
            claims.expires_at,
        )

    def _remember(self, digest: str, principal: Principal) -> None:
        if self._cache_seconds <= 0:
            return
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        seconds = self._cache_seconds
        if principal.expires_at is not None:  # never cached past its expiry
            seconds = min(seconds, (principal.expires_at - now_ms()) / 1000)
        self._cache[digest] = (time.monotonic() + seconds, principal)

    def forget(self, key_id: str) -> None:
        """Drop ``key_id`` from the verification cache: its next request is checked anew."""
        for digest in [d for d, (_, known) in self._cache.items() if known.key_id == key_id]:
            del self._cache[digest]

    async def create_key(self, tenant: str, name: str) -> str:
        """Issue an admin key for ``tenant`` (created if new); returns the plaintext, shown once."""
        plaintext, _record = await self.issue_key(
            tenant, KeyRequest(name, frozenset({Scope.ADMIN}))
        )
        return plaintext

    async def issue_key(self, tenant: str, wanted: KeyRequest) -> tuple[str, dict[str, Any]]:
        """Issue a key for ``tenant`` (created if new): the plaintext, shown once, and the stored
        record (without its hash)."""
        issued = keys.issue()
        name = wanted.name

        async def job(unit: UnitOfWork) -> dict[str, Any]:
            await tenant_store.ensure(unit.connection, tenant, tenant)
            return await key_store.insert(
                unit.connection,
                issued.id,
                tenant,
                name,
                issued.prefix,
                issued.key_hash,
                role=scopes_of.stored(wanted.scopes).split()[0],  # the widest scope
                scopes=scopes_of.stored(wanted.scopes),
                sessions=sorted(wanted.sessions) if wanted.sessions is not None else None,
                expires_at=wanted.expires_at,
            )

        record = await self._committer.run(job)
        return issued.plaintext, record

    async def list_keys(self, tenant: str) -> list[dict[str, Any]]:
        """``tenant``'s keys, oldest first, revoked ones included (without their hashes)."""
        return await key_store.list_keys(self._engine, tenant)

    async def revoke_key(self, tenant: str, key_id: str) -> None:
        """Revoke ``tenant``'s key ``key_id`` (NotFound if it has none such, or it is revoked;
        Conflict for the configured key, which ZAPGATE_API_KEY replaces); its next request on
        this node is refused."""

        async def job(unit: UnitOfWork) -> bool | Refusal:
            if await key_store.name_of(unit.connection, tenant, key_id) == CONFIGURED:
                return Refusal(
                    Conflict("the key of ZAPGATE_API_KEY is replaced by changing the setting")
                )
            return await key_store.revoke(unit.connection, tenant, key_id, now_ms())

        if not await self._committer.run(job):
            raise KeyNotFound(f"no live key {key_id!r}")
        self.forget(key_id)
        self.revoked.add(key_id)
        for listener in self._revocation_listeners:
            listener(key_id)

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
