"""Socket.IO: authenticated connections, per-tenant and per-session rooms, ordered fan-out.

Clients authenticate with ``auth: {token}`` (or an ``Authorization`` header); tokens are never
read from the URL. A client joins its tenant's room, or with ``auth.sessions`` (a name or a list)
only those sessions' rooms; ``subscribe``/``unsubscribe`` change that later. Every event is
emitted as ``event`` (the envelope) and each received message also as ``message`` (the original
contract).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import socketio

from zapgate.auth.service import Authenticator
from zapgate.errors import Unauthorized
from zapgate.events.bus import EventBus
from zapgate.events.model import Event, EventType
from zapgate.realtime.rooms import session_room, tenant_room

log = logging.getLogger(__name__)


def legacy_message(event: Event) -> dict[str, Any]:
    """The original ``message`` event body for a received message."""
    payload = event.payload
    return {
        "id": payload["id"],
        "session": event.session,
        "from": payload["from"],
        "to": payload["to"],
        "text": payload["text"],
        "body": payload["text"],
        "type": payload["type"],
        "timestamp": payload["timestamp"],
    }


class RealtimeServer:
    """The Socket.IO server and its fan-out from the bus."""

    def __init__(
        self, authenticator: Authenticator, bus: EventBus, cors_origins: list[str] | None
    ) -> None:
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins=cors_origins or None,
            logger=False,
            engineio_logger=False,
        )
        self._auth = authenticator
        self._bus = bus
        self._outbox: asyncio.Queue[list[Event]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Any = None
        self._register()

    def start(self) -> None:
        """Begin forwarding committed events to clients."""
        self._unsubscribe = self._bus.subscribe(self._outbox.put_nowait)
        self._task = asyncio.create_task(self._forward(), name="zapgate-realtime")

    async def stop(self) -> None:
        """Stop forwarding."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def drain(self) -> None:
        """Wait until every published event has been emitted (for tests)."""
        await self._outbox.join()

    def _register(self) -> None:
        self.sio.on("connect", self._connect)
        self.sio.on("subscribe", self._subscribe)
        self.sio.on("unsubscribe", self._unsubscribe_session)

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        token = _token(environ, auth)
        try:
            principal = await self._auth.authenticate(token)
        except Unauthorized as error:
            raise socketio.exceptions.ConnectionRefusedError(
                "unauthorized", {"error": "unauthorized", "detail": error.detail}
            ) from None
        await self.sio.save_session(sid, {"tenant": principal.tenant})
        sessions = _requested_sessions(auth)
        if sessions:
            for name in sessions:
                await self.sio.enter_room(sid, session_room(principal.tenant, name))
        else:
            await self.sio.enter_room(sid, tenant_room(principal.tenant))

    async def _subscribe(self, sid: str, data: Any) -> dict[str, Any]:
        tenant = await self._tenant_of(sid)
        name = data.get("session") if isinstance(data, dict) else None
        if not isinstance(name, str) or not name:
            return {"error": "invalid_input", "detail": "send {session: <name>}"}
        await self.sio.leave_room(sid, tenant_room(tenant))
        await self.sio.enter_room(sid, session_room(tenant, name))
        return {"ok": True, "session": name}

    async def _unsubscribe_session(self, sid: str, data: Any) -> dict[str, Any]:
        tenant = await self._tenant_of(sid)
        name = data.get("session") if isinstance(data, dict) else None
        if not isinstance(name, str) or not name:
            return {"error": "invalid_input", "detail": "send {session: <name>}"}
        await self.sio.leave_room(sid, session_room(tenant, name))
        return {"ok": True, "session": name}

    async def _tenant_of(self, sid: str) -> str:
        session = await self.sio.get_session(sid)
        return str(session["tenant"])

    async def _forward(self) -> None:
        while True:
            batch = await self._outbox.get()
            try:
                for event in batch:
                    await self._emit(event)
            except Exception:
                log.exception("realtime fan-out failed")
            finally:
                self._outbox.task_done()

    async def _emit(self, event: Event) -> None:
        rooms = [tenant_room(event.tenant)]
        if event.session is not None:
            rooms.append(session_room(event.tenant, event.session))
        await self.sio.emit("event", event.envelope(), to=rooms)
        if event.type == EventType.MESSAGE_RECEIVED:
            await self.sio.emit("message", legacy_message(event), to=rooms)


def _token(environ: dict[str, Any], auth: Any) -> str | None:
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return str(auth["token"])
    header = str(environ.get("HTTP_AUTHORIZATION", ""))
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


def _requested_sessions(auth: Any) -> list[str]:
    if not isinstance(auth, dict):
        return []
    wanted = auth.get("sessions", auth.get("session"))
    if isinstance(wanted, str):
        return [wanted]
    if isinstance(wanted, list):
        return [name for name in wanted if isinstance(name, str)]
    return []
