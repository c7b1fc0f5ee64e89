"""Socket.IO: authenticated connections, per-tenant and per-session rooms, ordered fan-out, replay.

Clients authenticate with ``auth: {token}`` (or an ``Authorization`` header); tokens are never
read from the URL. A client joins its tenant's room, or with ``auth.sessions`` (a name or a list)
only those sessions' rooms; ``subscribe``/``unsubscribe`` change that later. Every event is
emitted as ``event`` (the envelope, with its ``seq``) and each received message also as
``message`` (the original contract).

With ``auth.offset`` (the last seq it saw) a client first gets every later event it may see, in
order, then live ones. One task emits everything, replays included, so nothing is missed or
doubled at the seam. An offset older than what retention kept gets ``resync_required``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import socketio
from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.auth.service import Authenticator
from zapgate.errors import Unauthorized
from zapgate.events import repository as event_log
from zapgate.events.bus import EventBus
from zapgate.events.model import Event, EventType
from zapgate.realtime.rooms import session_room, tenant_room

log = logging.getLogger(__name__)
REPLAY_PAGE = 500
REPLAY_MAX = 10_000


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
        self,
        authenticator: Authenticator,
        bus: EventBus,
        database: AsyncEngine,
        cors_origins: list[str] | None,
    ) -> None:
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins=cors_origins or None,
            logger=False,
            engineio_logger=False,
        )
        self._auth = authenticator
        self._bus = bus
        self._database = database
        self._outbox: asyncio.Queue[list[Event] | _Replay] = asyncio.Queue()
        self._handled: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Any = None
        self._register()

    async def start(self) -> None:
        """Begin forwarding committed events to clients."""
        self._unsubscribe = self._bus.subscribe(self._outbox.put_nowait)
        self._handled = await event_log.all_tenants_last_seqs(self._database)
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
        offset = _offset(auth)
        if offset is None:
            await self._join(sid, principal.tenant, sessions)
        else:
            self._outbox.put_nowait(_Replay(sid, principal.tenant, sessions, offset))

    async def _join(self, sid: str, tenant: str, sessions: list[str]) -> None:
        rooms = [session_room(tenant, name) for name in sessions] or [tenant_room(tenant)]
        for room in rooms:
            await self.sio.enter_room(sid, room)

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
            item = await self._outbox.get()
            try:
                if isinstance(item, _Replay):
                    await self._replay(item)
                else:
                    for event in item:
                        await self._emit(event)
            except Exception:
                log.exception("realtime fan-out failed")
            finally:
                self._outbox.task_done()

    async def _emit(self, event: Event) -> None:
        self._handled[event.tenant] = max(self._handled.get(event.tenant, 0), event.seq)
        rooms = [tenant_room(event.tenant)]
        if event.session is not None:
            rooms.append(session_room(event.tenant, event.session))
        await self._send(event, rooms)

    async def _send(self, event: Event, to: str | list[str]) -> None:
        await self.sio.emit("event", event.envelope(), to=to)
        if event.type == EventType.MESSAGE_RECEIVED:
            await self.sio.emit("message", legacy_message(event), to=to)

    async def _replay(self, request: _Replay) -> None:
        """Emit what the client missed (up to what went live before it asked), then join."""
        upto = self._handled.get(request.tenant, 0)
        kept_from = await event_log.first_kept_seq(self._database, request.tenant)
        too_far = upto - request.offset > REPLAY_MAX  # replays run on the shared fan-out task
        if request.offset + 1 < kept_from or too_far:
            detail = {"offset": request.offset, "oldest_seq": kept_from, "latest_seq": upto}
            await self.sio.emit("resync_required", detail, to=request.sid)
        else:
            await self._replay_range(request, upto)
        await self._join(request.sid, request.tenant, request.sessions)

    async def _replay_range(self, request: _Replay, upto: int) -> None:
        after = request.offset
        while after < upto:
            page = await event_log.read_after(self._database, request.tenant, after, REPLAY_PAGE)
            for event in page:
                if event.seq > upto:
                    return
                if not request.sessions or event.session in request.sessions:
                    await self._send(event, request.sid)
            if len(page) < REPLAY_PAGE:
                return
            after = page[-1].seq


@dataclass(frozen=True, slots=True)
class _Replay:
    sid: str
    tenant: str
    sessions: list[str]
    offset: int


def _offset(auth: Any) -> int | None:
    value = auth.get("offset") if isinstance(auth, dict) else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise socketio.exceptions.ConnectionRefusedError(
            "invalid_offset", {"error": "invalid_input", "detail": "offset is a seq >= 0"}
        )
    return value


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
