"""Migration 0018 undone: sinks and integrations go (the code before it would take them for
webhooks and POST every event to a broker's or a bot's URL); webhooks stay."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.test_message_search import migrate

ROW = (
    "INSERT INTO webhooks (id, tenant_id, url, event_types, sessions, headers, active, secret, "
    "cursor_seq, consecutive_failures, created_at, updated_at, kind) VALUES "
    "(:id, 't1', 'https://example.com/', '[]', '[]', '{}', true, 's', 0, 0, 0, 0, :kind)"
)


async def test_undoing_0018_drops_sinks_and_integrations_and_keeps_webhooks(
    database: AsyncEngine,
) -> None:
    await migrate(database, command.upgrade, "head")
    async with database.begin() as connection:
        await connection.execute(
            sa.text("INSERT INTO tenants (id, name, created_at) VALUES ('t1', 't1', 0)")
        )
        for hook_id, kind in (("wh_1", "webhook"), ("snk_1", "redis"), ("int_1", "bot")):
            await connection.execute(sa.text(ROW), {"id": hook_id, "kind": kind})
        await connection.execute(
            sa.text(
                "INSERT INTO webhook_deliveries (id, tenant_id, webhook_id, event_id, event_seq, "
                "status, next_attempt_at, created_at, updated_at) VALUES "
                "('dlv_1', 't1', 'snk_1', 'evt_1', 1, 'pending', 0, 0, 0)"
            )
        )
    await migrate(database, command.downgrade, "0017")
    async with database.connect() as connection:
        kept = (await connection.execute(sa.text("SELECT id FROM webhooks"))).scalars().all()
        owed = await connection.scalar(sa.text("SELECT count(*) FROM webhook_deliveries"))
    assert kept == ["wh_1"]
    assert owed == 0
    await migrate(database, command.upgrade, "head")
    async with database.connect() as connection:
        kinds = (await connection.execute(sa.text("SELECT kind FROM webhooks"))).scalars().all()
    assert kinds == ["webhook"]
