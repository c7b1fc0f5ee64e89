"""This node among the others: registered at start, a heartbeat every third of the lease TTL,
removed when it stops. A node not seen for a TTL is dead.

Two processes given one ``ZAPGATE_NODE_NAME`` are told apart by their incarnation (an id made
at each start): the newer one takes the name, and the older one finds at its next beat that it
was replaced, and says so in its log. In cluster mode (``ZAPGATE_REDIS_URL``) Redis must answer
at start, or the node does not start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapgate.cluster import repository
from zapgate.db.committer import Committer, UnitOfWork
from zapgate.errors import Unavailable
from zapgate.ids import new_id
from zapgate.tasks import cancel_and_wait

log = logging.getLogger(__name__)

FORGET_AFTER_MS = 86_400_000
"""A node not seen for a day leaves the table (it is long dead)."""
REDIS_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Node:
    """A live node, as ``GET /api/v1/nodes`` shows it."""

    name: str
    started_at: int
    last_seen: int
    sessions: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Node:
        return cls(row["name"], row["started_at"], row["last_seen"], row["sessions"])


class NodeRegistry:
    """Registers this node and keeps its heartbeat; says which nodes are alive."""

    def __init__(
        self,
        database: AsyncEngine,
        committer: Committer,
        name: str,
        ttl_seconds: float,
        running: Callable[[], int],
        redis_url: str | None = None,
    ) -> None:
        self._database = database
        self._committer = committer
        self.name = name
        self._ttl_ms = int(ttl_seconds * 1000)
        self._running = running
        self._redis_url = redis_url
        self.incarnation = new_id("node")
        self.replaced = False
        """True once another process took this node's name (this one keeps serving, alone)."""
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Check Redis (cluster mode), register, and beat the heartbeat from now on."""
        if self._redis_url is not None:
            await _check_redis(self._redis_url)

        async def register(unit: UnitOfWork) -> tuple[int, dict[str, Any] | None]:
            now = await repository.all_tenants_now(unit.connection)
            await repository.all_tenants_forget_dead(unit.connection, now - FORGET_AFTER_MS)
            return now, await repository.all_tenants_register(
                unit.connection, self.name, self.incarnation, now, self._running()
            )

        now, before = await self._committer.run(register)
        if before is not None and before["last_seen"] >= now - self._ttl_ms:
            log.warning(
                "node name %s was in use by a process seen %.1f s ago; this one takes it "
                "(give each process its own ZAPGATE_NODE_NAME)",
                self.name,
                (now - before["last_seen"]) / 1000,
            )
        self._task = asyncio.create_task(self._beat(), name="zapgate-heartbeat")

    async def stop(self) -> None:
        """Stop beating and leave (the others see at once that it is gone)."""
        await cancel_and_wait(self._task)
        self._task = None

        async def leave(unit: UnitOfWork) -> None:
            await repository.all_tenants_leave(unit.connection, self.name, self.incarnation)

        try:
            await self._committer.run(leave)
        except Exception:  # the database is away: the others see it dead after a TTL
            log.warning("node %s could not leave; it is dead to the others after a TTL", self.name)

    async def alive(self) -> list[Node]:
        """The nodes seen within a TTL, by name (this one with its sessions as of now; the
        others' as of their last heartbeat)."""
        rows = await repository.all_tenants_alive(self._database, self._ttl_ms)
        for row in rows:
            if row["name"] == self.name and row["incarnation"] == self.incarnation:
                row["sessions"] = self._running()
        return [Node.from_row(row) for row in rows]

    async def beat(self) -> None:
        """One heartbeat now (with how many sessions run here)."""
        sessions = self._running()

        async def beat(connection: AsyncConnection) -> bool:
            now = await repository.all_tenants_now(connection)
            return await repository.all_tenants_beat(
                connection, self.name, self.incarnation, now, sessions
            )

        if self._database.dialect.name == "postgresql":  # beside the writer: a backlog of
            async with self._database.begin() as connection:  # writes must not make it late
                beaten = await beat(connection)
        else:  # SQLite has one writer
            beaten = await self._committer.run(lambda unit: beat(unit.connection))
        if not beaten and not self.replaced:
            self.replaced = True
            log.error("another process took the node name %s; set ZAPGATE_NODE_NAME", self.name)

    async def _beat(self) -> None:
        interval = self._ttl_ms / 3000
        while True:
            await asyncio.sleep(interval)
            try:
                await self.beat()
            except Exception:  # the database is away: beat again next time
                log.exception("node %s could not beat its heartbeat", self.name)


async def _check_redis(url: str) -> None:
    """Unavailable unless Redis at ``url`` answers a PING (never says the URL: it may hold a
    password)."""
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    client = aioredis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS)
    try:
        async with asyncio.timeout(REDIS_TIMEOUT_SECONDS):
            await client.ping()
    except (RedisError, OSError, TimeoutError) as error:
        raise Unavailable(
            f"cluster mode: Redis (ZAPGATE_REDIS_URL) does not answer: {type(error).__name__}"
        ) from None
    finally:
        await client.aclose()
