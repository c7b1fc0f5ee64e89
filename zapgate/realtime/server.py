"""Socket.IO: authenticated connections, per-tenant and per-session rooms, fan-out, replay.

Clients authenticate with ``auth: {token}`` (or an ``Authorization`` header); tokens are never
read from the URL. A client joins its tenant's room, or with ``auth.sessions`` (a name or a list
of at most 100) only those sessions' rooms; ``subscribe``/``unsubscribe`` change that later.
Every event is emitted as ``event`` (the envelope, with its ``seq``) and each received message
also as ``message`` (the original contract). Bad input is refused with
``{"error": "invalid_input", "detail"}`` (the connect_error data, or the ack).

With ``auth.offset`` (the last seq it saw) a client first gets every later event it may see, in
order, then live ones, with no gap and no double at the seam (``replay.py``); replays run
beside the live fan-out (``fanout.py``), never on it. An offset older than what retention kept,
or too far behind, gets ``resync_required``.

Each socket is a :class:`Client` holding its principal from connect until disconnect; a
disconnect (also during a replay) stops everything that socket had running.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import socketio
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp

from zapgate.audit.model import Result
from zapgate.audit.service import AuditService
from zapgate.auth.invalidations import Invalidation, Reason
from zapgate.auth.scopes import Scope as KeyScope
from zapgate.auth.service import Principal
from zapgate.clock import now_ms
from zapgate.errors import AppError, Forbidden, RateLimited
from zapgate.events.bus import EventBus
from zapgate.limits.gate import Admission, Gate
from zapgate.limits.model import quota_message
from zapgate.limits.tarpit import pause_before_refusal
from zapgate.realtime import inputs
from zapgate.realtime.backlog import BacklogWatch
from zapgate.realtime.clients import Client
from zapgate.realtime.cors import cors_options
from zapgate.realtime.direct import DirectSocketIO, DirectWebsockets
from zapgate.realtime.fanout import Fanout
from zapgate.realtime.inputs import InvalidInput
from zapgate.realtime.polling import PollWatch
from zapgate.realtime.replay import Replays
from zapgate.tasks import cancel_and_wait

log = logging.getLogger(__name__)
NOT_CONNECTED = {"error": "not_connected", "detail": "this socket is not connected"}


class RealtimeServer:
    """The Socket.IO server, its live fan-out and its replays."""

    def __init__(
        self,
        gate: Gate,
        bus: EventBus,
        database: AsyncEngine,
        cors_origins: list[str] | None,
        audit: AuditService | None = None,
    ) -> None:
        self._audit = audit
        self.sio = DirectSocketIO(
            async_mode="asgi",
            logger=False,
            engineio_logger=False,
            **cors_options(cors_origins or []),
        )
        self._gate = gate
        self.fanout = Fanout(self.sio, bus, database)
        self.replays = Replays(self.sio, self.fanout, database)
        self._clients: dict[str, Client] = {}
        self._expiries: dict[str, asyncio.TimerHandle] = {}
        """Sockets whose key expires, with the timer that disconnects them then."""
        self._closing: set[asyncio.Task[None]] = set()
        self.backlogs = BacklogWatch(self.sio, lambda: self._clients.keys())
        self.polls: PollWatch | None = None
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        self.sio.on("subscribe", self._subscribe)
        self.sio.on("unsubscribe", self._unsubscribe)

    def asgi(self, other: ASGIApp) -> ASGIApp:
        """The ASGI app: Socket.IO at ``/socket.io``, ``other`` for everything else."""
        engineio_app = socketio.ASGIApp(self.sio, other_asgi_app=other)
        self.polls = PollWatch(DirectWebsockets(engineio_app, self.sio.eio), self.sio.eio)
        return self.polls

    async def start(self) -> None:
        """Begin forwarding committed events to clients."""
        await self.fanout.start()
        self.backlogs.start()

    async def stop(self) -> None:
        """Stop replays and forwarding."""
        for timer in self._expiries.values():
            timer.cancel()
        for task in list(self._closing):
            await cancel_and_wait(task)
        await self.backlogs.stop()
        await self.replays.stop()
        await self.fanout.stop()

    async def drain(self) -> None:
        """Wait until every published event has been handled and every replay has ended."""
        while True:
            await self.fanout.drain()
            running = self.replays.running()
            if not running:
                return
            await asyncio.wait(running)

    def invalidated(self, invalidation: Invalidation) -> None:
        """Disconnect now every socket of a revoked key, or of a suspended or deleted tenant."""
        if invalidation.key_id is None and invalidation.reason in (Reason.RESUMED, Reason.CREATED):
            return
        for sid, client in list(self._clients.items()):
            principal = client.principal
            if invalidation.key_id is None:
                if principal.tenant == invalidation.tenant:
                    self._close(sid)
            elif principal.key_id == invalidation.key_id:
                self._close(sid)

    def _close(self, sid: str) -> None:
        """Disconnect ``sid`` from the server side (in a task: this may run in a callback)."""
        task = asyncio.create_task(self.sio.disconnect(sid), name=f"zapgate-close-{sid}")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _audit_refusal(
        self,
        principal: Principal | None,
        action: str,
        target: str | None,
        error: AppError,
        address: str | None,
    ) -> None:
        """Record a refused connection or subscription (401/403) as HTTP refusals are: in the
        caller's log, or the operator's when nobody was identified; never raises."""
        if self._audit is None or error.status not in (401, 403):
            return
        detail: dict[str, Any] = {"error": error.code}
        if isinstance(error.detail, str):
            detail["reason"] = error.detail[:200]
        try:
            if principal is None:
                await self._audit.record_unknown(action, target, error.status, address, detail)
            else:
                await self._audit.record(
                    principal.tenant,
                    principal.key_id,
                    action,
                    target,
                    Result.REFUSED,
                    status=error.status,
                    address=address,
                    detail=detail,
                )
        except Exception:
            log.exception("could not record the audit entry of a refused socket")

    def client_count(self) -> int:
        """How many sockets are connected here."""
        return len(self._clients)

    def principals(self) -> list[Principal]:
        """Who is connected, one entry per socket."""
        return [client.principal for client in self._clients.values()]

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        """Accept or refuse a socket; a refused one keeps nothing (python-socketio calls no
        ``disconnect`` for it), and an unexpected failure is a refusal, not a half-open socket."""
        try:
            await self._accept(sid, environ, auth)
        except socketio.exceptions.ConnectionRefusedError:
            self._forget(sid)
            raise
        except Exception:
            log.exception("a socket could not be connected")
            self._forget(sid)
            raise socketio.exceptions.ConnectionRefusedError(
                "unavailable", {"error": "unavailable", "detail": "try again later"}
            ) from None

    async def _accept(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        try:
            request = inputs.connect_request(environ, auth)
        except InvalidInput as error:
            raise socketio.exceptions.ConnectionRefusedError(error.message, error.body()) from None
        admission = await self._admit(request.token, _address(environ))
        principal, limits = admission.principal, admission.limits
        requested = set(request.sessions) if request.sessions else None
        if principal.sessions is not None:  # a session-limited key sees only its sessions
            if requested is None:
                requested = set(principal.sessions)
            try:
                for name in sorted(requested):
                    principal.require(KeyScope.READ, name)
            except Forbidden as refused:
                await self._audit_refusal(principal, CONNECT, None, refused, _address(environ))
                raise socketio.exceptions.ConnectionRefusedError(
                    refused.code, {"error": refused.code, "detail": refused.detail}
                ) from None
        if not self._still_there(sid):
            raise socketio.exceptions.ConnectionRefusedError("gone")
        if self._gate.refuses(principal):  # revoked or suspended while it was being admitted
            raise socketio.exceptions.ConnectionRefusedError(
                "unauthorized", {"error": "unauthorized", "detail": "the key is no longer valid"}
            )
        # Nothing below awaits before the client is registered: the key's stream slot taken
        # here is given back by _disconnect, which python-socketio calls for every accepted socket.
        # (So a revocation or suspension applied from here on finds it in _clients.)
        slot = self._gate.limits.streams.acquire(principal.key_id, limits.streams_per_key)
        if slot is None:
            detail = quota_message("streams_per_key", limits.streams_per_key)
            await pause_before_refusal()  # a reconnect loop gets one refusal a second, not 50
            raise socketio.exceptions.ConnectionRefusedError(
                "quota_exceeded", {"error": "quota_exceeded", "detail": detail}
            )
        client = Client(sid, principal, requested, slot=slot)
        self._clients[sid] = client
        if principal.expires_at is not None:  # disconnected when its key expires
            delay = max(0.0, (principal.expires_at - now_ms()) / 1000)
            self._expiries[sid] = asyncio.get_running_loop().call_later(delay, self._close, sid)
        if request.offset is None:
            await self.fanout.join(client)
            if not self._still_there(sid):  # it left while joining: refusing it cleans up
                raise socketio.exceptions.ConnectionRefusedError("gone")
        else:
            self.replays.start(client, request.offset)

    async def _admit(self, token: str | None, address: str | None) -> Admission:
        """The caller, through the same gate as HTTP (a connection counts as a request)."""
        try:
            return await self._gate.admit(token, address)
        except AppError as error:
            if isinstance(error, RateLimited):
                await pause_before_refusal(error.retry_after)
            await self._audit_refusal(None, CONNECT, None, error, address)
            raise socketio.exceptions.ConnectionRefusedError(
                error.code, {"error": error.code, "detail": error.detail}
            ) from None

    def _still_there(self, sid: str) -> bool:
        """Whether ``sid``'s transport is still open.

        python-socketio does not call ``disconnect`` for a socket whose transport is closed
        while its ``connect`` handler runs (a ping timeout, a dropped long-poll); refusing it
        here keeps such a socket from being registered for ever.
        """
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        transport = self.sio.eio.sockets.get(eio_sid) if eio_sid else None
        return transport is not None and not transport.closing and not transport.closed

    async def _disconnect(self, sid: str, reason: str = "") -> None:
        self._forget(sid)

    def _forget(self, sid: str) -> None:
        """Drop ``sid``'s client, its stream slot and its replay (once; later calls do nothing)."""
        timer = self._expiries.pop(sid, None)
        if timer is not None:
            timer.cancel()
        client = self._clients.pop(sid, None)
        if client is None:
            return
        if client.slot is not None:
            client.slot.release()
        self.replays.cancel(sid)

    async def _subscribe(self, sid: str, *args: Any) -> dict[str, Any]:
        return await self._change(sid, args, subscribe=True)

    async def _unsubscribe(self, sid: str, *args: Any) -> dict[str, Any]:
        return await self._change(sid, args, subscribe=False)

    async def _change(self, sid: str, args: tuple[Any, ...], subscribe: bool) -> dict[str, Any]:
        client = self._clients.get(sid)
        if client is None:
            return dict(NOT_CONNECTED)
        try:
            name = inputs.subscription(args)
            if subscribe:
                client.principal.require(KeyScope.READ, name)  # a session-limited key's own
            before = client.rooms()
            if subscribe:
                client.subscribe(name)
            else:
                client.unsubscribe(name)
        except InvalidInput as error:
            return error.body()
        except Forbidden as refused:
            target = f"sessions/{name}"  # only require() refuses, once the name is known
            await self._audit_refusal(client.principal, SUBSCRIBE, target, refused, None)
            return {"error": refused.code, "detail": refused.detail}
        await self.fanout.move(client, before)
        return {"ok": True, "session": name}


CONNECT = "CONNECT /socket.io"
SUBSCRIBE = "SUBSCRIBE /socket.io"
"""How a refused Socket.IO connection or subscription is named in the audit log."""


def _address(environ: dict[str, Any]) -> str | None:
    """The client's address (engine.io's own REMOTE_ADDR is a placeholder)."""
    client = environ.get("asgi.scope", {}).get("client")
    return str(client[0]) if client else None
