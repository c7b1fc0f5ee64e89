"""The tenants repository, on a SQLite file and on PostgreSQL: creation, reads, the seq counter."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.db.migrate import migrate
from zapgate.tenants import repository as tenant_store


async def test_ensure_creates_a_tenant_once(database: AsyncEngine) -> None:
    await migrate(database)
    async with database.begin() as connection:
        assert not await tenant_store.exists(connection, "acme")
        await tenant_store.ensure(connection, "acme", "Acme")
        await tenant_store.ensure(connection, "acme", "renamed")
        tenant = await tenant_store.get(connection, "acme")
        assert await tenant_store.exists(connection, "acme")
    assert tenant is not None
    assert (tenant.id, tenant.name, tenant.last_seq) == ("acme", "Acme", 0)


async def test_seqs_advance_per_tenant(database: AsyncEngine) -> None:
    await migrate(database)
    async with database.begin() as connection:
        for tenant in ("acme", "globex"):
            await tenant_store.ensure(connection, tenant, tenant)
        assert await tenant_store.advance_seq(connection, "acme", 3) == 3
        assert await tenant_store.advance_seq(connection, "acme", 2) == 5
        assert await tenant_store.advance_seq(connection, "globex", 1) == 1
        assert await tenant_store.last_seq(connection, "acme") == 5
        seqs = await tenant_store.all_tenants_last_seqs(connection)
    assert {tenant: seqs[tenant] for tenant in ("acme", "globex")} == {"acme": 5, "globex": 1}


async def test_an_unknown_tenant_has_no_seqs(database: AsyncEngine) -> None:
    await migrate(database)
    async with database.begin() as connection:
        assert await tenant_store.get(connection, "nobody") is None
        assert await tenant_store.last_seq(connection, "nobody") == 0
        with pytest.raises(LookupError):
            await tenant_store.advance_seq(connection, "nobody", 1)
