"""Live fan-out: every committed event to its rooms, in commit order, on one task.

Clients that are replaying the log are left out of room emits; their events are put in their
:class:`LiveBuffer` instead, in the same step that records the event as handled. A replay that
starts (:meth:`Fanout.hold`) therefore splits the stream at one seq: up to it, the log; after it,
the buffer; and once it lets go (:meth:`Fanout.release`), the rooms.

Rooms change only between two events (``_turn``), never between the ``event`` and ``message``
emits of one, so a client never gets half of an event from its rooms.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import socketio
from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.events import repository as event_log
from zapgate.events.bus import EventBus
from zapgate.events.model import Event
from zapgate.realtime.buffer import LiveBuffer
from zapgate.realtime.clients import Client, join, move
from zapgate.realtime.rooms import session_room, tenant_room
from zapgate.realtime.wire import send
from zapgate.tasks import cancel_and_wait

log = logging.getLogger(__name__)
BUFFER_MAX = 1_000
"""Live events held for one replaying client before it is told ``resync_required``."""


class Fanout:
    """The task that emits committed events to rooms."""

    def __init__(self, sio: socketio.AsyncServer, bus: EventBus, database: AsyncEngine) -> None:
        self._sio = sio
        self._bus = bus
        self._database = database
        self._outbox: asyncio.Queue[list[Event]] = asyncio.Queue()
        self._newest: dict[str, int] = {}
        self._held: dict[str, dict[str, tuple[Client, LiveBuffer]]] = {}
        self._turn = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self) -> None:
        """Subscribe to the bus, then begin emitting."""
        self._unsubscribe = self._bus.subscribe(self._outbox.put_nowait)
        for tenant, seq in (await event_log.all_tenants_last_seqs(self._database)).items():
            self._newest[tenant] = max(self._newest.get(tenant, 0), seq)
        self._task = asyncio.create_task(self._forward(), name="zapgate-realtime")

    async def stop(self) -> None:
        """Stop emitting."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        await cancel_and_wait(self._task)

    async def drain(self) -> None:
        """Wait until every event published so far has been handled."""
        await self._outbox.join()

    def newest(self, tenant: str) -> int:
        """The newest seq of ``tenant`` handled (emitted or held) so far."""
        return self._newest.get(tenant, 0)

    async def join(self, client: Client) -> None:
        """Enter ``client``'s rooms: live events reach it from the next one on."""
        async with self._turn:
            await join(self._sio, client)

    async def move(self, client: Client, before: set[str]) -> None:
        """Bring a joined client's rooms from ``before`` to what it wants now."""
        async with self._turn:
            await move(self._sio, client, before)

    async def hold(self, client: Client, limit: int = BUFFER_MAX) -> LiveBuffer:
        """Enter ``client``'s rooms, but keep its live events after ``newest`` in a buffer."""
        async with self._turn:
            buffer = LiveBuffer(self.newest(client.tenant), limit)
            self._held.setdefault(client.tenant, {})[client.sid] = (client, buffer)
            await join(self._sio, client)
        return buffer

    def release(self, client: Client) -> None:
        """From now on emit ``client``'s live events to it through its rooms."""
        held = self._held.get(client.tenant)
        if held is None:
            return
        held.pop(client.sid, None)
        if not held:
            del self._held[client.tenant]

    async def _forward(self) -> None:
        while True:
            batch = await self._outbox.get()
            try:
                for event in batch:
                    await self._emit_alone(event)
            finally:
                self._outbox.task_done()

    async def _emit_alone(self, event: Event) -> None:
        """Emit ``event`` in its own turn; a failure is logged and costs only this event."""
        try:
            async with self._turn:
                await self._emit(event)
        except Exception:
            log.exception("realtime fan-out of %s failed", event.id)

    async def _emit(self, event: Event) -> None:
        self._newest[event.tenant] = max(self.newest(event.tenant), event.seq)
        skip: list[str] = []
        for sid, (client, buffer) in self._held.get(event.tenant, {}).items():
            skip.append(sid)
            if client.wants(event):
                buffer.push(event)
        rooms = [tenant_room(event.tenant)]
        if event.session is not None:
            rooms.append(session_room(event.tenant, event.session))
        send(self._sio, event, rooms, skip or None)
