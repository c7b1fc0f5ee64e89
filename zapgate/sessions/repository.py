"""SQL for sessions; every query is scoped by tenant."""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapgate.clock import now_ms
from zapgate.db.tables import messages, sessions
from zapgate.engines.base import SessionStatus
from zapgate.messages.model import MessageStatus
from zapgate.sessions import sealing
from zapgate.sessions.model import NewSession, Session
from zapgate.tenants import repository as tenant_store

Key = tuple[str, str]
Change = tuple[str, str, dict[str, Any]]
"""(tenant, name, the columns to set) of one session."""


async def create(connection: AsyncConnection, new: NewSession) -> Session:
    """Insert a new, stopped session."""
    row = new_row(new)
    await connection.execute(sessions.insert().values(**row))
    return Session.from_row(row)


def new_row(new: NewSession) -> dict[str, Any]:
    """The row of a new, stopped session (for ``create`` or ``all_tenants_insert``)."""
    now = now_ms()
    return {
        "tenant_id": new.tenant,
        "name": new.name,
        "engine": new.engine,
        "config": sealing.seal(new.config, f"{new.tenant}/{new.name}"),
        "metadata": new.metadata,
        "status": SessionStatus.STOPPED.value,
        "status_reason": None,
        "desired": new.desired,
        "me": None,
        "created_at": now,
        "updated_at": now,
    }


