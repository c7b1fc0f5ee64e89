"""Sink use cases: a sink is a subscription (``webhooks`` row) of a broker kind.

Its broker URL (with credentials) and names are its ``config``, the URL sealed at rest and never
returned; the row's ``url`` is the URL without credentials, shown by the API. Deliveries,
retries, replays and deletion are the webhooks' (one dispatcher serves both).
"""

from __future__ import annotations

from typing import Any

from zapgate.clock import now_ms
from zapgate.db.committer import Committer, Refusal, UnitOfWork
from zapgate.errors import InvalidInput, NotFound
from zapgate.idempotency.service import Claim
from zapgate.ids import new_id
from zapgate.limits.service import LimitService
from zapgate.sinks import targets
from zapgate.webhooks import repository, signing, ssrf
from zapgate.webhooks.model import Kind, Webhook, seal_config
from zapgate.webhooks.service import (
    UnsafeWebhookUrl,
    Wake,
    WebhookService,
    filters_changed,
    new_row,
)

NAMES = {
    Kind.RABBITMQ: ("exchange", "routing_key", "mandatory"),
    Kind.NATS: ("subject", "stream"),
    Kind.REDIS: ("stream", "maxlen"),
}
"""The settings of each sink type besides its URL."""


class SinkNotFound(NotFound):
    code = "sink_not_found"


class InvalidSink(InvalidInput):
    code = "invalid_sink"


class SinkService(WebhookService):
    """Sinks of a tenant; what an operator can do with their deliveries is the webhooks'."""

    def __init__(
        self,
        database: Any,
        committer: Committer,
        allowlist: ssrf.Allowlist,
        wake: Wake,
        limits: LimitService,
    ) -> None:
        super().__init__(database, committer, allowlist, wake, limits, Kind.SINKS, SinkNotFound)

    async def create(
        self, tenant: str, fields: dict[str, Any], claim: Claim | None = None
    ) -> tuple[Webhook, str]:
        """A new sink that gets events from now on (the second value is unused: no secret)."""
        kind = fields["type"]
        config = {"url": fields["url"], **{name: fields[name] for name in NAMES[kind]}}
        public_url = self._checked(kind, config)
        sink_id = new_id("snk")
        now = now_ms()
        limits = await self._limits.of(tenant)

        async def job(unit: UnitOfWork) -> Webhook | Refusal:
            if claim is not None:
                await claim.guard(unit)
            used = await repository.count(unit.connection, tenant, Kind.SINKS)
            if refusal := self._limits.no_room(limits, "sinks", used):
                return refusal
            row = await new_row(
                unit,
                tenant,
                sink_id,
                now,
                kind=kind,
                url=public_url,
                config=seal_config(tenant, sink_id, config),
                event_types=fields.get("events") or [],
                sessions=fields.get("sessions") or [],
                active=fields.get("active", True),
                secret=signing.new_secret(),  # unused: a broker is not sent signatures
            )
            created = await repository.insert(unit, tenant, row)
            if claim is not None:
                claim.record(unit, (created, ""))
            return created

        created = await self._committer.run(job)
        self._wake(tenant, created.id)
        return created, ""

    async def update(self, tenant: str, webhook_id: str, changes: dict[str, Any]) -> Webhook:
        """Change a sink; turning it back on clears its failure count."""
        sink = await self.get(tenant, webhook_id)
        names = ("url", *NAMES[sink.kind])
        every = {name for kind_names in NAMES.values() for name in kind_names}
        foreign = sorted(set(changes) & every - set(names))
        if foreign:
            raise InvalidSink(f"a {sink.kind} sink has no {', '.join(foreign)}")
        values: dict[str, Any] = {}
        if any(name in changes for name in names):
            config = {**sink.config, **{k: v for k, v in changes.items() if k in names}}
            values["url"] = self._checked(sink.kind, config)
            values["config"] = seal_config(tenant, sink.id, config)
        return await self._write(tenant, webhook_id, {**values, **filters_changed(changes)})

    def _checked(self, kind: str, config: dict[str, Any]) -> str:
        """The URL without credentials, once the URL and the names pass."""
        try:
            url = targets.check_url(kind, config["url"], self._allowlist)
            for name in ("routing_key", "subject", "stream"):
                if name in config and not (kind == Kind.NATS and name == "stream"):
                    targets.check_template(config[name], name)
            if kind == Kind.NATS:
                targets.nats_subjects(config["subject"])
                targets.check_stream_name(config["stream"])
        except ssrf.UnsafeUrl as error:
            raise UnsafeWebhookUrl(str(error)) from None
        except targets.BadTarget as error:
            raise InvalidSink(str(error)) from None
        return url.public


__all__ = ["InvalidSink", "SinkNotFound", "SinkService", "UnsafeWebhookUrl"]
