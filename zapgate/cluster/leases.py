"""Cluster mode: each session runs on exactly one node, the one holding its lease.

A node looks every third of the lease TTL (and at once when woken: a session created, started,
stopped here). It renews the leases it holds, and stops a session whose lease it lost (it was
paused past the TTL: another node owns it now, with a higher fencing token). It stops and gives
up the sessions that no longer want to run. It takes free leases (missing or expired: a node
died) up to its fair share, the sessions that want to run divided by the live nodes, and starts
them. A node above its share, or above the least share while another node runs fewer,
gives sessions up (one a look in the second case), so a node that joins gets work. At a graceful
stop it stops its sessions and gives their leases up at once, so others take them over without
waiting for the TTL.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.clock import now_ms
from zapgate.cluster import repository
from zapgate.cluster.registry import NodeRegistry
from zapgate.cluster.repository import Key
from zapgate.cluster.signals import WakeSignals
from zapgate.db.committer import Committer, UnitOfWork
from zapgate.tasks import cancel_and_wait

log = logging.getLogger(__name__)
T = TypeVar("T")


class Runs(Protocol):
    """What the keeper asks of the sessions of this node."""

    def running_keys(self) -> set[Key]: ...

    async def run_owned(self, key: Key) -> None: ...

    async def halt_here(self, key: Key, reason: str | None) -> None: ...

    def wake_here(self, tenant: str, name: str) -> None: ...


class LeaseKeeper:
    """Holds this node's session leases; see the module."""

    def __init__(
        self,
        database: AsyncEngine,
        committer: Committer,
        registry: NodeRegistry,
        runs: Runs,
        ttl_seconds: float,
        signals: WakeSignals | None = None,
    ) -> None:
        self._signals = signals
        self._database = database
        self._committer = committer
        self._registry = registry
        self._runs = runs
        self._ttl_ms = int(ttl_seconds * 1000)
        self.tokens: dict[Key, int] = {}
        """The leases held, with their fencing tokens."""
        self._woken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def signals_received(self) -> int:
        """Wake-ups received from other nodes."""
        return self._signals.received if self._signals is not None else 0

    @property
    def owner(self) -> str:
        return self._registry.name

    async def start(self) -> None:
        """Listen to other nodes' wake-ups, take this node's share now, then keep looking."""
        if self._signals is not None:
            await self._signals.start(self._runs.wake_here)
        await self.tick()
        self._task = asyncio.create_task(self._loop(), name="zapgate-leases")

    def wake(self) -> None:
        """Look now (a session was created, started or stopped here)."""
        self._woken.set()

    async def stop(self) -> None:
        """Stop the sessions held here and give their leases up."""
        await cancel_and_wait(self._task)
        self._task = None
        if self._signals is not None:
            await self._signals.stop()
        async with self._lock:
            held = list(self.tokens)
            for key in held:
                await self._runs.halt_here(key, None)
            await self._write(
                lambda unit: repository.all_tenants_release(unit.connection, self.owner, held)
            )
            self.tokens.clear()

    async def tick(self) -> None:
        """One look: renew, stop what was lost or is unwanted, take or give up a share."""
        async with self._lock:
            now = now_ms()
            until = now + self._ttl_ms
            held = await self._write(
                lambda unit: repository.all_tenants_renew(unit.connection, self.owner, now, until)
            )
            for key in set(self.tokens) - set(held):
                log.warning("lost the lease of %s/%s: another node runs it now", *key)
                await self._runs.halt_here(key, None)
            self.tokens = held
            wanted = await repository.all_tenants_wanted(self._database)
            unwanted = [key for key in self.tokens if key not in wanted]
            for key in unwanted:
                await self._runs.halt_here(key, "stopped")
            await self._release(unwanted)
            nodes = await self._registry.alive()
            live = max(1, len(nodes))
            most, least = math.ceil(len(wanted) / live), len(wanted) // live
            if len(self.tokens) < most:
                await self._take(wanted, most - len(self.tokens), now, until)
            starved = any(n.sessions < least for n in nodes if n.name != self.owner)
            if len(self.tokens) > most or (starved and len(self.tokens) > least):
                keep = most if len(self.tokens) > most else len(self.tokens) - 1
                extra = sorted(self.tokens)[keep:]
                for key in extra:  # one at a time while others starve: no node empties itself
                    await self._runs.halt_here(key, None)
                await self._release(extra)
            running = self._runs.running_keys()
            for key in sorted(self.tokens):
                if key not in running:
                    await self._runs.run_owned(key)
            queued = await repository.all_tenants_with_queued(self._database, list(self.tokens))
            for key in queued:  # a wake-up from another node may have been lost
                self._runs.wake_here(*key)

    async def _take(self, wanted: set[Key], room: int, now: int, until: int) -> None:
        leased = await repository.all_tenants_leased(self._database, now)
        for key in sorted(wanted - leased)[:room]:
            token = await self._write(
                lambda unit, key=key: repository.all_tenants_acquire(  # type: ignore[misc]
                    unit.connection, key, self.owner, now, until
                )
            )
            if token is not None:
                self.tokens[key] = token

    async def _release(self, keys: list[Key]) -> None:
        if not keys:
            return
        await self._write(
            lambda unit: repository.all_tenants_release(unit.connection, self.owner, keys)
        )
        for key in keys:
            self.tokens.pop(key, None)

    async def _write(self, job: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        return await self._committer.run(job)

    async def _loop(self) -> None:
        interval = self._ttl_ms / 3000
        while True:
            try:
                async with asyncio.timeout(interval):
                    await self._woken.wait()
            except TimeoutError:
                pass
            self._woken.clear()
            try:
                await self.tick()
            except Exception:  # the database is away: look again next time
                log.exception("could not look after the session leases")
