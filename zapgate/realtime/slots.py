"""Admission of replays: a bounded number at once overall and per tenant; the rest wait in line."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Tenant:
    semaphore: asyncio.Semaphore
    users: int = field(default=0)


class FairSlots:
    """At most ``total`` holders, at most ``per_tenant`` of one tenant; waiters are served FIFO.

    A tenant's waiters queue for a tenant slot before they ask for a global one, so one tenant's
    backlog never sits on global slots while other tenants wait.
    """

    def __init__(self, total: int, per_tenant: int) -> None:
        self._total = asyncio.Semaphore(total)
        self._per_tenant = per_tenant
        self._tenants: dict[str, _Tenant] = {}

    @asynccontextmanager
    async def hold(self, tenant: str) -> AsyncIterator[None]:
        """Wait for a slot for ``tenant`` and hold it for the ``async with`` block."""
        entry = self._tenants.get(tenant)
        if entry is None:
            entry = self._tenants[tenant] = _Tenant(asyncio.Semaphore(self._per_tenant))
        entry.users += 1
        try:
            async with entry.semaphore, self._total:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._tenants[tenant]

    def waiting_or_holding(self, tenant: str) -> int:
        """How many replays of ``tenant`` hold or wait for a slot."""
        entry = self._tenants.get(tenant)
        return 0 if entry is None else entry.users
