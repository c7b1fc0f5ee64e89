"""Tenants as the operator manages them: create, list, suspend, resume, delete.

Suspending (or deleting) a tenant leaves a signal (``auth.invalidations``) in the same
transaction as the status change, so every node refuses its keys, closes its sockets and streams
and stops its sessions at once. A deletion then removes the tenant's rows in small chunks, in the
background, so a tenant with millions of messages never holds the single writer for long; it
resumes after a restart until the tenant is gone.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.auth.invalidations import Invalidation, Reason
from zapgate.auth.service import Authenticator
from zapgate.clock import now_ms
from zapgate.db.committer import Committer, Refusal, UnitOfWork
from zapgate.errors import Conflict, TenantExists, TenantNotFound
from zapgate.limits.service import LimitService
from zapgate.sessions.service import SessionManager
from zapgate.tenants import repository
from zapgate.tenants.model import Tenant, TenantStatus
from zapgate.webhooks.service import WebhookService

log = logging.getLogger(__name__)

DELETE_CHUNK = 1000
"""Rows deleted per write: a deletion shares the writer with every other tenant."""
SUSPENDED_REASON = "the tenant is suspended"


class TenantService:
    """The operator's view of tenants; the operator's own tenant can be neither suspended nor
    deleted (its key would lock itself out)."""

    def __init__(
        self,
        database: AsyncEngine,
        committer: Committer,
        auth: Authenticator,
        sessions: SessionManager,
        webhooks: WebhookService,
        limits: LimitService,
        protected: str,
    ) -> None:
        self._database = database
        self._committer = committer
        self._auth = auth
        self._sessions = sessions
        self._webhooks = webhooks
        self._limits = limits
        self._protected = protected
        self._deletions: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
        """Finish the deletions a stop interrupted."""
        for tenant in await repository.all_tenants_deleting(self._database):
            self._delete_later(tenant)

    async def stop(self) -> None:
        """Stop deleting (resumed at the next start)."""
        running = list(self._deletions.values())
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    async def create(
        self, tenant: str, name: str | None = None, limits: dict[str, Any] | None = None
    ) -> Tenant:
        """A new tenant (TenantExists if the id is taken), with its own limits if given."""

        signal = Invalidation.new(tenant, Reason.CREATED)

        async def job(unit: UnitOfWork) -> Tenant | Refusal:
            created = await repository.create(unit.connection, tenant, name or tenant)
            if created is None:
                return Refusal(TenantExists(f"tenant {tenant!r} exists"))
            await signal.leave(unit)  # the keys of a tenant deleted with this id stay refused
            return created

        created = await self._committer.run(job)
        self._auth.apply(signal)
        if limits:
            await self._limits.set_overrides(tenant, limits)
        return created

    async def get(self, tenant: str) -> Tenant:
        """One tenant (TenantNotFound if there is none such)."""
        async with self._database.connect() as connection:
            found = await repository.get(connection, tenant)
        if found is None:
            raise TenantNotFound(f"no tenant {tenant!r}")
        return found

    async def describe(self, tenant: Tenant) -> dict[str, Any]:
        """What the operator sees of a tenant: its limits in force and its own, and usage."""
        async with self._database.connect() as connection:
            sessions = await repository.count_sessions(connection, tenant.id)
        limits = await self._limits.of(tenant.id)
        return {
            "tenant": tenant,
            "limits": limits,
            "overrides": await self._limits.overrides(tenant.id),
            "sessions": sessions,
        }

    async def page(self, after: str | None, limit: int) -> list[Tenant]:
        """Tenants in id order after ``after``."""
        return await repository.all_tenants_page(self._database, after, limit)

    async def update(self, tenant: str, name: str | None, limits: dict[str, Any] | None) -> Tenant:
        """Rename ``tenant`` and/or set its own limits (None in ``limits``: back to default)."""
        if name is not None:

            async def job(unit: UnitOfWork) -> Refusal | None:
                if not await repository.exists(unit.connection, tenant):
                    return Refusal(TenantNotFound(f"no tenant {tenant!r}"))
                await repository.rename(unit.connection, tenant, name)
                return None

            await self._committer.run(job)
        if limits is not None:
            await self._limits.set_overrides(tenant, limits)
        return await self.get(tenant)

    async def suspend(self, tenant: str) -> Tenant:
        """Refuse every key of ``tenant`` and stop its sessions, on every node, at once."""
        return await self._change(tenant, TenantStatus.SUSPENDED, Reason.SUSPENDED)

    async def resume(self, tenant: str) -> Tenant:
        """Let ``tenant``'s keys in again and start the sessions that were running."""
        resumed = await self._change(tenant, TenantStatus.ACTIVE, Reason.RESUMED)
        await self._sessions.resume_tenant(tenant)
        return resumed

    async def delete(self, tenant: str) -> Tenant:
        """Refuse ``tenant`` at once, then delete it with all its data in the background; it is
        shown as ``deleting`` until it is gone."""
        deleting = await self._change(tenant, TenantStatus.DELETING, Reason.DELETED)
        self._delete_later(tenant)
        return deleting

    async def _change(self, tenant: str, status: TenantStatus, reason: Reason) -> Tenant:
        if tenant == self._protected and status is not TenantStatus.ACTIVE:
            raise Conflict(f"tenant {tenant!r} holds the operator's key; it cannot be {status}")
        signal = Invalidation.new(tenant, reason)

        async def job(unit: UnitOfWork) -> tuple[Tenant, bool] | Refusal:
            current = await repository.get(unit.connection, tenant)
            if current is None:
                return Refusal(TenantNotFound(f"no tenant {tenant!r}"))
            if current.status is TenantStatus.DELETING:
                return Refusal(Conflict(f"tenant {tenant!r} is being deleted"))
            if current.status is status:
                return current, False  # nothing changes: no signal
            suspended_at = None if status is TenantStatus.ACTIVE else signal.at
            changed = await repository.set_status(unit.connection, tenant, status, suspended_at)
            assert changed is not None  # the row was read in this transaction
            await signal.leave(unit)
            return changed, True

        changed, signalled = await self._committer.run(job)
        if signalled:
            self._auth.apply(signal)
        if status is not TenantStatus.ACTIVE:
            await self._sessions.halt_tenant(tenant, SUSPENDED_REASON)
        return changed

    def _delete_later(self, tenant: str) -> None:
        if tenant in self._deletions:
            return
        task = asyncio.create_task(self._delete_all(tenant), name=f"zapgate-delete-{tenant}")
        self._deletions[tenant] = task
        task.add_done_callback(lambda _task: self._deletions.pop(tenant, None))

    async def _delete_all(self, tenant: str) -> None:
        try:
            await self._sessions.halt_tenant(tenant, SUSPENDED_REASON)
            for webhook in await self._webhooks.list_webhooks(tenant):
                await self._webhooks.delete(tenant, webhook.id)
            for table in repository.tenant_owned():
                while True:

                    async def chunk(unit: UnitOfWork, table: Any = table) -> int:
                        return await repository.delete_some(
                            unit.connection, table, tenant, DELETE_CHUNK
                        )

                    if await self._committer.run(chunk, background=tenant) < DELETE_CHUNK:
                        break

            async def last(unit: UnitOfWork) -> None:
                for table in repository.tenant_owned():  # what was written meanwhile
                    await repository.delete_some(unit.connection, table, tenant, DELETE_CHUNK)
                await repository.delete(unit.connection, tenant)

            await self._committer.run(last)
            self._sessions.forget_tenant(tenant)
            self._limits.forget(tenant)
            log.info("tenant %s deleted at %s", tenant, now_ms())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("deleting tenant %s failed; it is retried at the next start", tenant)

    async def wait_deleted(self, tenant: str) -> None:
        """Return once ``tenant``'s deletion (if one runs here) has ended."""
        task = self._deletions.get(tenant)
        if task is not None:
            await asyncio.wait([task])
