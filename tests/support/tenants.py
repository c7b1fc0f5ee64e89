"""Tenants for tests: made the way the operator makes them, then given a key."""

from __future__ import annotations

import contextlib

from zapgate.auth.scopes import Scope
from zapgate.errors import TenantExists
from zapgate.services import Services


async def tenant_key(
    services: Services,
    tenant: str,
    name: str = "test",
    scopes: frozenset[str] = frozenset({Scope.ADMIN}),
) -> str:
    """A key of ``tenant``, created first unless it exists."""
    with contextlib.suppress(TenantExists):
        await services.tenants.create(tenant)
    return await services.auth.create_key(tenant, name, scopes)
