"""SQL for webhooks, deliveries and attempts: every function is scoped by tenant.

The one deliberately cross-tenant function is named so (``all_tenants_active``). Writes that
take a :class:`UnitOfWork` run inside a committer job, which may run twice (a failed batch is
retried job by job), so they touch only that unit.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapgate.clock import now_ms
from zapgate.db.committer import UnitOfWork
from zapgate.db.tables import webhook_attempts, webhook_deliveries, webhooks
from zapgate.events.model import Event
from zapgate.ids import new_id
from zapgate.webhooks.model import (
    AttemptOutcome,
    Delivery,
    DeliveryStatus,
    Kind,
    Webhook,
    lane_of,
)

EXCERPT_LIMIT = 1024


# subscriptions -------------------------------------------------------------------------------


async def get(engine: AsyncEngine, tenant: str, webhook_id: str) -> Webhook | None:
    """One subscription of ``tenant``."""
    async with engine.connect() as connection:
        return await get_in(connection, tenant, webhook_id)


async def get_in(connection: AsyncConnection, tenant: str, webhook_id: str) -> Webhook | None:
    """One subscription of ``tenant``, read in a write's transaction."""
    statement = sa.select(webhooks).where(
        webhooks.c.tenant_id == tenant, webhooks.c.id == webhook_id
    )
    row = (await connection.execute(statement)).mappings().first()
    return Webhook.from_row(row) if row else None


async def list_for(
    engine: AsyncEngine, tenant: str, kinds: Collection[str] = (Kind.WEBHOOK,)
) -> list[Webhook]:
    """The subscriptions of ``tenant`` of these kinds."""
    statement = (
        sa.select(webhooks)
        .where(webhooks.c.tenant_id == tenant, webhooks.c.kind.in_(kinds))
        .order_by(webhooks.c.id)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).mappings().all()
    return [Webhook.from_row(row) for row in rows]


async def count(
    connection: AsyncConnection, tenant: str, kinds: Collection[str] = (Kind.WEBHOOK,)
) -> int:
    """How many subscriptions of these kinds ``tenant`` has (active or not)."""
    statement = (
        sa.select(sa.func.count())
        .select_from(webhooks)
        .where(webhooks.c.tenant_id == tenant, webhooks.c.kind.in_(kinds))
    )
    return int(await connection.scalar(statement) or 0)


async def all_tenants_active(engine: AsyncEngine) -> list[Webhook]:
    """Active subscriptions of every tenant (the dispatcher starts a worker for each)."""
    statement = sa.select(webhooks).where(webhooks.c.active.is_(True)).order_by(webhooks.c.id)
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).mappings().all()
    return [Webhook.from_row(row) for row in rows]


async def insert(unit: UnitOfWork, tenant: str, row: dict[str, Any]) -> Webhook:
    """Store a new subscription of ``tenant`` (``row`` without ``tenant_id``)."""
    stored = {**row, "tenant_id": tenant}
    await unit.connection.execute(webhooks.insert().values(**stored))
    return Webhook.from_row(stored)


async def update(
    unit: UnitOfWork, tenant: str, webhook_id: str, values: dict[str, Any]
) -> Webhook | None:
    """Change one subscription; returns it as stored."""
    statement = (
        sa.update(webhooks)
        .where(webhooks.c.tenant_id == tenant, webhooks.c.id == webhook_id)
        .values(updated_at=now_ms(), **values)
        .returning(*webhooks.c)
    )
    row = (await unit.connection.execute(statement)).mappings().first()
    return Webhook.from_row(row) if row else None


async def advance_cursor(
    unit: UnitOfWork, tenant: str, webhook_id: str, old: int, new: int
) -> bool:
    """Move a subscription's cursor from ``old`` to ``new``; False if it was not at ``old``."""
    moved = await unit.connection.execute(
        sa.update(webhooks)
        .where(
            webhooks.c.tenant_id == tenant,
            webhooks.c.id == webhook_id,
            webhooks.c.cursor_seq == old,
        )
        .values(cursor_seq=new)
    )
    return bool(moved.rowcount)


async def delete(unit: UnitOfWork, tenant: str, webhook_id: str) -> bool:
    """Remove a subscription, its deliveries and their attempts."""
    of_webhook = sa.and_(
        webhook_deliveries.c.tenant_id == tenant, webhook_deliveries.c.webhook_id == webhook_id
    )
    await unit.connection.execute(
        sa.delete(webhook_attempts).where(
            webhook_attempts.c.tenant_id == tenant,
            webhook_attempts.c.delivery_id.in_(
                sa.select(webhook_deliveries.c.id).where(of_webhook)
            ),
        )
    )
    await unit.connection.execute(sa.delete(webhook_deliveries).where(of_webhook))
    result = await unit.connection.execute(
        sa.delete(webhooks).where(webhooks.c.tenant_id == tenant, webhooks.c.id == webhook_id)
    )
    return bool(result.rowcount)


