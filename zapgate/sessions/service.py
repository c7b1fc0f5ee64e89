"""The session manager: runs engines, turns what they report into domain writes and events."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.db.committer import Committer, UnitOfWork
from zapgate.engines.base import (
    AckStatus,
    Engine,
    InboundMessage,
    SessionConfig,
    SessionStatus,
)
from zapgate.engines.registry import EngineRegistry
from zapgate.errors import SessionNotFound, SessionNotReady, Unsupported
from zapgate.events.model import EventDraft, EventType
from zapgate.messages.model import Message
from zapgate.messages.sender import RetryPolicy, Sender
from zapgate.messages.service import MessageService
from zapgate.sessions import repository
from zapgate.sessions.model import Session

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Runtime:
    """A running session on this node."""

    engine: Engine
    sender: Sender
    ready: asyncio.Event
    qr: str | None = None
    me: dict[str, Any] | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class SessionSink:
    """The EngineSink of one session: engine reports become domain calls."""

    def __init__(self, manager: SessionManager, tenant: str, name: str) -> None:
        self._manager = manager
        self._tenant = tenant
        self._name = name

    async def status(self, status: SessionStatus, reason: str | None = None) -> None:
        await self._manager.record_status(self._tenant, self._name, status, reason)

    async def qr(self, raw: str) -> None:
        await self._manager.record_qr(self._tenant, self._name, raw)

    async def me(self, account: dict[str, Any]) -> None:
        await self._manager.record_me(self._tenant, self._name, account)

    async def message(self, message: InboundMessage) -> str:
        stored = await self._manager.messages.record_inbound(self._tenant, self._name, message)
        return stored.id

    async def ack(self, engine_message_id: str, status: AckStatus) -> None:
        await self._manager.messages.record_ack(self._tenant, self._name, engine_message_id, status)


class SessionManager:
    """Owns the engines of the sessions running on this node."""

    def __init__(
        self,
        database: AsyncEngine,
        committer: Committer,
        messages: MessageService,
        engines: EngineRegistry,
        retry: RetryPolicy,
    ) -> None:
        self._database = database
        self._committer = committer
        self.messages = messages
        self._engines = engines
        self._retry = retry
        self._runtimes: dict[tuple[str, str], Runtime] = {}
        self._known: dict[tuple[str, str], Session] = {}
        messages.on_queued = self.wake_sender

    async def ensure_default(self, tenant: str, name: str, engine: str) -> None:
        """Create the default tenant and session on first start."""

        async def job(unit: UnitOfWork) -> None:
            await repository.ensure_tenant(unit.connection, tenant, tenant)
            if not await repository.exists(unit.connection, tenant, name):
                await repository.create(unit.connection, tenant, name, engine, {}, {})

        await self._committer.run(job)

    async def boot(self) -> None:
        """Start every session that was meant to be running."""
        for session in await repository.all_wanted_running(self._database):
            try:
                await self.start(session.tenant, session.name)
            except Exception:
                log.exception("could not start session %s/%s", session.tenant, session.name)

    async def shutdown(self) -> None:
        """Stop every engine on this node, keeping what each session wants for the next boot."""
        for key in list(self._runtimes):
            await self._halt(*key)

    async def get(self, tenant: str, name: str) -> Session:
        """A session, or SessionNotFound."""
        session = await repository.get(self._database, tenant, name)
        if session is None:
            raise SessionNotFound(f"no session {name!r}")
        self._known[(tenant, name)] = session
        return session

    async def require(self, tenant: str, name: str) -> Session:
        """Like ``get`` but served from memory when the session is known (hot path)."""
        return self._known.get((tenant, name)) or await self.get(tenant, name)

    async def list_sessions(self, tenant: str) -> list[Session]:
        """The sessions of ``tenant``."""
        return await repository.list_for(self._database, tenant)

    async def start(self, tenant: str, name: str) -> None:
        """Start the session's engine and sender on this node."""
        session = await self.get(tenant, name)
        if (tenant, name) in self._runtimes:
            return
        engine = self._engines.create(session.engine)
        ready = asyncio.Event()
        sender = Sender(self.messages, engine, tenant, name, ready, self._retry)
        self._runtimes[(tenant, name)] = Runtime(engine, sender, ready, me=session.me)
        sender.start()
        try:
            await engine.start(
                SessionConfig(tenant, name, session.config), SessionSink(self, tenant, name)
            )
        except Exception as error:
            await self._halt(tenant, name)
            await self.record_status(tenant, name, SessionStatus.FAILED, f"start failed: {error}")

    async def inject_inbound(self, tenant: str, name: str, sender: str, text: str) -> Message:
        """Deliver a simulated inbound message; only engines that can take one."""
        await self.require(tenant, name)
        runtime = self._runtimes.get((tenant, name))
        if runtime is None or not runtime.ready.is_set():
            raise SessionNotReady(f"session {name!r} is not WORKING")
        inject = getattr(runtime.engine, "inject_inbound", None)
        if inject is None:
            raise Unsupported(f"engine {runtime.engine.name!r} cannot simulate inbound messages")
        message_id: str = await inject(sender, text)
        return await self.messages.get(tenant, message_id)

    def own_number(self, tenant: str, name: str) -> str:
        """The connected account's number, when known."""
        runtime = self._runtimes.get((tenant, name))
        me = (runtime.me if runtime else None) or {}
        return str(me.get("id", ""))

    def wake_sender(self, tenant: str, name: str) -> None:
        """Tell the session's sender that a message was queued."""
        runtime = self._runtimes.get((tenant, name))
        if runtime is not None:
            runtime.sender.wake()

    async def record_status(
        self, tenant: str, name: str, status: SessionStatus, reason: str | None = None
    ) -> None:
        """Store a status change with its ``session.status`` event."""
        runtime = self._runtimes.get((tenant, name))
        if runtime is not None:
            if status is SessionStatus.WORKING:
                runtime.ready.set()
            else:
                runtime.ready.clear()

        async def job(unit: UnitOfWork) -> Session | None:
            values = {"status": status.value, "status_reason": reason}
            updated = await repository.update(unit.connection, tenant, name, values)
            payload = {"status": status.value, "reason": reason}
            unit.emit(EventDraft(tenant, name, EventType.SESSION_STATUS, payload))
            return updated

        updated = await self._committer.run(job)
        if updated is not None:
            self._known[(tenant, name)] = updated

    async def record_qr(self, tenant: str, name: str, raw: str) -> None:
        """Keep the newest QR and emit ``session.qr``."""
        runtime = self._runtimes.get((tenant, name))
        if runtime is not None:
            runtime.qr = raw

        async def job(unit: UnitOfWork) -> None:
            unit.emit(EventDraft(tenant, name, EventType.SESSION_QR, {"qr": raw}))

        await self._committer.run(job)

    async def record_me(self, tenant: str, name: str, account: dict[str, Any]) -> None:
        """Store the connected account."""
        runtime = self._runtimes.get((tenant, name))
        if runtime is not None:
            runtime.me = account

        async def job(unit: UnitOfWork) -> Session | None:
            return await repository.update(unit.connection, tenant, name, {"me": account})

        updated = await self._committer.run(job)
        if updated is not None:
            self._known[(tenant, name)] = updated

    async def _halt(self, tenant: str, name: str) -> None:
        runtime = self._runtimes.pop((tenant, name), None)
        if runtime is None:
            return
        runtime.ready.clear()
        await runtime.sender.stop()
        try:
            await runtime.engine.stop()
        except Exception:
            log.exception("engine of %s/%s did not stop cleanly", tenant, name)
