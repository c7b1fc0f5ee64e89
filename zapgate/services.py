"""The parts of a running zapgate, built once by the app factory and wired together."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.auth.service import Authenticator
from zapgate.config import Settings
from zapgate.db.committer import Committer
from zapgate.db.database import create_engine
from zapgate.engines.registry import EngineRegistry
from zapgate.engines.simulator import SimulatorEngine, SimulatorOptions
from zapgate.events.bus import EventBus
from zapgate.messages.sender import RetryPolicy
from zapgate.messages.service import MessageService
from zapgate.realtime.server import RealtimeServer
from zapgate.sessions.service import SessionManager

DEFAULT_TENANT = "default"


@dataclass(slots=True)
class Services:
    settings: Settings
    database: AsyncEngine
    bus: EventBus
    committer: Committer
    auth: Authenticator
    messages: MessageService
    sessions: SessionManager
    realtime: RealtimeServer
    generated_key: str | None = None


def build_services(settings: Settings, database: AsyncEngine | None = None) -> Services:
    """Construct every part (nothing runs yet); ``database`` overrides the configured one."""
    database = database or create_engine(settings)
    bus = EventBus()
    committer = Committer(database, bus, settings.commit_batch_max)
    auth = Authenticator(database, committer, settings.auth == "on", settings.auth_cache_seconds)
    messages = MessageService(database, committer)
    simulator_defaults = SimulatorOptions(
        pairing_seconds=settings.simulator_pairing_seconds,
        ack_seconds=settings.simulator_ack_seconds,
        echo_contact=settings.simulator_echo_contact,
    )
    engines = EngineRegistry({"simulator": lambda: SimulatorEngine(simulator_defaults)})
    retry = RetryPolicy(settings.send_retry_limit, settings.send_retry_base_seconds)
    sessions = SessionManager(database, committer, messages, engines, retry)
    realtime = RealtimeServer(auth, bus, settings.cors_origins)
    return Services(settings, database, bus, committer, auth, messages, sessions, realtime)
