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

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapgate.clock import monotonic_ms
from zapgate.cluster import repository
from zapgate.cluster.registry import Node, NodeRegistry
from zapgate.cluster.repository import Key
from zapgate.cluster.roles import sure_until
from zapgate.cluster.signals import WakeSignals
from zapgate.tasks import cancel_and_wait, woken_or_after

log = logging.getLogger(__name__)
T = TypeVar("T")
LAPSE_MARGIN_MS = 50
"""A look for a lapsing lease comes this long after it lapses (by the database's clock)."""


class Runs(Protocol):
    """What the keeper asks of the sessions of this node."""

    def running_keys(self) -> set[Key]: ...

    async def run_owned(self, key: Key) -> bool: ...

    async def halt_here(self, key: Key, reason: str | None, handover: bool = False) -> None: ...

    def wake_here(self, tenant: str, name: str) -> None: ...


class LeaseKeeper:
    """Holds this node's session leases; see the module."""

    def __init__(
        self,
        database: AsyncEngine,
        registry: NodeRegistry,
        runs: Runs,
        ttl_seconds: float,
        signals: WakeSignals | None = None,
    ) -> None:
        self._signals = signals
        self._database = database
        self._registry = registry
        self._runs = runs
        self._ttl_ms = int(ttl_seconds * 1000)
        self.tokens: dict[Key, int] = {}
        """The leases held, with their fencing tokens."""
        self._sure_until: dict[Key, int] = {}
        """Until when (this process's monotonic clock, ms) each lease held is surely still this
        node's: a third of the TTL before it would expire, counted from before the write that
        took or renewed it (the database's clock sets the expiry, later than that), so a node
        paused past it stops sending at once when it wakes, before its next look finds the lease
        lost, and a node whose wall clock is wrong is never sure for too long."""
        self._woken = asyncio.Event()
        self._next_lapse: int | None = None
        """When (monotonic ms) another node's soonest lease lapses unless renewed: a look
        then takes a dead node's sessions within the TTL, not up to a third of it later."""
        self.on_look: list[Callable[[], None]] = []
        """Also told when another node asks every node to look (the cluster's roles)."""
        self._task: asyncio.Task[None] | None = None
        self._renewing: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def holds(self, key: Key) -> bool:
        """Whether this node surely still holds ``key``'s lease now."""
        return monotonic_ms() < self._sure_until.get(key, 0)

    def _held(self, tokens: dict[Key, int], asked: int) -> None:
        self.tokens = tokens
        self._sure_until = dict.fromkeys(tokens, self._sure(asked))

    def _sure(self, asked: int) -> int:
        return sure_until(asked, self._ttl_ms)

    def _forget(self, keys: list[Key]) -> None:
        for key in keys:
            self.tokens.pop(key, None)
            self._sure_until.pop(key, None)

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
            await self._signals.start(self._runs.wake_here, self._looked)
        await self.tick()
        self._task = asyncio.create_task(self._loop(), name="zapgate-leases")
        self._renewing = asyncio.create_task(self._keep_renewing(), name="zapgate-renewals")

    def wake(self) -> None:
        """Look now."""
        self._woken.set()

    def _looked(self) -> None:
        """Another node asked every node to look (its sessions or roles changed)."""
        self._woken.set()
        for hook in self.on_look:
            hook()

    def wake_all(self) -> None:
        """Look now, here and on every other node (a session was created, started or stopped
        through this node: its owner, or the node that should take it, acts at once)."""
        self._woken.set()
        if self._signals is not None:
            self._signals.publish_look()

    async def stop(self) -> None:
        """Stop the sessions held here, all at once, and give their leases up (never raises:
        a database that is away lets the leases expire instead)."""
        await cancel_and_wait(self._task, self._renewing)
        self._task = self._renewing = None
        async with self._lock:
            held = list(self.tokens)
            await self._halt(held, None, handover=True)
            try:
                await self._release(held)
            except Exception:
                log.warning("could not give the leases up; they expire after the TTL")
            self._held({}, 0)
        # leave (the others' shares no longer count this node), then have them look now: they
        # take the sessions at once, not at their next look
        await self._registry.stop()
        if self._signals is not None:
            self._signals.publish_look()

    async def tick(self) -> None:
        """One look: renew, stop what was lost or is unwanted, take or give up a share."""
        async with self._lock:
            if self._registry.replaced:  # another process took this node's name: it runs them
                await self._halt(list(self.tokens), None)
                self._held({}, 0)
                return
            asked = monotonic_ms()
            held = await self._write(self._renew)
            lost = [key for key in self.tokens if key not in held]
            for key in lost:
                log.warning("lost the lease of %s/%s: another node runs it now", *key)
            self._held(held, asked)
            await self._halt(lost, None)
            wanted = await repository.all_tenants_wanted(self._database)
            unwanted = [key for key in self.tokens if key not in wanted]
            await self._halt(unwanted, "stopped", handover=True)
            await self._release(unwanted)
            leases = await repository.all_tenants_leases(self._database, self.owner, self._ttl_ms)
            self._next_lapse = (
                None
                if leases.next_lapse_ms is None
                else monotonic_ms() + leases.next_lapse_ms + LAPSE_MARGIN_MS
            )
            # a node that let a lease lapse is dead or paused: it has no share, even while its
            # heartbeat is still recent
            nodes = [
                n
                for n in await self._registry.alive()
                if n.name == self.owner or n.name not in leases.lapsed_owners
            ]
            live = max(1, len(nodes))
            most, least = math.ceil(len(wanted) / live), len(wanted) // live
            free = self._mine_first(sorted(wanted - leases.live - leases.lapsed), nodes)
            await self._take(free[: max(0, most - len(self.tokens))])
            # leases that lapsed (a node died): this node's part of them at once, even above
            # its share (rebalanced at a later look, not this one: what it gives up now would be
            # sessions running well here)
            orphans = self._mine_first(sorted(wanted & leases.lapsed), nodes)
            await self._take(orphans[: math.ceil(len(orphans) / live)])
            starved = any(n.sessions < least for n in nodes if n.name != self.owner)
            over = len(self.tokens) > most or (starved and len(self.tokens) > least)
            if over and not orphans:
                keep = most if len(self.tokens) > most else len(self.tokens) - 1
                extra = sorted(self.tokens)[keep:]  # one a look while others starve
                await self._halt(extra, None, handover=True)
                await self._release(extra)
            running = self._runs.running_keys()
            cannot = [key for key in sorted(self.tokens) if key not in running]
            cannot = [key for key in cannot if not await self._runs.run_owned(key)]
            await self._release(cannot)  # its engine cannot run here: another node's turn
            queued = await repository.all_tenants_with_queued(self._database, list(self.tokens))
            for key in queued:  # a wake-up from another node may have been lost
                self._runs.wake_here(*key)

    def _mine_first(self, keys: list[Key], nodes: list[Node]) -> list[Key]:
        """``keys`` starting at this node's part: the nodes that look at once (a node died)
        take different sessions instead of racing for the same first ones."""
        names = sorted({n.name for n in nodes} | {self.owner})
        part = math.ceil(len(keys) / len(names))
        start = names.index(self.owner) * part
        return keys[start:] + keys[:start]

    async def _renew(self, connection: AsyncConnection) -> dict[Key, int]:
        now = await repository.all_tenants_now(connection)
        return await repository.all_tenants_renew(connection, self.owner, now, now + self._ttl_ms)

    async def _keep_renewing(self) -> None:
        """Renew the leases every third of the TTL whatever a look is waiting for (a session
        whose engine takes long to stop must not make this node unsure of all the others):
        only a lease renewed with the token this node holds is sure for longer; what is lost,
        taken or given up is the looks' business."""
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            asked = monotonic_ms()
            try:
                held = await self._write(self._renew)
            except Exception:
                log.warning("could not renew the session leases; the next look tries again")
                continue
            for key, token in held.items():
                if self.tokens.get(key) == token:
                    self._sure_until[key] = max(self._sure_until.get(key, 0), self._sure(asked))

    async def _halt(self, keys: list[Key], reason: str | None, handover: bool = False) -> None:
        """Stop these sessions here, all at once (one slow engine does not hold up the rest);
        on a ``handover`` (the leases are still this node's) their sends in flight end first."""
        await asyncio.gather(*(self._runs.halt_here(key, reason, handover) for key in keys))

    async def _take(self, keys: list[Key]) -> None:
        for key in keys:
            asked = monotonic_ms()  # each lease from now: a long look must not take one expired

            async def acquire(connection: AsyncConnection, key: Key = key) -> int | None:
                now = await repository.all_tenants_now(connection)
                return await repository.all_tenants_acquire(
                    connection, key, self.owner, now, now + self._ttl_ms
                )

            token = await self._write(acquire)
            if token is not None:
                self.tokens[key] = token
                self._sure_until[key] = self._sure(asked)

    async def _release(self, keys: list[Key]) -> None:
        if not keys:
            return
        await self._write(
            lambda connection: repository.all_tenants_release(connection, self.owner, keys)
        )
        self._forget(keys)

    async def _fence(self) -> None:
        """After a failed look: stop the sessions whose lease this node can no longer be sure
        of (the database is away; another node may take them once they expire)."""
        now = monotonic_ms()
        gone = [key for key, sure in self._sure_until.items() if sure <= now]
        if gone:
            log.error("stopping %s sessions whose leases could not be renewed", len(gone))
            await self._halt(gone, None)
            self._forget(gone)

    async def _write(self, job: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """A lease write in a transaction of its own, beside the writer: a backlog of domain
        writes must not hold a renewal up past the lease (cluster mode is PostgreSQL's)."""
        async with self._database.begin() as connection:
            return await job(connection)

    async def _loop(self) -> None:
        interval = self._ttl_ms / 3000
        while True:
            wait = interval
            if self._next_lapse is not None:
                wait = min(wait, (self._next_lapse - monotonic_ms()) / 1000)
            await woken_or_after(self._woken, wait)
            try:
                async with asyncio.timeout(self._ttl_ms / 1000):
                    await self.tick()
            except Exception:  # the database is away: look again next time
                log.exception("could not look after the session leases")
                self._next_lapse = None  # known no more: look at the usual pace, not at once
                await self._fence()
