"""Cluster mode: work that one node at a time does for the whole cluster, held by a lease.

The webhook dispatcher is such a role: two nodes dispatching one subscription would deliver its
events twice and out of order. A node renews the role's lease every third of the TTL while it
holds it, and takes it once it lapses (its holder died, or gave it up at a graceful stop), so a
dead holder's work resumes elsewhere within the TTL. The holder is *sure* of the role until a
third of the TTL before its lease expires; ``holds()`` says so, and the work checks it before
each act with an effect outside (a webhook request), so a holder paused past its lease does
nothing once it wakes, even before its next look finds the role lost and ends the work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapgate.clock import monotonic_ms
from zapgate.cluster import repository
from zapgate.tasks import cancel_and_wait, woken_or_after

log = logging.getLogger(__name__)
Act = Callable[[], Awaitable[None]]


def sure_until(asked: int, ttl_ms: int) -> int:
    """Until when (``monotonic_ms``) a lease taken or renewed by a write sent at ``asked`` is
    surely still this node's: a third of the TTL before it could expire (the database's clock
    set the expiry, after ``asked``)."""
    return asked + ttl_ms - ttl_ms // 3


class RoleKeeper:
    """Holds ``role`` when it can: ``begin()`` when it gets it, ``end()`` when it loses or gives
    it up, ``keep()`` at each look while it holds it."""

    def __init__(
        self,
        database: AsyncEngine,
        role: str,
        owner: str,
        ttl_seconds: float,
        begin: Act,
        end: Act,
        keep: Act | None = None,
        announce: Callable[[], None] | None = None,
    ) -> None:
        self._database = database
        self.role = role
        self._owner = owner
        self._ttl_ms = int(ttl_seconds * 1000)
        self._begin = begin
        self._end = end
        self._keep = keep
        self._announce = announce
        self._woken = asyncio.Event()
        self.token: int | None = None
        """The fencing token of the lease held (None: not held)."""
        self._sure_until = 0
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def wake(self) -> None:
        """Look now (another node gave a role up)."""
        self._woken.set()

    def holds(self) -> bool:
        """Whether this node surely still holds the role now."""
        return self.token is not None and monotonic_ms() < self._sure_until

    async def start(self) -> None:
        """Look now (the role starts here if no node holds it), then every third of the TTL."""
        try:
            await self.look()
        except Exception:
            log.exception("could not look at the %s role; retrying", self.role)
        self._task = asyncio.create_task(self._loop(), name=f"zapgate-role-{self.role}")

    async def stop(self) -> None:
        """End the work here and give the role up, so another node takes it at once."""
        await cancel_and_wait(self._task)
        self._task = None
        async with self._lock:
            if self.token is None:
                return
            await self._lose()
            try:
                async with self._database.begin() as connection:
                    await repository.all_tenants_release_role(connection, self.role, self._owner)
            except Exception:
                log.warning("could not give the %s role up; it lapses after the TTL", self.role)
                return
        if self._announce is not None:  # another node takes it now, not at its next look
            self._announce()

    async def look(self) -> None:
        """Renew the role, or take it if it is free; begin or end the work accordingly."""
        async with self._lock:
            asked = monotonic_ms()  # the database's clock sets the expiry, later than this

            async with self._database.begin() as connection:  # beside the writer's backlog
                token = await self._hold(connection)
            if token != self.token and self.token is not None:
                log.warning("lost the %s role to another node", self.role)
                await self._lose()
            if token is None:
                return
            self._sure_until = sure_until(asked, self._ttl_ms)
            if self.token is None:
                self.token = token
                log.info("this node does the %s role now (token %s)", self.role, token)
                await self._begin()
            elif self._keep is not None:
                await self._keep()

    async def _lose(self) -> None:
        self.token = None
        self._sure_until = 0
        await asyncio.shield(self._end())  # a look's timeout must not cut the work's stop short

    async def _hold(self, connection: AsyncConnection) -> int | None:
        now = await repository.all_tenants_now(connection)
        return await repository.all_tenants_hold_role(
            connection, self.role, self._owner, now, now + self._ttl_ms
        )

    async def _loop(self) -> None:
        interval = self._ttl_ms / 3000
        while True:
            await woken_or_after(self._woken, interval)
            try:
                async with asyncio.timeout(self._ttl_ms / 1000):
                    await self.look()
            except Exception:  # the database is away: end the work once unsure of the role
                log.exception("could not renew the %s role", self.role)
                async with self._lock:
                    if self.token is not None and not self.holds():
                        await self._lose()