# deliveries ----------------------------------------------------------------------------------


def add_deliveries(
    unit: UnitOfWork,
    tenant: str,
    webhook_id: str,
    events: list[Event],
    kind: str = Kind.WEBHOOK,
) -> None:
    """A new pending delivery of each event to one subscription of ``tenant``, of ``kind``
    (which decides the lane it is sent in: ``lane_of``)."""
    now = now_ms()
    for event in events:
        unit.insert(
            webhook_deliveries,
            {
                "id": new_id("dlv"),
                "tenant_id": tenant,
                "webhook_id": webhook_id,
                "event_id": event.id,
                "event_seq": event.seq,
                "session": event.session,
                "status": DeliveryStatus.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "last_status_code": None,
                "last_error": None,
                "created_at": now,
                "updated_at": now,
                "request_id": event.request_id,
                "lane": lane_of(kind, event),
            },
        )


async def pending(
    engine: AsyncEngine,
    tenant: str,
    webhook_id: str,
    limit: int,
    skip_lanes: Collection[str | None] = (),
) -> list[Delivery]:
    """A subscription's pending deliveries, oldest event first, leaving out those of
    ``skip_lanes`` (``Delivery.lane_key``: its lane, else its session)."""
    column = sa.func.coalesce(webhook_deliveries.c.lane, webhook_deliveries.c.session)
    statement = sa.select(webhook_deliveries).where(
        webhook_deliveries.c.tenant_id == tenant,
        webhook_deliveries.c.webhook_id == webhook_id,
        webhook_deliveries.c.status == DeliveryStatus.PENDING,
    )
    names = [name for name in skip_lanes if name is not None]
    if None in skip_lanes:
        statement = statement.where(column.is_not(None))
    if names:
        statement = statement.where(sa.or_(column.is_(None), column.not_in(names)))
    statement = statement.order_by(webhook_deliveries.c.event_seq, webhook_deliveries.c.id)
    async with engine.connect() as connection:
        rows = (await connection.execute(statement.limit(limit))).mappings().all()
    return [Delivery.from_row(row) for row in rows]


async def get_delivery(
    engine: AsyncEngine, tenant: str, webhook_id: str, delivery_id: str
) -> Delivery | None:
    """One delivery of a subscription."""
    statement = sa.select(webhook_deliveries).where(
        webhook_deliveries.c.tenant_id == tenant,
        webhook_deliveries.c.webhook_id == webhook_id,
        webhook_deliveries.c.id == delivery_id,
    )
    async with engine.connect() as connection:
        row = (await connection.execute(statement)).mappings().first()
    return Delivery.from_row(row) if row else None


async def list_deliveries(
    engine: AsyncEngine,
    tenant: str,
    webhook_id: str,
    limit: int,
    before: str | None,
    status: str | None,
) -> list[Delivery]:
    """Deliveries of a subscription, newest first."""
    statement = sa.select(webhook_deliveries).where(
        webhook_deliveries.c.tenant_id == tenant, webhook_deliveries.c.webhook_id == webhook_id
    )
    if before is not None:
        statement = statement.where(webhook_deliveries.c.id < before)
    if status is not None:
        statement = statement.where(webhook_deliveries.c.status == status)
    statement = statement.order_by(webhook_deliveries.c.id.desc()).limit(limit)
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).mappings().all()
    return [Delivery.from_row(row) for row in rows]


def update_delivery(
    unit: UnitOfWork, tenant: str, delivery_id: str, values: dict[str, Any]
) -> None:
    """Change one delivery of ``tenant`` when the batch flushes (one statement for all)."""
    match = {"tenant_id": tenant, "id": delivery_id}
    unit.update(webhook_deliveries, match, {"updated_at": now_ms(), **values})


async def count_pending(engine: AsyncEngine, tenant: str, webhook_id: str, upto: int) -> int:
    """How many deliveries of a subscription are pending (counting stops at ``upto``)."""
    pending = (
        sa.select(webhook_deliveries.c.id)
        .where(
            webhook_deliveries.c.webhook_id == webhook_id,
            webhook_deliveries.c.status == DeliveryStatus.PENDING,
            webhook_deliveries.c.tenant_id == tenant,
        )
        .limit(upto)
        .subquery()
    )
    async with engine.connect() as connection:
        return int(
            (await connection.execute(sa.select(sa.func.count()).select_from(pending))).scalar_one()
        )


