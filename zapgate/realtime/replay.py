"""Replays: a client that connects with ``auth.offset`` first gets the events after it, then live.

Each replay runs on its own task, so the live fan-out never waits for one. Admission is bounded
(:class:`FairSlots`: a few at once overall and per tenant; the rest wait in line without
holding anything). A replay:

1. asks the fan-out to hold the client's live events and enter its rooms (:meth:`Fanout.hold`):
   the fan-out's newest seq at that instant is ``upto``; later events go to the client's
   buffer, and room emits leave it out while it is held;
2. sends the log from the offset to ``upto`` in small pages, yielding between pages and keeping
   to the tenant's replay budget (``REPLAY_EVENTS_PER_SECOND``); or
   ``resync_required`` when the offset is older than retention or more than ``REPLAY_MAX``
   behind;
3. sends what the buffer holds until it is empty, then lets go of the client in the same step
   (no await in between), so the next live event reaches it through its rooms: no gap, no
   double, in order. A buffer that overflows becomes ``resync_required`` and a fresh start.

A client that disconnects has its replay cancelled at once (:meth:`Replays.cancel`); the task's
``finally`` frees its slot and buffer.
"""

from __future__ import annotations

import asyncio
import logging

import socketio
from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.events import repository as event_log
from zapgate.limits.buckets import TokenBuckets
from zapgate.realtime.buffer import LiveBuffer
from zapgate.realtime.clients import Client
from zapgate.realtime.fanout import BUFFER_MAX, Fanout
from zapgate.realtime.slots import FairSlots
from zapgate.realtime.wire import send

log = logging.getLogger(__name__)
REPLAY_PAGE = 25
"""Events read, paced and sent at a time: small, so a replay never holds the loop for long."""
REPLAY_MAX = 10_000
"""A client further behind than this many events is told ``resync_required``."""
REPLAYS_AT_ONCE = 8
REPLAYS_PER_TENANT = 2
REPLAY_EVENTS_PER_SECOND = 100.0
REPLAY_EVENTS_BURST = 300
PACE_MIN_SECONDS = 0.01
"""A tenant's replays together send at most this many events a second (after a burst): a
reconnect that missed a few hundred events is served at once, while a tenant replaying its
whole history over and over gets a bounded share of the CPU, never all of it."""


class Replays:
    """The replay tasks of connected clients."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        fanout: Fanout,
        database: AsyncEngine,
        slots: FairSlots | None = None,
    ) -> None:
        self._sio = sio
        self._fanout = fanout
        self._database = database
        self.slots = slots or FairSlots(REPLAYS_AT_ONCE, REPLAYS_PER_TENANT)
        self.buffer_max = BUFFER_MAX
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._budget = TokenBuckets()

    def start(self, client: Client, offset: int) -> None:
        """Begin ``client``'s replay from ``offset`` (it waits for a slot first)."""
        task = asyncio.create_task(self._run(client, offset), name=f"zapgate-replay-{client.sid}")
        self._tasks[client.sid] = task
        task.add_done_callback(lambda done: self._forget(client.sid, done))

    def cancel(self, sid: str) -> None:
        """Stop ``sid``'s replay now, if it has one."""
        task = self._tasks.pop(sid, None)
        if task is not None:
            task.cancel()

    def running(self) -> list[asyncio.Task[None]]:
        """Replays in progress or waiting for a slot."""
        return list(self._tasks.values())

    async def stop(self) -> None:
        """Cancel every replay and wait for them to end."""
        tasks = self.running()
        for sid in list(self._tasks):
            self.cancel(sid)
        await asyncio.gather(*tasks, return_exceptions=True)

    def _forget(self, sid: str, done: asyncio.Task[None]) -> None:
        if self._tasks.get(sid) is done:
            del self._tasks[sid]

    async def _run(self, client: Client, offset: int) -> None:
        try:
            async with self.slots.hold(client.tenant):
                try:
                    buffer = await self._fanout.hold(client, self.buffer_max)
                    await self._replay(client, offset, buffer)
                    await self._hand_over(client, offset, buffer)
                finally:
                    self._fanout.release(client)
        except Exception:
            log.exception("replay for %s failed; disconnecting it so it retries", client.sid)
            self._tasks.pop(client.sid, None)
            await self._sio.disconnect(client.sid)

    async def _replay(self, client: Client, offset: int, buffer: LiveBuffer) -> None:
        upto = buffer.after
        kept_from = await event_log.first_kept_seq(self._database, client.tenant)
        if offset + 1 < kept_from or upto - offset > REPLAY_MAX:
            await self._resync(client, offset, kept_from, upto)
            return
        after = offset
        while after < upto and not buffer.overflowed:
            page = await event_log.read_after(self._database, client.tenant, after, REPLAY_PAGE)
            await self._pace(client.tenant, len(page))
            for event in page:
                if event.seq > upto or buffer.overflowed:
                    return
                if client.wants(event):
                    send(self._sio, event, client.sid)
            if len(page) < REPLAY_PAGE:
                return
            after = page[-1].seq
            await asyncio.sleep(0)

    async def _pace(self, tenant: str, events: int) -> None:
        """Wait until ``tenant``'s replay budget has room for ``events`` more."""
        while True:
            decision = self._budget.take(
                tenant, REPLAY_EVENTS_PER_SECOND, REPLAY_EVENTS_BURST, cost=events
            )
            if decision.allowed:
                return
            await asyncio.sleep(max(decision.retry_after, PACE_MIN_SECONDS))

    async def _hand_over(self, client: Client, offset: int, buffer: LiveBuffer) -> None:
        """Send what the buffer holds until it is empty; the caller then releases the client."""
        while True:
            if buffer.overflowed:
                newest = self._fanout.newest(client.tenant)
                buffer.restart(newest)
                kept_from = await event_log.first_kept_seq(self._database, client.tenant)
                await self._resync(client, offset, kept_from, newest)
            events = buffer.take()
            if not events:
                return
            for event in events:
                send(self._sio, event, client.sid)
            await asyncio.sleep(0)

    async def _resync(self, client: Client, offset: int, kept_from: int, upto: int) -> None:
        detail = {"offset": offset, "oldest_seq": kept_from, "latest_seq": upto}
        await self._sio.emit("resync_required", detail, to=client.sid)
