"""The database's figures, read at each scrape: sessions by status, outbox depths and ages."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.clock import now_ms
from zapgate.metrics.registry import Metrics
from zapgate.sessions import repository


async def refresh(metrics: Metrics, database: AsyncEngine) -> None:
    """Set the gauges of shared state from the database."""
    by_status = await repository.all_tenants_by_status(database)
    now = now_ms()
    outboxes = [
        (tenant, name, depth, max(0.0, (now - oldest) / 1000) if oldest else 0.0)
        for tenant, name, depth, oldest in await repository.all_tenants_outboxes(database)
    ]
    metrics.shared_state(by_status, outboxes)
