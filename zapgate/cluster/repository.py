"""SQL for nodes: a row per zapgate process, across tenants (a node serves them all)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapgate.clock import now_ms
from zapgate.db.tables import cluster_roles, messages, nodes, session_leases, sessions
from zapgate.tenants import repository as tenant_store

_DB_NOW_MS = sa.text("SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint")


async def all_tenants_now(connection: AsyncConnection) -> int:
    """Now, in ms, by the database's clock: every node's leases and heartbeats are timed by
    this one clock, so nodes whose clocks disagree never both hold a lease (SQLite, which runs
    one node, has this process's clock)."""
    if connection.dialect.name == "postgresql":
        return int(await connection.scalar(_DB_NOW_MS) or 0)
    return now_ms()


async def all_tenants_register(
    connection: AsyncConnection, name: str, incarnation: str, now: int, sessions: int
) -> dict[str, Any] | None:
    """Register node ``name`` as this ``incarnation``; returns the row it replaced, if any (a
    node of that name that stopped without leaving, or is still alive elsewhere)."""
    found = (
        (await connection.execute(sa.select(nodes).where(nodes.c.name == name))).mappings().first()
    )
    values = {"incarnation": incarnation, "started_at": now, "last_seen": now, "sessions": sessions}
    if found is None:
        await connection.execute(nodes.insert().values(name=name, **values))
        return None
    await connection.execute(sa.update(nodes).where(nodes.c.name == name).values(**values))
    return dict(found)


async def all_tenants_beat(
    connection: AsyncConnection, name: str, incarnation: str, now: int, sessions: int
) -> bool:
    """Beat node ``name``'s heartbeat; False when another incarnation took its name."""
    result = await connection.execute(
        sa.update(nodes)
        .where(nodes.c.name == name, nodes.c.incarnation == incarnation)
        .values(last_seen=now, sessions=sessions)
    )
    return bool(result.rowcount)


async def all_tenants_leave(connection: AsyncConnection, name: str, incarnation: str) -> None:
    """Remove node ``name`` (this incarnation): it stopped."""
    await connection.execute(
        sa.delete(nodes).where(nodes.c.name == name, nodes.c.incarnation == incarnation)
    )


async def all_tenants_forget_dead(connection: AsyncConnection, before: int) -> None:
    """Remove the nodes not seen since ``before`` (long dead)."""
    await connection.execute(sa.delete(nodes).where(nodes.c.last_seen < before))


async def all_tenants_alive(engine: AsyncEngine, within_ms: int) -> list[dict[str, Any]]:
    """The nodes seen in the last ``within_ms`` (by the database's clock), by name."""
    async with engine.connect() as connection:
        since = await all_tenants_now(connection) - within_ms
        statement = sa.select(nodes).where(nodes.c.last_seen >= since).order_by(nodes.c.name)
        return [dict(row) for row in (await connection.execute(statement)).mappings()]


Key = tuple[str, str]
"""A session: (tenant, name)."""


async def all_tenants_wanted(engine: AsyncEngine) -> set[Key]:
    """Every session that should run: it wants to, and its tenant is active."""
    statement = sa.select(sessions.c.tenant_id, sessions.c.name).where(
        sessions.c.desired == "running", sessions.c.tenant_id.in_(tenant_store.all_tenants_active())
    )
    async with engine.connect() as connection:
        return {(str(t), str(n)) for t, n in (await connection.execute(statement)).all()}


@dataclass(frozen=True, slots=True)
class Leases:
    """What the session leases look like now (by the database's clock)."""

    live: set[Key]
    """Sessions some node holds a live lease of."""
    lapsed: set[Key]
    """Sessions whose lease lapsed: its node stopped renewing it (dead or paused; a lease given
    up is neither)."""
    lapsed_owners: set[str]
    """The nodes that let a lease lapse."""
    next_lapse_ms: int | None
    """In how many ms the soonest live lease of another node lapses, if it is not renewed."""


async def all_tenants_leases(engine: AsyncEngine, me: str, ttl_ms: int) -> Leases:
    """The session leases now, as ``me`` sees them (see ``Leases``); a node counts as having
    let a lease lapse only within a TTL of it (a node of that name may be back since)."""
    columns = session_leases.c
    statement = sa.select(columns.tenant_id, columns.session, columns.owner, columns.expires_at)
    live: set[Key] = set()
    lapsed: set[Key] = set()
    owners: set[str] = set()
    soonest: int | None = None
    async with engine.connect() as connection:
        now = await all_tenants_now(connection)
        for tenant, name, owner, expires_at in (await connection.execute(statement)).all():
            if expires_at >= now:
                live.add((str(tenant), str(name)))
                if owner != me:
                    soonest = expires_at if soonest is None else min(soonest, expires_at)
            elif expires_at > 0:
                lapsed.add((str(tenant), str(name)))
                if expires_at >= now - ttl_ms:
                    owners.add(str(owner))
    return Leases(live, lapsed, owners, None if soonest is None else soonest - now)


async def all_tenants_renew(
    connection: AsyncConnection, owner: str, now: int, until: int
) -> dict[Key, int]:
    """Extend ``owner``'s live leases to ``until``; returns them with their tokens (a lease
    missing here expired, and may be another node's now)."""
    statement = (
        sa.update(session_leases)
        .where(session_leases.c.owner == owner, session_leases.c.expires_at >= now)
        .values(expires_at=until)
        .returning(session_leases.c.tenant_id, session_leases.c.session, session_leases.c.token)
    )
    rows = (await connection.execute(statement)).all()
    return {(str(t), str(n)): int(token) for t, n, token in rows}


async def all_tenants_acquire(
    connection: AsyncConnection, key: Key, owner: str, now: int, until: int
) -> int | None:
    """Take the lease of ``key`` unless a node holds it live; returns its new fencing token."""
    tenant, name = key
    taken = await connection.execute(
        sa.update(session_leases)
        .where(
            session_leases.c.tenant_id == tenant,
            session_leases.c.session == name,
            session_leases.c.expires_at < now,
        )
        .values(owner=owner, token=session_leases.c.token + 1, expires_at=until)
        .returning(session_leases.c.token)
    )
    token = taken.scalar_one_or_none()
    if token is not None:
        return int(token)
    insert = _insert(connection)(session_leases).values(
        tenant_id=tenant, session=name, owner=owner, token=1, expires_at=until
    )
    created = await connection.execute(insert.on_conflict_do_nothing())
    return 1 if created.rowcount else None


async def all_tenants_release(connection: AsyncConnection, owner: str, keys: list[Key]) -> None:
    """Give up ``owner``'s leases of ``keys`` now (another node may take them at once)."""
    for tenant, name in keys:
        await connection.execute(
            sa.update(session_leases)
            .where(
                session_leases.c.tenant_id == tenant,
                session_leases.c.session == name,
                session_leases.c.owner == owner,
            )
            .values(expires_at=0)
        )


def _insert(connection: AsyncConnection) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT DO NOTHING."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


async def all_tenants_owners(engine: AsyncEngine, keys: list[Key]) -> dict[Key, str]:
    """The nodes holding live leases of ``keys`` (a key without one runs nowhere)."""
    columns = session_leases.c
    async with engine.connect() as connection:
        now = await all_tenants_now(connection)
        statement = sa.select(columns.tenant_id, columns.session, columns.owner).where(
            sa.tuple_(columns.tenant_id, columns.session).in_(keys), columns.expires_at >= now
        )
        rows = (await connection.execute(statement)).all()
    return {(str(t), str(n)): str(owner) for t, n, owner in rows}


async def all_tenants_with_queued(engine: AsyncEngine, keys: list[Key]) -> list[Key]:
    """Those of ``keys`` whose outbox holds a queued message."""
    if not keys:
        return []
    statement = (
        sa.select(messages.c.tenant_id, messages.c.session)
        .where(
            sa.tuple_(messages.c.tenant_id, messages.c.session).in_(keys),
            messages.c.status == "queued",
        )
        .distinct()
    )
    async with engine.connect() as connection:
        return [(str(t), str(n)) for t, n in (await connection.execute(statement)).all()]


async def all_tenants_hold_role(
    connection: AsyncConnection, role: str, owner: str, now: int, until: int
) -> int | None:
    """Renew ``owner``'s live lease of ``role``, or take it if no node holds it live; returns
    the fencing token (one more at each new holder), or None while another node holds it."""
    columns = cluster_roles.c
    renewed = await connection.execute(
        sa.update(cluster_roles)
        .where(columns.role == role, columns.owner == owner, columns.expires_at >= now)
        .values(expires_at=until)
        .returning(columns.token)
    )
    token = renewed.scalar_one_or_none()
    if token is not None:
        return int(token)
    taken = await connection.execute(
        sa.update(cluster_roles)
        .where(columns.role == role, columns.expires_at < now)
        .values(owner=owner, token=columns.token + 1, expires_at=until)
        .returning(columns.token)
    )
    token = taken.scalar_one_or_none()
    if token is not None:
        return int(token)
    insert = _insert(connection)(cluster_roles).values(
        role=role, owner=owner, token=1, expires_at=until
    )
    created = await connection.execute(insert.on_conflict_do_nothing())
    return 1 if created.rowcount else None


async def all_tenants_release_role(connection: AsyncConnection, role: str, owner: str) -> None:
    """Give ``owner``'s lease of ``role`` up now (another node may take it at once)."""
    await connection.execute(
        sa.update(cluster_roles)
        .where(cluster_roles.c.role == role, cluster_roles.c.owner == owner)
        .values(expires_at=0)
    )
