"""The application factory: FastAPI and Socket.IO on one ASGI app; the lifespan wires the parts."""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from zapgate import __version__
from zapgate.audit.api import router as audit_router
from zapgate.auth.api import router as keys_router
from zapgate.callbacks.api import router as cloudapi_router
from zapgate.callbacks.sms_api import router as sms_router
from zapgate.callbacks.telegram_api import router as telegram_router
from zapgate.chats.api import router as chats_router
from zapgate.cluster.api import router as nodes_router
from zapgate.compat.api import router as compat_router
from zapgate.config import Settings
from zapgate.dashboard.api import router as dashboard_router
from zapgate.db.migrate import boot_lock, migrate
from zapgate.db.secrets import secret as server_secret
from zapgate.directory.api import router as directory_router
from zapgate.events.api import router as events_router
from zapgate.http import errors, openapi
from zapgate.http.access import Observed
from zapgate.http.admission import AdmissionMiddleware
from zapgate.http.audit import AuditMiddleware, AuditTrail
from zapgate.http.boundary import BoundaryMiddleware
from zapgate.http.fastlane import SendFastLane
from zapgate.http.health import router as health_router
from zapgate.http.limits import BodyLimitMiddleware
from zapgate.http.loopback import LoopbackGuard
from zapgate.http.ratelimit import RateLimitHeaders
from zapgate.http.readlane import ReadFastLane
from zapgate.http.responses import Json
from zapgate.http.templates import PathTemplates
from zapgate.integrations.api import router as integrations_router
from zapgate.media.api import router as media_router
from zapgate.messages.actions_api import router as message_actions_router
from zapgate.messages.api import router as messages_router
from zapgate.messages.reading import components as send_schemas
from zapgate.metrics.api import router as metrics_router
from zapgate.overview.api import router as overview_router
from zapgate.services import DEFAULT_TENANT, Services, build_services
from zapgate.sessions import sealing
from zapgate.sessions.api import router as sessions_router
from zapgate.sinks.api import router as sinks_router
from zapgate.tenants.api import router as tenants_router
from zapgate.webhooks.api import router as webhooks_router

log = logging.getLogger(__name__)


Announce = Callable[[Services], None]


def create_app(settings: Settings, announce: Announce | None = None) -> ASGIApp:
    """The ASGI app: Socket.IO at ``/socket.io``, everything else FastAPI.

    ``announce`` is called once the service is up (the CLI prints the URLs and a generated key).
    """
    return create_asgi(build_services(settings), announce)


def create_asgi(
    services: Services, announce: Announce | None = None, fast_lane: bool = True
) -> ASGIApp:
    """The ASGI app over already built ``services`` (``fast_lane=False``: every request goes
    through the framework, which tests use to show the fast lane answers the same)."""
    settings = services.settings
    api = create_api(services, announce)
    routes: ASGIApp = ReadFastLane(SendFastLane(api, services), services) if fast_lane else api
    checked = BoundaryMiddleware(RateLimitHeaders(routes))
    admitted: ASGIApp = AdmissionMiddleware(checked, services.gate)
    if settings.cors_origins:  # outside admission, so refusals carry the CORS headers too
        admitted = CORSMiddleware(
            admitted,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["Retry-After", "RateLimit", "RateLimit-Policy"],
        )
    limited = BodyLimitMiddleware(
        admitted, settings.max_body_bytes, {SEND_PATH: send_body_limit(settings)}
    )
    trail = AuditTrail(services.audit, lambda: api.openapi()["paths"])
    audited: ASGIApp = AuditMiddleware(limited, trail)  # sees every HTTP answer
    templates = PathTemplates(lambda: api.openapi()["paths"])
    if services.tracing is not None:  # a span per answer; off: not even imported
        from zapgate.http.traced import Traced

        audited = Traced(audited, services.tracing, templates)
    # every HTTP answer: X-Request-Id, metrics, access log
    audited = Observed(audited, templates, services.metrics, settings.access_log)
    asgi = services.realtime.asgi(audited)
    if settings.auth == "off":
        asgi = LoopbackGuard(asgi, settings.cors_origins)
    return asgi


SEND_PATH = re.compile(r"^/api/v1/sessions/[^/]+/messages$")


