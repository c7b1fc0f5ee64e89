"""Session integrations' use cases: set up, read and remove a session's Chatwoot mirror or bot,
and hand a chat to a human (pause) and back (resume).

An integration is a subscription row (``webhooks``: kind ``chatwoot`` or ``bot``, its session
the only one in its ``sessions``, its settings in ``config`` with the secrets sealed), with an
id made from tenant, session and kind: a PUT creates or replaces it. A new one gets events
from now on; a replaced one keeps its cursor (nothing is skipped or sent twice).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.clock import now_ms
from zapgate.db.committer import Committer, UnitOfWork
from zapgate.errors import NotFound
from zapgate.integrations import repository
from zapgate.integrations.model import EVENTS, integration_id
from zapgate.limits.service import LimitService
from zapgate.webhooks import repository as subscriptions
from zapgate.webhooks import signing, ssrf
from zapgate.webhooks.model import Kind, Webhook, seal_config
from zapgate.webhooks.service import UnsafeWebhookUrl, Wake, WebhookService, new_row

CALLBACK_PATH = "/api/v1/chatwoot/{tenant}/{session}/webhook"
INBOX = ("base_url", "account_id", "inbox_id")
"""What names a Chatwoot inbox: conversation ids mean nothing in another."""


def _elsewhere(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether a Chatwoot mirror moved to another inbox (its links are then forgotten)."""
    return any(before.get(name) != after.get(name) for name in INBOX)


class IntegrationNotFound(NotFound):
    code = "integration_not_found"


Require = Callable[[str, str], Awaitable[Any]]
"""``require(tenant, session)``: the session, or SessionNotFound."""


class IntegrationService:
    """A tenant's session integrations."""

    def __init__(
        self,
        database: AsyncEngine,
        committer: Committer,
        allowlist: ssrf.Allowlist,
        wake: Wake,
        require: Require,
        public_url: str,
        limits: LimitService,
    ) -> None:
        self._subscriptions = WebhookService(
            database, committer, allowlist, wake, limits, Kind.INTEGRATIONS, IntegrationNotFound
        )
        self._database = database
        self._committer = committer
        self._allowlist = allowlist
        self._wake = wake
        self._require = require
        self._public_url = public_url.rstrip("/")

    async def get(self, tenant: str, session: str, kind: str) -> Webhook:
        """A session's integration of ``kind``, or IntegrationNotFound."""
        await self._require(tenant, session)
        found = await subscriptions.get(
            self._database, tenant, integration_id(tenant, session, kind)
        )
        if found is None or found.kind != kind:
            raise IntegrationNotFound(f"session {session!r} has no {kind} integration")
        return found

    async def put(
        self, tenant: str, session: str, kind: str, fields: dict[str, Any]
    ) -> tuple[Webhook, str | None]:
        """Create or replace a session's integration; the bot's signing secret when new."""
        await self._require(tenant, session)
        url = fields["base_url"] if kind == Kind.CHATWOOT else fields["url"]
        try:
            checked = ssrf.check_url(url, self._allowlist).url
        except ssrf.UnsafeUrl as error:
            raise UnsafeWebhookUrl(str(error)) from None
        sub_id = integration_id(tenant, session, kind)
        config = {k: v for k, v in fields.items() if k not in ("active", "url")}
        if kind == Kind.CHATWOOT:
            checked = config["base_url"] = checked.rstrip("/")
        now = now_ms()
        fresh_secret = signing.new_secret()

        async def job(unit: UnitOfWork) -> tuple[Webhook, str | None]:
            found = await subscriptions.get_in(unit.connection, tenant, sub_id)
            kept = dict(found.config) if found is not None else {}
            if kind == Kind.CHATWOOT:
                config["token"] = kept.get("token") or secrets.token_urlsafe(24)
            values: dict[str, Any] = {
                "kind": kind,
                "url": checked,
                "config": seal_config(tenant, sub_id, config),
                "event_types": EVENTS[kind],
                "sessions": [session],
                "headers": {},
                "active": fields.get("active", True),
            }
            if fields.get("active", True):
                values.update(disabled_reason=None, consecutive_failures=0)
            if found is not None:
                if kind == Kind.CHATWOOT and _elsewhere(found.config, config):
                    await repository.forget(unit, tenant, session, kind)  # ids of another inbox
                updated = await subscriptions.update(unit, tenant, sub_id, values)
                assert updated is not None
                return updated, None
            row = await new_row(unit, tenant, sub_id, now, **values, secret=fresh_secret)
            return await subscriptions.insert(unit, tenant, row), fresh_secret

        stored, secret = await self._committer.run(job)
        self._wake(tenant, sub_id)
        return stored, secret

    async def delete(self, tenant: str, session: str, kind: str) -> None:
        """Remove a session's integration, its deliveries and what it linked."""
        found = await self.get(tenant, session, kind)

        async def job(unit: UnitOfWork) -> None:
            await subscriptions.delete(unit, tenant, found.id)
            await repository.forget(unit, tenant, session, kind)

        await self._committer.run(job)
        self._wake(tenant, found.id)

    async def deliveries(
        self,
        tenant: str,
        session: str,
        kind: str,
        limit: int,
        before: str | None,
        status: str | None = None,
    ) -> list[dict[str, Any]]:
        """The integration's deliveries (one per event it was sent; with ``status``, those in
        it), newest first."""
        found = await self.get(tenant, session, kind)
        return await self._subscriptions.deliveries(tenant, found.id, limit, before, status)

    async def session_deleted(
        self, unit: UnitOfWork, tenant: str, session: str
    ) -> Callable[[], None]:
        """In a session's delete: its integrations go with it (and what they linked)."""
        ids = [integration_id(tenant, session, kind) for kind in Kind.INTEGRATIONS]
        for sub_id in ids:
            await subscriptions.delete(unit, tenant, sub_id)
        for kind in Kind.INTEGRATIONS:
            await repository.forget(unit, tenant, session, kind)

        def then() -> None:
            for sub_id in ids:
                self._wake(tenant, sub_id)

        return then

    def callback_url(self, chatwoot: Webhook) -> str:
        """Where Chatwoot posts the inbox's events, with the integration's token."""
        session = chatwoot.sessions[0]
        path = CALLBACK_PATH.format(tenant=chatwoot.tenant, session=session)
        return f"{self._public_url}{path}?token={chatwoot.config['token']}"

    async def pause(self, tenant: str, session: str, chat: str) -> int:
        """A human takes ``chat`` over: the bot is not asked about it any more; when."""
        await self.get(tenant, session, Kind.BOT)

        async def job(unit: UnitOfWork) -> int:
            return await repository.pause(unit, tenant, session, chat)

        return await self._committer.run(job)

    async def resume(self, tenant: str, session: str, chat: str) -> bool:
        """The bot answers ``chat`` again; False if it was not paused."""
        await self.get(tenant, session, Kind.BOT)

        async def job(unit: UnitOfWork) -> bool:
            return await repository.resume(unit, tenant, session, chat)

        return await self._committer.run(job)

    async def paused(self, tenant: str, session: str) -> list[tuple[str, int]]:
        """The chats a human took over."""
        await self.get(tenant, session, Kind.BOT)
        return await repository.paused_chats(self._database, tenant, session)
