"""The parts of a running zapgate, built once by the app factory and wired together."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.audit.service import AuditService
from zapgate.auth import jwks
from zapgate.auth.service import Authenticator
from zapgate.auth.tokens import JwtVerifier
from zapgate.callbacks.cloudapi import CloudApiCallbacks
from zapgate.callbacks.sms import SmsCallbacks
from zapgate.callbacks.telegram import TelegramCallbacks
from zapgate.clock import Clock, SystemClock
from zapgate.cluster.control import ControlChannel
from zapgate.cluster.leases import LeaseKeeper
from zapgate.cluster.registry import NodeRegistry
from zapgate.cluster.roles import RoleKeeper
from zapgate.cluster.signals import WakeSignals
from zapgate.cluster.tail import EventTail
from zapgate.config import SINK_ALLOWLIST_SETTING, Settings
from zapgate.db.checkpoint import Checkpointer
from zapgate.db.committer import Committer
from zapgate.db.database import create_engine
from zapgate.engines import auto as auto_engine
from zapgate.engines.cloudapi import config as cloudapi_config
from zapgate.engines.cloudapi.engine import CloudApiEngine
from zapgate.engines.registry import EngineRegistry, EngineSpec
from zapgate.engines.simulator import SimulatorDefaults, SimulatorEngine
from zapgate.engines.simulator_config import SimulatorConfig
from zapgate.engines.sms import config as sms_config
from zapgate.engines.sms.engine import SmsEngine
from zapgate.engines.telegram import config as telegram_config
from zapgate.engines.telegram.engine import TelegramEngine
from zapgate.engines.wppconnect.engine import WppConnectEngine, WppOptions
from zapgate.engines.wppconnect.engine import forget_tenant as forget_wpp_tenant
from zapgate.engines.wppconnect.runtime import WppRuntime
from zapgate.events.bus import EventBus
from zapgate.fallbacks.watcher import FallbackWatcher
from zapgate.idempotency.service import Idempotency
from zapgate.integrations.bot import BotSender
from zapgate.integrations.chatwoot.callback import ChatwootCallbacks
from zapgate.integrations.chatwoot.mirror import ChatwootMirror
from zapgate.integrations.service import IntegrationService
from zapgate.limits.gate import Gate
from zapgate.limits.model import Limits
from zapgate.limits.service import LimitService
from zapgate.media.local import LocalMediaStore
from zapgate.media.s3 import S3MediaStore
from zapgate.media.service import MediaService
from zapgate.media.store import MediaStore
from zapgate.messages.pacing import PacingPolicy
from zapgate.messages.sender import RetryPolicy
from zapgate.messages.service import MessageService
from zapgate.metrics.registry import Metrics
from zapgate.realtime.server import RealtimeServer
from zapgate.retention import RetentionCleaner, RetentionPolicy
from zapgate.sessions import repository as session_store
from zapgate.sessions.runner import SupervisionPolicy
from zapgate.sessions.service import SessionManager, SessionSettings
from zapgate.sinks.sender import BrokerSender
from zapgate.sinks.service import SinkService
from zapgate.tenants.service import TenantService
from zapgate.tracing import tracing_for
from zapgate.webhooks.client import WebhookClient
from zapgate.webhooks.dispatcher import Concurrency, Dispatcher, RetryPlan
from zapgate.webhooks.http11 import Http11Client
from zapgate.webhooks.model import Kind
from zapgate.webhooks.service import WebhookService
from zapgate.webhooks.ssrf import Allowlist

if TYPE_CHECKING:
    from zapgate.tracing.otel import Tracing

DEFAULT_TENANT = "default"


@dataclass(slots=True)
class Services:
    settings: Settings
    database: AsyncEngine
    bus: EventBus
    committer: Committer
    auth: Authenticator
    tokens: JwtVerifier
    messages: MessageService
    sessions: SessionManager
    realtime: RealtimeServer
    clock: Clock
    idempotency: Idempotency
    webhooks: WebhookService
    sinks: SinkService
    integrations: IntegrationService
    chatwoot: ChatwootCallbacks
    dispatcher: Dispatcher
    retention: RetentionCleaner
    fallbacks: FallbackWatcher
    checkpointer: Checkpointer
    audit: AuditService
    limits: LimitService
    gate: Gate
    tenants: TenantService
    nodes: NodeRegistry
    leases: LeaseKeeper | None = None
    tail: EventTail | None = None
    control: ControlChannel | None = None
    dispatch_role: RoleKeeper | None = None
    media: MediaService | None = None
    cloudapi: CloudApiCallbacks | None = None
    sms: SmsCallbacks | None = None
    telegram: TelegramCallbacks | None = None
    metrics: Metrics | None = None
    signals: WakeSignals | None = None
    tracing: Tracing | None = None
    """OpenTelemetry traces (``ZAPGATE_OTEL_ENDPOINT``); None: off."""
    generated_key: str | None = None


CLOUDAPI_SEND_WINDOW = 64
"""Sends of a Cloud API session in flight at once: 1,000 a second at 64 ms per call."""
SMS_SEND_WINDOW = 16
"""Sends of an SMS session in flight at once (the provider queues them at the sender's rate)."""


def build_engines(
    settings: Settings, clock: Clock, bridge_restarted: Callable[[str, str], None] | None = None
) -> EngineRegistry:
    """The engines this process can run (``bridge_restarted``: told of bridge restarts)."""
    defaults = SimulatorDefaults(
        pairing_seconds=settings.simulator_pairing_seconds,
        ack_seconds=settings.simulator_ack_seconds,
        echo_contact=settings.simulator_echo_contact,
    )
    simulator = EngineSpec(
        factory=lambda: SimulatorEngine(defaults, clock),
        capabilities=SimulatorEngine.capabilities,
        config_model=SimulatorConfig,
        narrowed=SimulatorEngine.narrowed,
    )
    runtime = WppRuntime(settings.wppconnect_node, settings.wppconnect_chromium)
    options = WppOptions(
        runtime=runtime,
        data_dir=settings.data_dir.resolve(),
        fake_page=settings.wppconnect_fake_page.resolve()
        if settings.wppconnect_fake_page
        else None,
        headless=settings.wppconnect_headless,
        start_timeout_seconds=settings.wppconnect_start_timeout_seconds,
        max_media_bytes=settings.media_max_bytes,
        bridge_restarted=bridge_restarted,
    )
    wppconnect = EngineSpec(
        factory=lambda: WppConnectEngine(options, clock),
        capabilities=WppConnectEngine.capabilities,
        unavailable=runtime.missing,
        forget_tenant=lambda tenant: forget_wpp_tenant(options.data_dir, tenant),
    )
    auto = EngineSpec(
        factory=lambda: auto_engine.choose(runtime.missing, wppconnect.factory, simulator.factory),
        capabilities=simulator.capabilities | wppconnect.capabilities,
    )
    # base_url is the tenant's: the webhooks' SSRF guard, and their allowlist (a local fake)
    graph_allowlist = Allowlist.parse(settings.webhook_allowlist)
    cloudapi = EngineSpec(
        factory=lambda: CloudApiEngine(graph_allowlist, clock, settings.media_max_bytes),
        capabilities=CloudApiEngine.capabilities,
        config_model=cloudapi_config.checked_model(graph_allowlist),
        secret_keys=cloudapi_config.SECRET_KEYS,
        secrets_go_to=frozenset({"base_url"}),
        paces_itself=True,
        send_window=CLOUDAPI_SEND_WINDOW,
    )
    sms = EngineSpec(  # api_base is the tenant's, like base_url
        factory=lambda: SmsEngine(graph_allowlist),
        capabilities=SmsEngine.capabilities,
        config_model=sms_config.checked_model(graph_allowlist),
        secret_keys=sms_config.SECRET_KEYS,
        secrets_go_to=frozenset({"api_base"}),
        paces_itself=True,
        send_window=SMS_SEND_WINDOW,
        channel="sms",
    )
    telegram = EngineSpec(  # api_base is the tenant's, like base_url
        factory=lambda: TelegramEngine(
            graph_allowlist, clock, settings.media_max_bytes, settings.public_url
        ),
        capabilities=TelegramEngine.capabilities,
        config_model=telegram_config.checked_model(graph_allowlist, settings.public_url),
        secret_keys=telegram_config.SECRET_KEYS,
        secrets_go_to=telegram_config.SECRETS_GO_TO,
        channel="telegram",
    )
    return EngineRegistry(
        {
            "simulator": simulator,
            "wppconnect": wppconnect,
            "auto": auto,
            "cloudapi": cloudapi,
            "sms": sms,
            "telegram": telegram,
        }
    )


def session_settings(settings: Settings) -> SessionSettings:
    """Supervision and retry policies from settings."""
    return SessionSettings(
        retry=RetryPolicy(settings.send_retry_limit, settings.send_retry_base_seconds),
        policy=SupervisionPolicy(
            restart_limit=settings.session_restart_limit,
            restart_base_seconds=settings.session_restart_base_seconds,
            restart_cap_seconds=settings.session_restart_cap_seconds,
            stale_seconds=settings.session_stale_seconds,
        ),
        health_interval_seconds=settings.session_health_interval_seconds,
        node=settings.node_name,
        pacing=PacingPolicy(
            rate_per_second=settings.send_rate_per_second,
            burst=settings.send_burst,
            per_recipient_seconds=settings.send_recipient_spacing_seconds,
            jitter_seconds=settings.send_jitter_seconds,
        ),
    )


def build_services(
    settings: Settings,
    database: AsyncEngine | None = None,
    clock: Clock | None = None,
    webhook_concurrency: Concurrency | None = None,
) -> Services:
    """Construct every part (nothing runs yet); the optional arguments override defaults."""
    database = database or create_engine(settings)
    clock = clock or SystemClock()
    bus = EventBus(ordered=settings.clustered)  # several nodes write the log: see tail
    committer = Committer(
        database, bus, session_store.all_tenants_missing_sessions, settings.commit_batch_max
    )
    tokens = JwtVerifier(
        settings.jwt_secret,
        jwks.from_settings(settings, clock),
        settings.jwt_audience,
        settings.jwt_issuer,
        settings.jwt_tenant_claim,
        settings.jwt_leeway_seconds,
    )
    auth = Authenticator(
        database, committer, settings.auth == "on", settings.auth_cache_seconds, tokens
    )
    limits = LimitService(
        database,
        committer,
        Limits.from_settings(settings),
        settings.auth_failures_per_minute,
        settings.limits_cache_seconds,
        redis_url=settings.redis_url,
    )
    messages = MessageService(database, committer, limits)
    allowlist = Allowlist.parse(settings.webhook_allowlist)
    media = MediaService(
        database,
        committer,
        build_media_store(settings),
        limits,
        # media URLs pass the webhooks' SSRF guard, with an allowlist of their own
        Http11Client(Allowlist.parse(settings.media_url_allowlist, "ZAPGATE_MEDIA_URL_ALLOWLIST")),
        settings.media_max_bytes,
        settings.media_url_ttl_seconds,
        settings.media_fetch_timeout_seconds,
        settings.public_url,
    )
    messages.media = media
    metrics = Metrics(settings.metrics_per_session)
    engines = build_engines(settings, clock, metrics.bridge_restarted)
    sessions = SessionManager(
        database, committer, messages, engines, clock, session_settings(settings), limits
    )
    gate = Gate(auth, limits)
    audit = AuditService(
        database, committer, DEFAULT_TENANT, settings.audit_auth_failures_per_minute
    )
    realtime = RealtimeServer(gate, bus, database, settings.cors_origins, audit)
    # a revoked key's (or suspended tenant's) sockets close, and its streams and long-polls end,
    # at once; a suspended tenant's sessions stop (on every node: see auth.invalidations)
    auth.on_invalidated(realtime.invalidated)
    auth.on_invalidated(lambda invalidation: bus.interrupt(invalidation.tenant))
    auth.on_invalidated(sessions.tenant_changed)
    idempotency = Idempotency(
        database, settings.idempotency_ttl_seconds, committer if settings.clustered else None
    )
    sink_allowlist = Allowlist.parse(settings.sink_allowlist, SINK_ALLOWLIST_SETTING)
    brokers = BrokerSender(sink_allowlist, settings.sink_timeout_seconds)
    sink_plan = RetryPlan(settings.sink_retry_schedule, settings.sink_disable_after)
    bots = BotSender(database, committer, allowlist)
    dispatcher = Dispatcher(
        database,
        committer,
        bus,
        WebhookClient(allowlist, settings.webhook_timeout_seconds),
        RetryPlan(settings.webhook_retry_schedule, settings.webhook_disable_after),
        webhook_concurrency,
        senders={
            **dict.fromkeys(Kind.SINKS, brokers),
            Kind.CHATWOOT: ChatwootMirror(
                database, committer, allowlist, settings.webhook_timeout_seconds, media
            ),
            Kind.BOT: bots,
        },
        plans={**dict.fromkeys(Kind.SINKS, sink_plan), Kind.BOT: sink_plan},
    )
    signals = WakeSignals(settings.redis_url) if settings.redis_url and settings.clustered else None

    def webhook_changed(tenant: str, webhook_id: str) -> None:
        dispatcher.wake(tenant, webhook_id)
        if signals is not None:  # cluster mode: the node dispatching may be another one
            signals.publish_webhook(tenant, webhook_id)

    webhooks = WebhookService(database, committer, allowlist, webhook_changed, limits)
    sinks = SinkService(database, committer, sink_allowlist, webhook_changed, limits)
    integrations = IntegrationService(
        database,
        committer,
        allowlist,
        webhook_changed,
        sessions.require,
        settings.public_url or settings.base_url,
        limits,
    )
    sessions.on_delete.append(integrations.session_deleted)
    chatwoot = ChatwootCallbacks(database, committer, limits)
    nodes = NodeRegistry(
        database,
        committer,
        settings.node_name,
        settings.lease_ttl_seconds,
        sessions.running_count,
        settings.redis_url,
    )
    leases: LeaseKeeper | None = None
    tail: EventTail | None = None
    control: ControlChannel | None = None
    dispatch_role: RoleKeeper | None = None
    if signals is not None:
        assert settings.redis_url is not None
        tail = EventTail(database, bus, signals)
        committer.announce = tail.committed
        leases = LeaseKeeper(database, nodes, sessions, settings.lease_ttl_seconds, signals)
        sessions.placement = leases.wake_all
        sessions.signal_queued = signals.publish
        sessions.holds = leases.holds
        control = ControlChannel(settings.redis_url, database, settings.node_name)
        sessions.remote = control
        dispatch_role = RoleKeeper(
            database,
            "webhooks",
            settings.node_name,
            settings.lease_ttl_seconds,
            begin=dispatcher.start,
            end=dispatcher.stop,
            keep=dispatcher.resync,
            announce=signals.publish_look,
        )
        leases.on_look.append(dispatch_role.wake)
        dispatcher.allowed = dispatch_role.holds
        signals.on_webhook = dispatcher.wake
    committer.observe = metrics.committed
    sessions.restarted = metrics.restarted
    dispatcher.judged = metrics.delivered
    tenants = TenantService(
        database, committer, auth, sessions, webhooks, limits, DEFAULT_TENANT, media
    )
    retention = RetentionCleaner(
        database,
        idempotency,
        RetentionPolicy(
            events_days=settings.events_retention_days,
            deliveries_days=settings.deliveries_retention_days,
            interval_seconds=settings.retention_interval_seconds,
        ),
        clock,
    )
    built = Services(
        settings=settings,
        database=database,
        bus=bus,
        committer=committer,
        auth=auth,
        tokens=tokens,
        messages=messages,
        sessions=sessions,
        realtime=realtime,
        clock=clock,
        idempotency=idempotency,
        webhooks=webhooks,
        sinks=sinks,
        integrations=integrations,
        chatwoot=chatwoot,
        dispatcher=dispatcher,
        retention=retention,
        fallbacks=FallbackWatcher(database, messages, sessions),
        checkpointer=Checkpointer(database),
        audit=audit,
        limits=limits,
        gate=gate,
        tenants=tenants,
        nodes=nodes,
        leases=leases,
        tail=tail,
        control=control,
        dispatch_role=dispatch_role,
        signals=signals,
        media=media,
        cloudapi=CloudApiCallbacks(sessions, limits, allowlist, settings.media_max_bytes),
        telegram=TelegramCallbacks(sessions, limits, allowlist, settings.media_max_bytes),
        sms=SmsCallbacks(sessions, limits),
        metrics=metrics,
        tracing=tracing_for(settings),
    )
    _connect_replies(built, bots, chatwoot)
    return built


def _connect_replies(services: Services, bots: BotSender, chatwoot: ChatwootCallbacks) -> None:
    """Bots' and Chatwoot agents' replies are sent as API sends are (which need the services)."""
    from zapgate.integrations.replies import send_once  # it imports the send use cases

    async def bot_reply(
        tenant: str, session: str, to: str, message: dict[str, Any], key: str
    ) -> None:
        await send_once(services, tenant, session, to, message, key)

    bots.reply = bot_reply
    chatwoot.send_once = functools.partial(send_once, services)


def build_media_store(settings: Settings) -> MediaStore:
    """The store ``ZAPGATE_MEDIA_STORE`` names."""
    if settings.media_store == "s3":
        return S3MediaStore(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            prefix=settings.s3_prefix,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            addressing_style=None
            if settings.s3_addressing_style == "auto"
            else settings.s3_addressing_style,
        )
    return LocalMediaStore(settings.data_dir / "media")
