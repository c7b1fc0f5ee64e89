"""The way in for every request and connection: authenticate, then count against the limits.

HTTP routes, the send fast lane, SSE, long-polls and Socket.IO all call ``Gate.admit``, so a
check added here applies everywhere at once. In cluster mode the key's rate is counted in Redis
with every node (one round trip per admission), and so are the failed authentications of an
address (only when a key must be verified: a key verified recently costs no more).
"""

from __future__ import annotations

from dataclasses import dataclass

from zapgate.audit import actor as actors
from zapgate.auth.service import Authenticator, Principal
from zapgate.errors import RateLimited, TenantSuspended, Unauthorized
from zapgate.limits.buckets import Decision
from zapgate.limits.model import Limits
from zapgate.limits.service import LimitService


@dataclass(frozen=True, slots=True)
class Admission:
    """An admitted caller, its tenant's limits and the rate decision (None when rates are
    unlimited)."""

    principal: Principal
    decision: Decision | None
    limits: Limits


class Gate:
    """Authentication with failed-attempt limits per client address, then the key's rate."""

    def __init__(self, auth: Authenticator, limits: LimitService) -> None:
        self._auth = auth
        self.limits = limits

    async def admit(self, presented: str | None, address: str | None, cost: int = 1) -> Admission:
        """The caller of a request costing ``cost`` tokens; Unauthorized or RateLimited.

        An address that used up its failed attempts may still use a key verified recently (no
        database work), but nothing else until its budget refills.
        """
        principal = self._auth.cached(presented) if self._auth.enabled else self._auth.anonymous
        if principal is None:
            principal = await self._verify(presented, address)
        actors.identify(principal.key_id, principal.tenant)  # the actor of what it writes
        limits = await self.limits.of(principal.tenant)
        if limits.burst > 0:  # a body larger than a burst's worth takes a whole burst
            cost = min(cost, limits.burst)
        if self.limits.shared:
            decision = await self.limits.shared_take_request(limits, principal.key_id, cost)
        else:
            decision = self.limits.take_request(limits, principal.key_id, cost)
        return Admission(principal, decision, limits)

    def refuses(self, principal: Principal) -> bool:
        """Whether a caller admitted before is refused now (revoked, suspended, expired)."""
        return self._auth.refuses(principal)

    def refusal_for(self, presented: str | None, address: str | None) -> RateLimited | None:
        """The refusal an address gets before anything else is done, or None.

        Only an address that used up its failed authentications is refused this early, and only
        when it does not present a key verified recently. In cluster mode this is what this node
        last heard from Redis; ``admit`` asks Redis before it verifies a key.
        """
        blocked = self.limits.address_blocked(address)
        if blocked is None or (presented and self._auth.cached(presented) is not None):
            return None
        return blocked

    async def _verify(self, presented: str | None, address: str | None) -> Principal:
        blocked = await self.limits.shared_address_blocked(address)
        if blocked is not None:
            raise blocked
        try:
            return await self._auth.authenticate(presented)
        except (Unauthorized, TenantSuspended):
            # a missing key too: anonymous floods count; so does a suspended tenant's app
            # retrying (its refusal is never cached, so each one reads the database)
            await self.limits.shared_record_failure(address)
            raise
