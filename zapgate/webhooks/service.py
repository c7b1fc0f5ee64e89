"""Webhook use cases: subscriptions, secrets, and operator actions on deliveries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.clock import now_ms
from zapgate.db.committer import Committer, Refusal, UnitOfWork
from zapgate.errors import InvalidInput, NotFound, QuotaExceeded
from zapgate.events import repository as event_log
from zapgate.idempotency.service import Claim
from zapgate.ids import new_id
from zapgate.limits.service import LimitService
from zapgate.webhooks import repository, signing, ssrf
from zapgate.webhooks.model import Delivery, DeliveryStatus, Kind, Webhook
from zapgate.webhooks.sender import REQUEST_ID_HEADER

REPLAY_MAX = 10_000
"""Deliveries a replay may queue, and pending deliveries beyond which it is refused."""
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-type",
        "content-length",
        "user-agent",
        "connection",
        "transfer-encoding",
        REQUEST_ID_HEADER,
    }
)


class WebhookNotFound(NotFound):
    code = "webhook_not_found"


class DeliveryNotFound(NotFound):
    code = "delivery_not_found"


class UnsafeWebhookUrl(InvalidInput):
    code = "unsafe_url"


Wake = Callable[[str, str], None]
"""``wake(tenant, webhook_id)``: tell the dispatcher that this subscription changed."""


class WebhookService:
    """Subscriptions of a tenant and what an operator can do with their deliveries.

    Every change is committed first, then announced with ``wake(tenant, webhook_id)`` so the
    dispatcher (re)reads that one subscription: starts, refreshes or stops its worker.
    """

    def __init__(
        self,
        database: AsyncEngine,
        committer: Committer,
        allowlist: ssrf.Allowlist,
        wake: Wake,
        limits: LimitService,
        kinds: tuple[str, ...] = (Kind.WEBHOOK,),
        not_found: type[NotFound] = WebhookNotFound,
    ) -> None:
        self.kinds = kinds
        self._not_found = not_found
        self._noun = not_found.code.removesuffix("_not_found")
        self._limits = limits
        self._database = database
        self._committer = committer
        self._allowlist = allowlist
        self._wake = wake

    def check_url(self, url: str) -> str:
        """The normalised URL, or UnsafeWebhookUrl saying why not."""
        try:
            return ssrf.check_url(url, self._allowlist).url
        except ssrf.UnsafeUrl as error:
            raise UnsafeWebhookUrl(str(error)) from None

    async def create(
        self,
        tenant: str,
        fields: dict[str, Any],
        claim: Claim | None = None,
    ) -> tuple[Webhook, str]:
        """A new subscription that gets events from now on; returns it and its secret."""
        url = self.check_url(fields["url"])
        _check_headers(fields.get("headers") or {})
        secret = signing.new_secret()
        now = now_ms()
        limits = await self._limits.of(tenant)

        async def job(unit: UnitOfWork) -> tuple[Webhook, str] | Refusal:
            if claim is not None:
                await claim.guard(unit)
            used = await repository.count(unit.connection, tenant)
            if refusal := self._limits.no_room(limits, "webhooks", used):
                return refusal
            row = await new_row(
                unit,
                tenant,
                new_id("wh"),
                now,
                url=url,
                event_types=fields.get("events") or [],
                sessions=fields.get("sessions") or [],
                headers=fields.get("headers") or {},
                active=fields.get("active", True),
                secret=secret,
            )
            created = (await repository.insert(unit, tenant, row), secret)
            if claim is not None:
                claim.record(unit, created)
            return created

        created = await self._committer.run(job)
        self._wake(tenant, created[0].id)
        return created

    async def get(self, tenant: str, webhook_id: str) -> Webhook:
        """One subscription, or WebhookNotFound."""
        found = await repository.get(self._database, tenant, webhook_id)
        if found is None or found.kind not in self.kinds:
            raise self._not_found(f"no {self._noun} {webhook_id!r}")
        return found

    async def list_webhooks(self, tenant: str) -> list[Webhook]:
        """The tenant's subscriptions (of this service's kinds)."""
        return await repository.list_for(self._database, tenant, self.kinds)

    async def update(self, tenant: str, webhook_id: str, changes: dict[str, Any]) -> Webhook:
        """Change a subscription; turning it back on clears its failure count."""
        await self.get(tenant, webhook_id)
        values: dict[str, Any] = {}
        if "url" in changes:
            values["url"] = self.check_url(changes["url"])
        if "headers" in changes:
            _check_headers(changes["headers"])
            values["headers"] = changes["headers"]
        return await self._write(tenant, webhook_id, {**values, **filters_changed(changes)})

    async def delete(self, tenant: str, webhook_id: str) -> None:
        """Remove a subscription and its deliveries."""
        await self.get(tenant, webhook_id)

        async def job(unit: UnitOfWork) -> None:
            await repository.delete(unit, tenant, webhook_id)

        await self._committer.run(job)
        self._wake(tenant, webhook_id)

    async def rotate_secret(
        self, tenant: str, webhook_id: str, grace_seconds: float
    ) -> tuple[Webhook, str]:
        """A new secret; the old one keeps signing (alongside) for ``grace_seconds``."""
        current = await self.get(tenant, webhook_id)
        secret = signing.new_secret()
        values = {
            "secret": secret,
            "previous_secret": current.secret,
            "previous_secret_until": now_ms() + int(grace_seconds * 1000),
        }
        return await self._write(tenant, webhook_id, values), secret

    async def deliveries(
        self, tenant: str, webhook_id: str, limit: int, before: str | None, status: str | None
    ) -> list[dict[str, Any]]:
        """Deliveries, newest first, each with its attempts."""
        await self.get(tenant, webhook_id)
        found = await repository.list_deliveries(
            self._database, tenant, webhook_id, limit, before, status
        )
        attempts = await repository.attempts_of(self._database, tenant, [d.id for d in found])
        owner = f"{self._noun}_id"
        return [delivery.public(attempts[delivery.id], owner) for delivery in found]

    async def retry(self, tenant: str, webhook_id: str, delivery_id: str) -> Delivery:
        """Send a delivery again now (whatever its status)."""
        await self.get(tenant, webhook_id)
        found = await repository.get_delivery(self._database, tenant, webhook_id, delivery_id)
        if found is None:
            raise DeliveryNotFound(f"no delivery {delivery_id!r}")
        values = {"status": DeliveryStatus.PENDING, "next_attempt_at": now_ms(), "attempts": 0}

        async def job(unit: UnitOfWork) -> None:
            repository.update_delivery(unit, tenant, delivery_id, values)

        await self._committer.run(job)
        self._wake(tenant, webhook_id)
        refreshed = await repository.get_delivery(self._database, tenant, webhook_id, delivery_id)
        assert refreshed is not None
        return refreshed

    async def replay(
        self, tenant: str, webhook_id: str, since_ms: int, after_seq: int | None = None
    ) -> int:
        """Deliver again every matching event since ``since_ms`` (or, given, after the event
        ``after_seq``): new deliveries, in order, as long as the subscription has fewer than
        ``REPLAY_MAX`` pending, so replays cannot pile up faster than the receiver takes them."""
        webhook = await self.get(tenant, webhook_id)
        pending = await repository.count_pending(self._database, tenant, webhook_id, REPLAY_MAX)
        if pending >= REPLAY_MAX:
            raise QuotaExceeded(
                f"{REPLAY_MAX} or more deliveries of this webhook are pending: replay again once "
                "they are delivered"
            )
        room = REPLAY_MAX - pending
        if after_seq is not None:
            found = await event_log.between_seqs(
                self._database, tenant, after_seq, webhook.cursor_seq, room
            )
        else:
            found = await event_log.created_since(
                self._database, tenant, since_ms, webhook.cursor_seq, room
            )
        wanted = [event for event in found if webhook.wants(event.type, event.session)]

        async def job(unit: UnitOfWork) -> None:
            repository.add_deliveries(unit, tenant, webhook_id, wanted, webhook.kind)

        if wanted:
            await self._committer.run(job)
            self._wake(tenant, webhook_id)
        return len(wanted)

    async def _write(self, tenant: str, webhook_id: str, values: dict[str, Any]) -> Webhook:
        async def job(unit: UnitOfWork) -> Webhook | None:
            return await repository.update(unit, tenant, webhook_id, values)

        updated = await self._committer.run(job)
        if updated is None:
            raise self._not_found(f"no {self._noun} {webhook_id!r}")
        self._wake(tenant, webhook_id)
        return updated


async def new_row(
    unit: UnitOfWork, tenant: str, subscription_id: str, now: int, **values: Any
) -> dict[str, Any]:
    """A new subscription's row: ``values``, no failures yet, its cursor at the tenant's
    newest event (it gets events from now on)."""
    return {
        "id": subscription_id,
        "headers": {},
        "previous_secret": None,
        "previous_secret_until": None,
        "cursor_seq": await event_log.last_seq_in(unit.connection, tenant),
        "consecutive_failures": 0,
        "disabled_reason": None,
        "created_at": now,
        "updated_at": now,
        **values,
    }


def filters_changed(changes: dict[str, Any]) -> dict[str, Any]:
    """The columns a change of ``events``, ``sessions`` or ``active`` sets (turning a
    subscription back on clears its failure count)."""
    values: dict[str, Any] = {}
    for field, column in (("events", "event_types"), ("sessions", "sessions")):
        if field in changes:
            values[column] = changes[field]
    if "active" in changes:
        values["active"] = changes["active"]
        if changes["active"]:
            values.update(disabled_reason=None, consecutive_failures=0)
    return values


def _check_headers(headers: dict[str, str]) -> None:
    for name in headers:
        lowered = name.lower()
        if lowered in RESERVED_HEADERS or lowered.startswith("webhook-"):
            raise InvalidInput(f"header {name!r} is set by zapgate and cannot be overridden")