async def count_by_status(engine: AsyncEngine, tenant: str, webhook_id: str) -> dict[str, int]:
    """How many deliveries of a subscription are in each status."""
    statement = (
        sa.select(webhook_deliveries.c.status, sa.func.count())
        .where(
            webhook_deliveries.c.tenant_id == tenant,
            webhook_deliveries.c.webhook_id == webhook_id,
        )
        .group_by(webhook_deliveries.c.status)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    return {str(status): int(count) for status, count in rows}


# attempts ------------------------------------------------------------------------------------


def add_attempt(unit: UnitOfWork, tenant: str, delivery_id: str, outcome: AttemptOutcome) -> None:
    """Record one attempt of a delivery of ``tenant``."""
    unit.insert(
        webhook_attempts,
        {
            "id": new_id("att"),
            "tenant_id": tenant,
            "delivery_id": delivery_id,
            "attempted_at": now_ms(),
            "status_code": outcome.status_code,
            "duration_ms": outcome.duration_ms,
            "error": outcome.error,
            "response_excerpt": outcome.excerpt,
        },
    )


async def attempts_of(
    engine: AsyncEngine, tenant: str, delivery_ids: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """The attempts of each delivery of ``tenant``, oldest first."""
    if not delivery_ids:
        return {}
    statement = (
        sa.select(webhook_attempts)
        .where(
            webhook_attempts.c.tenant_id == tenant,
            webhook_attempts.c.delivery_id.in_(delivery_ids),
        )
        .order_by(webhook_attempts.c.attempted_at, webhook_attempts.c.id)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).mappings().all()
    found: dict[str, list[dict[str, Any]]] = {delivery_id: [] for delivery_id in delivery_ids}
    for row in rows:
        found[row["delivery_id"]].append(
            {
                "at": row["attempted_at"],
                "status_code": row["status_code"],
                "duration_ms": row["duration_ms"],
                "error": row["error"],
                "response": row["response_excerpt"],
            }
        )
    return found


async def all_tenants_delete_finished_deliveries(engine: AsyncEngine, cutoff_ms: int) -> int:
    """Retention: remove every tenant's deliveries finished before ``cutoff_ms``, with attempts."""
    finished = sa.select(webhook_deliveries.c.id).where(
        webhook_deliveries.c.status != DeliveryStatus.PENDING,
        webhook_deliveries.c.updated_at < cutoff_ms,
    )
    async with engine.begin() as connection:
        await connection.execute(
            sa.delete(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(finished))
        )
        result = await connection.execute(
            sa.delete(webhook_deliveries).where(webhook_deliveries.c.id.in_(finished))
        )
    return int(result.rowcount or 0)


async def all_tenants_summary(engine: AsyncEngine, limit: int) -> list[tuple[Webhook, int, int]]:
    """Every tenant's subscriptions (the first ``limit``) with how many deliveries each has
    pending and failed (counted through ``ix_deliveries_queue``)."""
    d = webhook_deliveries.c

    def counted(status: str) -> sa.ScalarSelect[Any]:
        return (
            sa.select(sa.func.count())
            .where(d.webhook_id == webhooks.c.id, d.status == status)
            .scalar_subquery()
        )

    statement = (
        sa.select(webhooks, counted(DeliveryStatus.PENDING), counted(DeliveryStatus.FAILED))
        .order_by(webhooks.c.tenant_id, webhooks.c.id)
        .limit(limit)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    found = []
    for row in rows:
        mapping = row._mapping
        pending, failed = row[-2], row[-1]
        found.append((Webhook.from_row(mapping), int(pending), int(failed)))
    return found


async def summary(
    engine: AsyncEngine, tenant: str, kinds: Collection[str] = (Kind.WEBHOOK,)
) -> list[tuple[Webhook, int, int, int | None]]:
    """``tenant``'s subscriptions of these kinds with how many deliveries each has pending and
    failed, and when the oldest pending one was made (its lag)."""
    d = webhook_deliveries.c

    def of(status: str, figure: Any) -> sa.ScalarSelect[Any]:
        mine = sa.and_(d.webhook_id == webhooks.c.id, d.status == status)
        return sa.select(figure).where(mine).scalar_subquery()

    statement = (
        sa.select(
            webhooks,
            of(DeliveryStatus.PENDING, sa.func.count()),
            of(DeliveryStatus.FAILED, sa.func.count()),
            of(DeliveryStatus.PENDING, sa.func.min(d.created_at)),
        )
        .where(webhooks.c.tenant_id == tenant, webhooks.c.kind.in_(kinds))
        .order_by(webhooks.c.id)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    return [(Webhook.from_row(row._mapping), int(row[-3]), int(row[-2]), row[-1]) for row in rows]
