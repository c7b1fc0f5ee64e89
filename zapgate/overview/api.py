"""``GET /api/v1/whoami`` (the caller's key: tenant, scopes, sessions, where the log stands) and
``GET /api/v1/overview`` (its sessions' outboxes and the backlogs of its webhooks, sinks and
session integrations, read at once)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from zapgate.clock import now_ms, to_iso
from zapgate.events import repository as event_store
from zapgate.http.auth import Watcher
from zapgate.http.deps import services_of
from zapgate.http.errors import responses
from zapgate.http.responses import Json
from zapgate.sessions import repository as session_store
from zapgate.webhooks import repository as webhook_store
from zapgate.webhooks.model import Kind

router = APIRouter(prefix="/api/v1", tags=["overview"])


class WhoAmI(BaseModel):
    """The key (or token) that made the request."""

    tenant: str
    key_id: str = Field(description="key_... or jwt:<sub>")
    scopes: list[str] = Field(description="every scope it has, with what they grant")
    sessions: list[str] | None = Field(description="the sessions it is limited to; null: all")
    expires_at: str | None
    latest_seq: int = Field(
        description="the tenant's newest event: read events after it to see only what happens next"
    )


class SessionFigures(BaseModel):
    name: str
    status: str
    queued: int = Field(description="messages waiting in its outbox")
    oldest_queued_seconds: float | None = Field(description="age of the oldest; null: none")


class WebhookFigures(BaseModel):
    id: str
    url: str
    active: bool
    disabled_reason: str | None
    pending: int
    failed: int
    lag_seconds: float | None = Field(description="age of the oldest pending delivery")


class IntegrationFigures(WebhookFigures):
    """A sink (``/api/v1/sinks``) or a session integration (Chatwoot, a bot)."""

    kind: str = Field(description="rabbitmq, nats, redis, chatwoot or bot")
    session: str | None = Field(description="the integration's session; null: a sink")
    url: str = Field(description="the broker (without credentials), Chatwoot's or the bot's URL")


class Overview(BaseModel):
    """The tenant at a glance (a session-limited key: its sessions, and no webhooks, sinks or
    integrations)."""

    sessions: list[SessionFigures]
    webhooks: list[WebhookFigures] | None
    integrations: list[IntegrationFigures] | None = Field(
        description="the event sinks and session integrations, with their backlogs"
    )
    socketio_clients: int = Field(description="the tenant's Socket.IO clients on this node")
    latest_seq: int


@router.get("/whoami", response_model=WhoAmI, responses=responses(), summary="The caller's key")
async def whoami(request: Request, caller: Watcher) -> Json:
    latest = await event_store.newest_seq(services_of(request).database, caller.tenant)
    return Json(
        {
            "tenant": caller.tenant,
            "key_id": caller.key_id,
            "scopes": sorted(caller.scopes),
            "sessions": sorted(caller.sessions) if caller.sessions is not None else None,
            "expires_at": to_iso(caller.expires_at) if caller.expires_at is not None else None,
            "latest_seq": latest,
        }
    )


@router.get(
    "/overview",
    response_model=Overview,
    responses=responses(),
    summary="Outboxes, webhook backlogs and clients of the tenant, now",
)
async def overview(request: Request, caller: Watcher) -> Json:
    services = services_of(request)
    database = services.database
    now = now_ms()

    def age(since: int | None) -> float | None:
        return max(0.0, (now - since) / 1000) if since is not None else None

    outboxes = await session_store.outboxes(database, caller.tenant)
    sessions: list[dict[str, Any]] = [
        {"name": name, "status": status, "queued": depth, "oldest_queued_seconds": age(oldest)}
        for name, (status, depth, oldest) in sorted(outboxes.items())
        if caller.sessions is None or name in caller.sessions
    ]
    webhooks: list[dict[str, Any]] | None = None
    integrations: list[dict[str, Any]] | None = None
    if caller.sessions is None:  # subscriptions are the whole tenant's
        webhooks, integrations = [], []
        every_kind = (Kind.WEBHOOK, *Kind.SINKS, *Kind.INTEGRATIONS)
        for hook, pending, failed, oldest in await webhook_store.summary(
            database, caller.tenant, every_kind
        ):
            shown = {
                "id": hook.id,
                "url": hook.url,
                "active": hook.active,
                "disabled_reason": hook.disabled_reason,
                "pending": pending,
                "failed": failed,
                "lag_seconds": age(oldest),
            }
            if hook.kind == Kind.WEBHOOK:
                webhooks.append(shown)
            else:
                integrations.append(
                    {**shown, "kind": hook.kind, "session": hook.integration_session}
                )
    clients = sum(1 for p in services.realtime.principals() if p.tenant == caller.tenant)
    return Json(
        {
            "sessions": sessions,
            "webhooks": webhooks,
            "integrations": integrations,
            "socketio_clients": clients,
            "latest_seq": await event_store.newest_seq(database, caller.tenant),
        }
    )
