"""SQL for webhooks, deliveries and attempts; every query is scoped by tenant or subscription."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapgate.clock import now_ms
from zapgate.db.tables import webhook_attempts, webhook_deliveries, webhooks
from zapgate.webhooks.model import Delivery, DeliveryStatus, Webhook

EXCERPT_LIMIT = 1024


async def get(engine: AsyncEngine, tenant: str, webhook_id: str) -> Webhook | None:
    """One subscription of ``tenant``."""
    statement = sa.select(webhooks).where(
        webhooks.c.tenant_id == tenant, webhooks.c.id == webhook_id
    )
    async with engine.connect() as connection:
        row = (await connection.execute(statement)).mappings().first()
    return Webhook.from_row(row) if row else None


async def list_for(engine: AsyncEngine, tenant: str) -> list[Webhook]:
    """The subscriptions of ``tenant``."""
    statement = sa.select(webhooks).where(webhooks.c.tenant_id == tenant).order_by(webhooks.c.id)
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).mappings().all()
    return [Webhook.from_row(row) for row in rows]


async def all_active(engine: AsyncEngine) -> list[Webhook]:
    """Active subscriptions of every tenant (the dispatcher serves them all)."""
    statement = sa.select(webhooks).where(webhooks.c.active.is_(True)).order_by(webhooks.c.id)
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).mappings().all()
    return [Webhook.from_row(row) for row in rows]


async def update(
    connection: AsyncConnection, tenant: str, webhook_id: str, values: dict[str, Any]
) -> Webhook | None:
    """Change one subscription; returns it as stored."""
    statement = (
        sa.update(webhooks)
        .where(webhooks.c.tenant_id == tenant, webhooks.c.id == webhook_id)
        .values(updated_at=now_ms(), **values)
        .returning(*webhooks.c)
    )
    row = (await connection.execute(statement)).mappings().first()
    return Webhook.from_row(row) if row else None


async def delete(connection: AsyncConnection, tenant: str, webhook_id: str) -> bool:
    """Remove a subscription and its deliveries."""
    await connection.execute(
        sa.delete(webhook_deliveries).where(
            webhook_deliveries.c.tenant_id == tenant, webhook_deliveries.c.webhook_id == webhook_id
        )
    )
    result = await connection.execute(
        sa.delete(webhooks).where(webhooks.c.tenant_id == tenant, webhooks.c.id == webhook_id)
    )
    return bool(result.rowcount)


async def pending(engine: AsyncEngine, webhook_id: str, limit: int) -> list[Delivery]:
    """A subscription's pending deliveries, oldest event first."""
    statement = (
        sa.select(webhook_deliveries)
        .where(
            webhook_deliveries.c.webhook_id == webhook_id,
            webhook_deliveries.c.status == DeliveryStatus.PENDING,
        )
        .order_by(webhook_deliveries.c.event_seq, webhook_deliveries.c.id)
        .limit(limit)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).mappings().all()
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


async def attempts_of(
    engine: AsyncEngine, delivery_ids: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """The attempts of each delivery, oldest first."""
    if not delivery_ids:
        return {}
    statement = (
        sa.select(webhook_attempts)
        .where(webhook_attempts.c.delivery_id.in_(delivery_ids))
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


async def update_delivery(
    connection: AsyncConnection, delivery_id: str, values: dict[str, Any]
) -> None:
    """Change one delivery."""
    await connection.execute(
        sa.update(webhook_deliveries)
        .where(webhook_deliveries.c.id == delivery_id)
        .values(updated_at=now_ms(), **values)
    )


async def count_by_status(engine: AsyncEngine, webhook_id: str) -> dict[str, int]:
    """How many deliveries of a subscription are in each status."""
    statement = (
        sa.select(webhook_deliveries.c.status, sa.func.count())
        .where(webhook_deliveries.c.webhook_id == webhook_id)
        .group_by(webhook_deliveries.c.status)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    return {str(status): int(count) for status, count in rows}


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
