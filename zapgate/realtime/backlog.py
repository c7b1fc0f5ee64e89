"""Sockets that do not read what they are sent are closed before their queue grows for long.

engine.io keeps every packet for a socket in an unbounded queue until its transport takes it:
a client that stops reading (a stalled websocket, a polling client that stops polling) holds
everything its tenant publishes until the ping timeout, tens of seconds later. Once a second,
:class:`BacklogWatch` looks at every socket's queue; one that was over ``MAX_QUEUED`` packets at
the last look and has not shrunk since is not reading: it is closed (as the ping timeout would,
which runs the Socket.IO ``disconnect`` handler and frees its stream slot) and what it held is
dropped. The client reconnects with its last seq and replays what it missed. A burst that a
reading client is working through shrinks between two looks, so it is left alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from zapgate.tasks import cancel_and_wait

log = logging.getLogger(__name__)
MAX_QUEUED = 5000
"""Packets waiting for one socket beyond which it must be draining (a burst of a busy tenant)."""
CHECK_SECONDS = 1.0


class BacklogWatch:
    """Closes the sockets of ``sids()`` whose engine.io queue is over ``MAX_QUEUED``."""

    def __init__(self, sio: Any, sids: Callable[[], Iterable[str]]) -> None:
        self._sio = sio
        self._sids = sids
        self._task: asyncio.Task[None] | None = None
        self._over: dict[str, int] = {}  # sockets over the limit at the last look: their queue

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="socket-backlog-watch")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            try:
                await self.check()
            except Exception:
                log.exception("the socket backlog check failed; trying again in a second")

    async def check(self) -> int:
        """Close the sockets over the limit that did not drain since the last look; returns how
        many."""
        closed = 0
        over, self._over = self._over, {}
        for sid in list(self._sids()):
            transport = self._transport(sid)
            if transport is None or transport.closed or transport.closing:
                continue
            waiting = transport.queue.qsize()
            if waiting <= MAX_QUEUED:
                continue
            if sid not in over or waiting < over[sid]:
                self._over[sid] = waiting  # over, but it may be working through a burst
                continue
            log.warning("closing socket %s: %d packets unread (a slow consumer)", sid, waiting)
            await transport.close(wait=False, abort=True)
            _drop(transport.queue)
            closed += 1
        return closed

    def _transport(self, sid: str) -> Any:
        eio_sid = self._sio.manager.eio_sid_from_sid(sid, "/")
        return self._sio.eio.sockets.get(eio_sid) if eio_sid else None


def _drop(queue: asyncio.Queue[Any]) -> None:
    """Free what a closed socket still held, and tell its writer to stop."""
    while not queue.empty():
        queue.get_nowait()
        queue.task_done()
    queue.put_nowait(None)
