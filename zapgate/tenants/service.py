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
from zapgate.db.committer import Committer, Refusal, UnitOfWork
from zapgate.errors import Conflict, TenantExists, TenantNotFound
from zapgate.limits.service import LimitService
from zapgate.media.service import MediaService
from zapgate.sessions.service import SessionManager
from zapgate.tenants import repository
from zapgate.tenants.model import Tenant, TenantStatus
from zapgate.webhooks.service import WebhookService

log = logging.getLogger(__name__)

DELETE_CHUNK = 1000
"""Rows deleted per write: a deletion shares the writer with every other tenant."""
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0


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
        media: MediaService | None = None,
    ) -> None:
        self._media = media
        self._database = database
        self._committer = committer
        self._auth = auth
        self._sessions = sessions
        self._webhooks = webhooks
        self._limits = limits
        self._protected = protected
        self._deletions: dict[str, asyncio.Task[bool]] = {}

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
        return await self._change(tenant, TenantStatus.ACTIVE, Reason.RESUMED)

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
        await self._sessions.reconcile_tenant(tenant)  # stopped, or started again, before answering
        return changed

    def _delete_later(self, tenant: str) -> None:
        if tenant in self._deletions:
            return
        task = asyncio.create_task(self._delete_all(tenant), name=f"zapgate-delete-{tenant}")
        self._deletions[tenant] = task
        task.add_done_callback(lambda _task: self._deletions.pop(tenant, None))

    async def _delete_all(self, tenant: str) -> bool:
        """Delete ``tenant`` with its data; True once it is gone (here or by another node).
        A failure is retried with backoff; a stop leaves it to the next start."""
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                gone = await self._delete_rows(tenant)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("deleting tenant %s failed; retrying in %s s", tenant, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            if gone:
                log.info("tenant %s deleted", tenant)
            return gone

    async def _delete_rows(self, tenant: str) -> bool:
        async with self._database.connect() as connection:
            found = await repository.get(connection, tenant)
        if found is None or found.status is not TenantStatus.DELETING:
            return found is None  # done elsewhere (and maybe made again since: not this one)
        created_at = found.created_at
        await self._sessions.reconcile_tenant(tenant)  # stopped, and its engines' files gone
        for webhook in await self._webhooks.list_webhooks(tenant):
            await self._webhooks.update(tenant, webhook.id, {"active": False})  # lanes stop
        for table in repository.tenant_owned():
            while True:

                async def chunk(unit: UnitOfWork, table: Any = table) -> int | None:
                    if not await repository.is_deleting(unit.connection, tenant, created_at):
                        return None
                    return await repository.delete_some(
                        unit.connection, table, tenant, DELETE_CHUNK
                    )

                deleted = await self._committer.run(chunk, background=tenant)
                if deleted is None:
                    return False  # no longer the tenant this deletion began with
                if deleted < DELETE_CHUNK:
                    break

        async def last(unit: UnitOfWork) -> bool:
            if not await repository.is_deleting(unit.connection, tenant, created_at):
                return False
            for table in repository.tenant_owned():  # the few rows written meanwhile
                await repository.delete_some(unit.connection, table, tenant, None)
            await repository.delete(unit.connection, tenant)
            return True

        if not await self._committer.run(last):
            return False
        self._sessions.forget_tenant(tenant)
        if self._media is not None:  # its records went with its rows; now the files
            await self._media.forget_tenant(tenant)
        return True

    async def wait_deleted(self, tenant: str) -> bool:
        """Wait for ``tenant``'s deletion running here, if any; whether the tenant is gone."""
        task = self._deletions.get(tenant)
        if task is not None:
            await asyncio.wait([task])
        async with self._database.connect() as connection:
            return not await repository.exists(connection, tenant)