def send_body_limit(settings: Settings) -> int:
    """A send may carry a file: as base64 in JSON (4/3 of its size), or as a form part."""
    return max(settings.max_body_bytes, settings.media_max_bytes * 4 // 3 + 65_536)


def create_api(services: Services, announce: Announce | None = None) -> FastAPI:
    """The FastAPI part, with ``app.state.services``."""
    api = FastAPI(
        title="zapgate",
        version=__version__,
        description="Self-hosted WhatsApp gateway. Send `Authorization: Bearer <key>`.",
        default_response_class=Json,
        generate_unique_id_function=openapi.operation_id,
        lifespan=_lifespan,
    )
    api.state.services = services
    api.state.announce = announce
    errors.install(api)
    openapi.install(api, send_schemas())
    routers = (
        health_router,
        sessions_router,
        messages_router,
        message_actions_router,
        chats_router,
        directory_router,
        media_router,
        events_router,
        webhooks_router,
        sinks_router,
        integrations_router,
        keys_router,
        audit_router,
        tenants_router,
        nodes_router,
        compat_router,
        cloudapi_router,
        sms_router,
        telegram_router,
        metrics_router,
        overview_router,
        dashboard_router,
    )
    for router in routers:
        api.include_router(router)
    return api


@asynccontextmanager
async def _lifespan(api: FastAPI) -> AsyncIterator[None]:
    services: Services = api.state.services
    await start(services)
    if api.state.announce is not None:
        api.state.announce(services)
    try:
        yield
    finally:
        await stop(services)


async def start(services: Services) -> None:
    """Migrate, start the writer, make sure an admin key and the default session exist, boot."""
    settings = services.settings
    if settings.auth == "off":
        log.warning("AUTH IS OFF: every request is accepted without a key (loopback only)")
    async with boot_lock(services.database):  # nodes starting together: one at a time
        await migrate(services.database)
        # the database's key opens what it sealed; ZAPGATE_SECRETS_KEY, when set, seals from now
        sealing.install(await server_secret(services.database, "session-secrets"))
        if settings.secrets_key:
            sealing.install(settings.secrets_key.encode())
        if services.tail is not None:  # cluster mode: other nodes' events, from the newest on
            await services.tail.start()
        services.committer.start()
        services.checkpointer.start()
        await services.tokens.start()
        await services.sessions.ensure_default(
            DEFAULT_TENANT, settings.default_session, settings.default_engine
        )
        services.generated_key = await services.auth.bootstrap(DEFAULT_TENANT, settings.api_key)
    await services.nodes.start()
    if services.media is not None:
        await services.media.start()
    await services.auth.start()
    await services.tenants.start()
    await services.realtime.start()
    if services.dispatch_role is None:  # cluster mode: the node holding the role dispatches
        await services.dispatcher.start()
    services.retention.start()
    services.fallbacks.start()
    await services.sessions.boot()
    if services.control is not None:  # cluster mode: other nodes' calls on sessions run here
        await services.control.start(services.sessions.serve_call)
    if services.leases is not None:  # cluster mode: this node's share of the sessions
        await services.leases.start()
    if services.dispatch_role is not None:
        await services.dispatch_role.start()
    settle_garbage_collector()


def settle_garbage_collector() -> None:
    """Move everything built at start-up out of the collector's sight (``gc.freeze``).

    A full collection walks every tracked object; most of them (modules, routes, schemas, SQL
    statements) live as long as the process. Frozen, they are never walked again, so a full
    collection under load pauses the event loop for a fraction of the time (measured: 125 ms
    before, with every tenant waiting).
    """
    gc.collect()
    gc.freeze()


async def stop(services: Services) -> None:
    """Stop engines, fan-out and the writer, then close the database."""
    await services.tenants.stop()
    if services.leases is not None:  # handed over at once, not after the lease TTL
        await services.leases.stop()
    await services.sessions.shutdown()
    if services.control is not None:
        await services.control.stop()
    await services.auth.stop()
    await services.nodes.stop()
    await services.retention.stop()
    await services.fallbacks.stop()
    if services.dispatch_role is not None:  # handed over at once, like the sessions
        await services.dispatch_role.stop()
    else:
        await services.dispatcher.stop()
    await services.realtime.stop()
    if services.tail is not None:
        await services.tail.stop()
    if services.signals is not None:
        services.committer.announce = None  # what the writer still commits: others poll it
        await services.signals.stop()
    if services.media is not None:
        await services.media.stop()
    if services.cloudapi is not None:
        await services.cloudapi.close()
    if services.telegram is not None:
        await services.telegram.close()
    await services.idempotency.drain()  # claims being let go (cluster mode), before the writer
    await services.limits.stop()
    await services.committer.stop()
    await services.checkpointer.stop()
    await services.tokens.stop()
    await services.database.dispose()
    if services.tracing is not None:  # the last spans are sent
        await services.tracing.shutdown()