async def all_tenants_insert(connection: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Insert the ``new_row`` rows of one write batch (any tenants) in one statement."""
    if rows:
        await connection.execute(sessions.insert(), rows)


async def exists(connection: AsyncConnection, tenant: str, name: str) -> bool:
    """Whether the session is stored."""
    found = await connection.scalar(sa.select(sessions.c.name).where(_key(tenant, name)))
    return found is not None


async def all_tenants_names_in_use(
    connection: AsyncConnection, keys: list[Key]
) -> tuple[set[Key], set[Key]]:
    """Of ``keys`` (one write batch: any tenants): the names a session has, and the names whose
    queued messages wait in the outbox (left by an earlier session of that name). One query."""
    if not keys:
        return set(), set()
    taken = sa.select(sa.literal("taken"), sessions.c.tenant_id, sessions.c.name).where(
        sa.tuple_(sessions.c.tenant_id, sessions.c.name).in_(keys)
    )
    queued = (
        sa.select(sa.literal("queued"), messages.c.tenant_id, messages.c.session)
        .where(
            sa.tuple_(messages.c.tenant_id, messages.c.session).in_(keys),
            messages.c.status == MessageStatus.QUEUED.value,
        )
        .distinct()
    )
    found: dict[str, set[Key]] = {"taken": set(), "queued": set()}
    for kind, tenant, name in await connection.execute(sa.union_all(taken, queued)):
        found[kind].add((tenant, name))
    return found["taken"], found["queued"]


async def get(engine: AsyncEngine, tenant: str, name: str) -> Session | None:
    """One session of ``tenant``."""
    async with engine.connect() as connection:
        row = (
            (await connection.execute(sa.select(sessions).where(_key(tenant, name))))
            .mappings()
            .first()
        )
    return Session.from_row(row) if row else None


async def list_for(engine: AsyncEngine, tenant: str) -> list[Session]:
    """All sessions of ``tenant`` by name."""
    statement = sa.select(sessions).where(sessions.c.tenant_id == tenant).order_by(sessions.c.name)
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).mappings().all()
    return [Session.from_row(row) for row in rows]


async def all_tenants_to_boot(engine: AsyncEngine) -> list[tuple[Session, bool]]:
    """Sessions of every active tenant that should run on boot, each with whether its outbox holds
    queued messages (one query: the boot path is tenant-wide by design)."""
    outbox = sa.exists().where(
        messages.c.tenant_id == sessions.c.tenant_id,
        messages.c.session == sessions.c.name,
        messages.c.status == MessageStatus.QUEUED.value,
    )
    statement = sa.select(sessions, outbox.label("queued")).where(
        sessions.c.desired == "running", sessions.c.tenant_id.in_(tenant_store.all_tenants_active())
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).mappings().all()
    return [(Session.from_row(row), bool(row["queued"])) for row in rows]


async def update(
    connection: AsyncConnection, tenant: str, name: str, values: dict[str, Any]
) -> Session | None:
    """Update one session; returns it as stored."""
    statement = (
        sa.update(sessions)
        .where(_key(tenant, name))
        .values(updated_at=now_ms(), **values)
        .returning(*sessions.c)
    )
    row = (await connection.execute(statement)).mappings().first()
    return Session.from_row(row) if row else None


async def all_tenants_update(
    connection: AsyncConnection, changes: list[Change]
) -> dict[Key, Session]:
    """Apply the changes of one write batch (any tenants); returns the rows written, as stored.

    One ``executemany`` per set of columns, in order within it: one session's changes in a batch
    must set the same columns or disjoint ones. A session that is gone is left out of the result.
    """
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    now = now_ms()
    for tenant, name, values in changes:
        params = {"k_tenant": tenant, "k_name": name, "v_updated_at": now}
        params.update({f"v_{column}": value for column, value in values.items()})
        groups.setdefault(tuple(sorted(values)), []).append(params)
    for columns, rows in groups.items():
        await connection.execute(_update_many(columns), rows)
    keys = list(dict.fromkeys((tenant, name) for tenant, name, _ in changes))
    key = sa.tuple_(sessions.c.tenant_id, sessions.c.name)
    found = await connection.execute(sa.select(sessions).where(key.in_(keys)))
    return {(row["tenant_id"], row["name"]): Session.from_row(row) for row in found.mappings()}


@cache
def _update_many(columns: tuple[str, ...]) -> sa.Update:
    """``UPDATE sessions SET <columns>, updated_at`` for one session, by bound parameters."""
    values: dict[str, sa.BindParameter[Any]] = {
        column: sa.bindparam(f"v_{column}") for column in (*columns, "updated_at")
    }
    where = sa.and_(
        sessions.c.tenant_id == sa.bindparam("k_tenant"),
        sessions.c.name == sa.bindparam("k_name"),
    )
    return sa.update(sessions).where(where).values(values)


async def delete(connection: AsyncConnection, tenant: str, name: str) -> bool:
    """Remove one session; False if it was not there."""
    result = await connection.execute(sa.delete(sessions).where(_key(tenant, name)))
    return bool(result.rowcount)


async def all_tenants_missing_sessions(
    connection: AsyncConnection, wanted: list[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which ``(tenant, name)`` pairs of ``wanted`` (one write batch: any tenants) are missing."""
    found = await connection.execute(_FOUND_SESSIONS, {"wanted": wanted})
    return set(wanted) - {(row[0], row[1]) for row in found}


_FOUND_SESSIONS = sa.select(sessions.c.tenant_id, sessions.c.name).where(
    sa.tuple_(sessions.c.tenant_id, sessions.c.name).in_(sa.bindparam("wanted", expanding=True))
)
"""Built once, with the pairs as one expanding parameter: checked on every write batch."""


def _key(tenant: str, name: str) -> sa.ColumnElement[bool]:
    return sa.and_(sessions.c.tenant_id == tenant, sessions.c.name == name)


async def count(connection: AsyncConnection, tenant: str) -> int:
    """How many sessions ``tenant`` has."""
    statement = (
        sa.select(sa.func.count()).select_from(sessions).where(sessions.c.tenant_id == tenant)
    )
    return int(await connection.scalar(statement) or 0)


async def all_tenants_by_status(engine: AsyncEngine) -> dict[str, int]:
    """How many sessions there are of each status, every tenant's (metrics)."""
    statement = sa.select(sessions.c.status, sa.func.count()).group_by(sessions.c.status)
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    return {str(status): int(count) for status, count in rows}


async def all_tenants_outboxes(engine: AsyncEngine) -> list[tuple[str, str, int, int | None]]:
    """Every session with queued messages: tenant, name, how many, the oldest's ``created_at``
    (each counted through ``ix_messages_outbox``, never a scan of the messages)."""
    depth, oldest = _outbox_figures()
    statement = sa.select(sessions.c.tenant_id, sessions.c.name, depth, oldest)
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    return [(str(t), str(n), int(d), o) for t, n, d, o in rows if d]


def _outbox_figures() -> tuple[sa.ScalarSelect[int], sa.ScalarSelect[int | None]]:
    """A session row's queued messages: how many, and the oldest one's ``created_at``."""
    c = messages.c
    mine = sa.and_(
        c.tenant_id == sessions.c.tenant_id,
        c.session == sessions.c.name,
        c.status == MessageStatus.QUEUED.value,
    )
    depth = sa.select(sa.func.count()).where(mine).scalar_subquery()
    return depth, sa.select(sa.func.min(c.created_at)).where(mine).scalar_subquery()


async def all_tenants_list(engine: AsyncEngine, limit: int) -> list[Session]:
    """Every tenant's sessions, by tenant and name (the first ``limit``)."""
    statement = sa.select(sessions).order_by(sessions.c.tenant_id, sessions.c.name).limit(limit)
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).mappings().all()
    return [Session.from_row(row) for row in rows]


async def outboxes(engine: AsyncEngine, tenant: str) -> dict[str, tuple[str, int, int | None]]:
    """``tenant``'s sessions by name: status, how many messages are queued, the oldest queued
    one's ``created_at`` (counted through ``ix_messages_outbox``, never a scan)."""
    depth, oldest = _outbox_figures()
    statement = sa.select(sessions.c.name, sessions.c.status, depth, oldest).where(
        sessions.c.tenant_id == tenant
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    return {str(name): (str(status), int(d), o) for name, status, d, o in rows}
