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
from zapgate.auth.invalidations import Invalidation, InvalidationWatch, Reason
from zapgate.auth.scopes import Scope
from zapgate.auth.tokens import JwtVerifier
from zapgate.clock import now_ms
from zapgate.db.committer import Committer, Refusal, UnitOfWork
from zapgate.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    KeyNotFound,
    TenantNotFound,
    TenantSuspended,
    Unauthorized,
)
from zapgate.tenants import repository as tenant_store
from zapgate.tenants.model import TenantStatus

CACHE_MAX = 10_000
CONFIGURED = "ZAPGATE_API_KEY"
"""The name of the key configured in ZAPGATE_API_KEY (start-up replaces it; not revocable)."""
GENERATED = "admin (generated at first start)"
REVOKED_MARGIN_SECONDS = 60.0
OPERATOR_SCOPES = frozenset({Scope.ADMIN, Scope.OPERATOR})
"""The operator's key: admin of its own tenant, and manager of every tenant."""


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

    @property
    def operator(self) -> bool:
        """Whether this caller manages tenants."""
        return Scope.OPERATOR in self.scopes


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
        self.anonymous = Principal(
            "default", "anonymous", "admin", scopes_of.granted(OPERATOR_SCOPES)
        )
        self.revoked: dict[str, float] = {}
        """Keys revoked lately, with until when they are remembered here (by then no cached
        verification of theirs is left, and the database refuses them)."""
        self.suspended: set[str] = set()
        """Tenants suspended or being deleted: every key of theirs is refused, their streams
        end. Set from each signal at once, then from the database (``settle``)."""
        self._listeners: list[Callable[[Invalidation], None]] = []
        self.watch = InvalidationWatch(engine, committer, self.apply, self.settle)
        """Applies revocations and suspensions made by other nodes sharing the database."""

    def on_invalidated(self, listener: Callable[[Invalidation], None]) -> None:
        """Call ``listener`` with each revocation or suspension, made here or on another node,
        once it is applied here."""
        self._listeners.append(listener)

    async def start(self) -> None:
        """Load the suspended tenants, then follow revocations and suspensions of every node."""
        async with self._engine.connect() as connection:
            self.suspended = await tenant_store.all_tenants_not_active(connection)
        await self.watch.start()

    async def stop(self) -> None:
        """Stop following other nodes."""
        await self.watch.stop()

    def apply(self, invalidation: Invalidation) -> None:
        """Take a revocation or a suspension into account now: cached verifications are dropped,
        and listeners close what is open."""
        self.watch.applied(invalidation)
        if invalidation.key_id is not None:
            self._remember_revoked(invalidation.key_id)
            self.forget(invalidation.key_id)
        elif invalidation.reason in (Reason.RESUMED, Reason.CREATED):
            self.suspended.discard(invalidation.tenant)
            self._forget_where(lambda known: known.tenant == invalidation.tenant)
        else:
            self.suspended.add(invalidation.tenant)
            self._forget_where(lambda known: known.tenant == invalidation.tenant)
        for listener in self._listeners:
            listener(invalidation)

    async def settle(self, tenants: set[str]) -> None:
        """Make what this node holds of ``tenants`` what the database says: signals may arrive
        out of order (a resume stamped before a suspend it followed), the database has the
        last word. A tenant found suspended is treated as a new suspension."""
        async with self._engine.connect() as connection:
            statuses = {t: await tenant_store.status_of(connection, t) for t in sorted(tenants)}
        for tenant, status in statuses.items():
            refused = status != TenantStatus.ACTIVE
            if refused == (tenant in self.suspended):
                continue
            reason = Reason.SUSPENDED if refused else Reason.RESUMED
            self.apply(Invalidation.new(tenant, reason))

    def _remember_revoked(self, key_id: str) -> None:
        now = time.monotonic()
        if len(self.revoked) >= CACHE_MAX:
            self.revoked = {k: until for k, until in self.revoked.items() if until > now}
        self.revoked[key_id] = now + self._cache_seconds + REVOKED_MARGIN_SECONDS

    def _is_revoked(self, key_id: str) -> bool:
        until = self.revoked.get(key_id)
        return until is not None and until > time.monotonic()

    def refuses(self, principal: Principal) -> bool:
        """Whether a caller admitted before is refused now (revoked, suspended or expired)."""
        if self._is_revoked(principal.key_id) or principal.tenant in self.suspended:
            return True
        return principal.expires_at is not None and now_ms() >= principal.expires_at

    def _check_live(self, principal: Principal) -> Principal:
        if principal.tenant in self.suspended:
            raise TenantSuspended(f"tenant {principal.tenant!r} is suspended or being deleted")
        if self._is_revoked(principal.key_id):
            raise Unauthorized("the API key has been revoked")
        return principal

    async def authenticate(self, presented: str | None) -> Principal:
        """The principal of ``presented``, or Unauthorized."""
        if not self.enabled:
            return self.anonymous
        if not presented:
            raise Unauthorized("missing API key: send Authorization: Bearer <key>")
        digest = keys.hash_key(presented)
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > time.monotonic():
            return self._check_live(cached[1])
        principal = await self._verify(presented)
        self._remember(digest, principal)
        return self._check_live(principal)

    def cached(self, presented: str | None) -> Principal | None:
        """The principal of a key verified recently, without touching the database."""
        if not presented:
            return None
        cached = self._cache.get(keys.hash_key(presented))
        if cached is not None and cached[0] > time.monotonic():
            known = cached[1]
            if known.tenant not in self.suspended and not self._is_revoked(known.key_id):
                return known
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
        if (
            row["tenant_status"] != TenantStatus.ACTIVE
        ):  # not cached: the signals say when it is back
            raise TenantSuspended(f"tenant {tenant!r} is suspended or being deleted")

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
        claims = await self._tokens.verify(token)
        async with self._engine.connect() as connection:
            status = await tenant_store.status_of(connection, claims.tenant)
        if status is None:
            raise Unauthorized(f"the token's tenant {claims.tenant!r} does not exist")
        if status != TenantStatus.ACTIVE:
            raise TenantSuspended(f"tenant {claims.tenant!r} is suspended or being deleted")
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
        self._forget_where(lambda known: known.key_id == key_id)

    def _forget_where(self, matches: Callable[[Principal], bool]) -> None:
        for digest in [d for d, (_, known) in self._cache.items() if matches(known)]:
            del self._cache[digest]

    async def create_key(
        self, tenant: str, name: str, scopes: frozenset[str] = frozenset({Scope.ADMIN})
    ) -> str:
        """Issue a key of ``tenant`` (admin unless told); returns the plaintext, shown once."""
        plaintext, _record = await self.issue_key(tenant, KeyRequest(name, scopes))
        return plaintext

    async def issue_key(self, tenant: str, wanted: KeyRequest) -> tuple[str, dict[str, Any]]:
        """Issue a key of ``tenant`` (TenantNotFound if there is none such): the plaintext, shown
        once, and the stored record (without its hash)."""
        issued = keys.issue()
        name = wanted.name

        async def job(unit: UnitOfWork) -> dict[str, Any] | Refusal:
            if not await tenant_store.exists(unit.connection, tenant):
                return Refusal(TenantNotFound(f"no tenant {tenant!r}"))
            return await key_store.insert(
                unit.connection,
                issued.id,
                tenant,
                name,
                issued.prefix,
                issued.key_hash,
                role=scopes_of.stored(wanted.scopes - {Scope.OPERATOR}).split()[0],  # widest
                scopes=scopes_of.stored(wanted.scopes),
                sessions=sorted(wanted.sessions) if wanted.sessions is not None else None,
                expires_at=wanted.expires_at,
            )

        record = await self._committer.run(job)
        return issued.plaintext, record

    async def list_keys(self, tenant: str) -> list[dict[str, Any]]:
        """``tenant``'s keys, oldest first, revoked ones included (without their hashes)."""
        return await key_store.list_keys(self._engine, tenant)

    async def revoke_key(self, tenant: str, key_id: str, by_operator: bool = True) -> None:
        """Revoke ``tenant``'s key ``key_id`` (NotFound if it has none such, or it is revoked;
        Conflict for the configured key, which ZAPGATE_API_KEY replaces); refused from its next
        request, here at once and on other nodes within their next look. Only the operator
        (``by_operator``) revokes a key that holds the operator scope: an admin of the operator's
        tenant cannot lock the operator out."""
        signal = Invalidation.new(tenant, Reason.REVOKED, key_id)

        async def job(unit: UnitOfWork) -> bool | Refusal:
            name, scopes = await key_store.name_and_scopes(unit.connection, tenant, key_id)
            if name == CONFIGURED:
                return Refusal(
                    Conflict("the key of ZAPGATE_API_KEY is replaced by changing the setting")
                )
            if not by_operator and Scope.OPERATOR in scopes:
                return Refusal(Forbidden("only the operator revokes an operator's key"))
            if not await key_store.revoke(unit.connection, tenant, key_id, signal.at):
                return False
            await signal.leave(unit)
            return True

        if not await self._committer.run(job):
            raise KeyNotFound(f"no live key {key_id!r}")
        self.apply(signal)

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
                        unit.connection,
                        tenant,
                        CONFIGURED,
                        lookup,
                        keys.hash_key(configured_key),
                        scopes_of.stored(OPERATOR_SCOPES),
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
                        scopes=scopes_of.stored(OPERATOR_SCOPES),
                    )

            await self._committer.run(store_configured)
            return None

        async def count(unit: UnitOfWork) -> int:
            return await key_store.all_tenants_count_live_keys(unit.connection)

        if await self._committer.run(count) > 0:
            return None
        return await self.create_key(tenant, GENERATED, OPERATOR_SCOPES)
