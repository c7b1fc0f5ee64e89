"""The per-session outbox sender: takes queued messages in order and hands them to the engine."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from zapgate.engines.base import EngineError, EngineNotReady, OutboundMessage, SendReceipt
from zapgate.messages.model import Message
from zapgate.messages.pacing import Pacer
from zapgate.messages.service import MessageService
from zapgate.tasks import cancel_and_wait

log = logging.getLogger(__name__)
OUTBOX_PAGE = 100
NOT_READY_PAUSE_SECONDS = 0.05
FENCED_PAUSE_SECONDS = 0.1
"""How long a sender whose node may have lost the session's lease waits before it looks again
(meanwhile the lease is renewed, or the session is stopped here)."""


class SendPort(Protocol):
    """Where the sender hands messages: ``ready`` is set while the session is WORKING."""

    ready: asyncio.Event

    async def send(self, message: OutboundMessage) -> SendReceipt: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Transient failures are retried ``limit`` times, waiting ``base * 2**n`` (at most ``cap``)."""

    limit: int = 5
    base_seconds: float = 1.0
    cap_seconds: float = 300.0

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failure."""
        return float(min(self.base_seconds * 2 ** max(attempts - 1, 0), self.cap_seconds))


class Sender:
    """Sends one session's queued messages, one at a time, oldest first.

    A message leaves ``queued`` only as ``sent`` or ``failed``. After a crash the queued rows are
    still there and are sent on the next start: delivery is at-least-once.

    It runs a task only while there is work: once the outbox reads empty and nothing was queued
    meanwhile, the task ends, and ``wake`` starts another (an idle session costs no task).
    """

    def __init__(
        self,
        messages: MessageService,
        port: SendPort,
        tenant: str,
        session: str,
        retry: RetryPolicy,
        pacer: Pacer | None = None,
        fence: Callable[[], bool] | None = None,
        window: int = 1,
    ) -> None:
        self._window = max(1, window)
        """Sends in the engine's hands at once: one (in order), or more for an engine that
        takes many (each recipient's messages still go one after another, in order)."""
        self._fence = fence
        """Cluster mode: whether this node surely still holds the session's lease (a node that
        was paused past it must not send what another node now sends)."""
        self._messages = messages
        self._pacer = pacer
        self._port = port
        self._tenant = tenant
        self._session = session
        self._retry = retry
        self._woken = False
        self._stopped = True
        self.in_flight: set[str] = set()
        """Messages the engine is sending, or has sent but whose ``sent`` is not yet recorded
        (a cancel of one is refused meanwhile: it would lose the engine's id)."""
        self._task: asyncio.Task[None] | None = None

    def start(self, check: bool = True) -> None:
        """Begin sending: read the outbox now, or (``check`` False: known empty) at the first
        ``wake``."""
        self._stopped = False
        if check or self._woken:
            self._spawn()

    async def stop(self, finish_seconds: float = 0.0) -> None:
        """Stop after abandoning the current attempt (it stays queued); with ``finish_seconds``,
        the send in flight may end first, and nothing after it starts (a planned handover to
        another node must not leave a delivered message queued, for it to be sent again)."""
        self._stopped = True
        task, self._task = self._task, None
        if task is not None and finish_seconds > 0:
            await asyncio.wait([task], timeout=finish_seconds)
        await cancel_and_wait(task)

    def wake(self) -> None:
        """Say that new messages were queued."""
        self._woken = True
        if not self._stopped:
            self._spawn()

    def _spawn(self) -> None:
        if self._task is None:
            name = f"sender:{self._tenant}:{self._session}"
            self._task = asyncio.create_task(self._run(), name=name)

    async def _run(self) -> None:
        while True:
            self._woken = False
            try:
                size = OUTBOX_PAGE if self._window == 1 else OUTBOX_PAGE * 4
                page = await self._messages.queued(self._tenant, self._session, size)
                if self._window == 1:
                    await self._deliver_page(page)
                else:
                    await self._deliver_many(page)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sender %s/%s failed; retrying", self._tenant, self._session)
                await asyncio.sleep(self._retry.base_seconds)
                continue
            if self._stopped or (not page and not self._woken):
                if not self._stopped:
                    self._task = None  # idle: the next wake starts a new task
                return

    async def _deliver_page(self, page: list[Message]) -> None:
        """Send a page in order. ``sent`` records are not awaited one by one (the writer keeps
        their order); all are committed before the outbox is read again, so nothing is sent twice.
        """
        records: list[asyncio.Task[Message | None]] = []
        try:
            for message in page:
                if self._stopped:  # stopping: the rest stays queued for the next owner
                    break
                record = await self._deliver(message)
                if record is not None:
                    records.append(asyncio.create_task(record))
        finally:
            await asyncio.gather(*records)

    async def _deliver_many(self, page: list[Message]) -> None:
        """Send a page with up to ``window`` sends at once: a message waits for the one before
        it to the same recipient; every ``sent`` is recorded before the outbox is read again."""
        slots = asyncio.Semaphore(self._window)
        last: dict[str, asyncio.Task[None]] = {}
        tasks: list[asyncio.Task[None]] = []

        async def one(message: Message, before: asyncio.Task[None] | None) -> None:
            if before is not None:
                await asyncio.wait([before])
            async with slots:
                record = await self._deliver(message)
            if record is not None:
                await record

        try:
            for message in page:
                task = asyncio.create_task(one(message, last.get(message.recipient)))
                last[message.recipient] = task
                tasks.append(task)
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _deliver(self, message: Message) -> Coroutine[Any, Any, Message | None] | None:
        """Hand ``message`` to the engine; returns the (not yet awaited) record of the send."""
        try:
            outbound = await self._messages.outbound(message)
        except EngineError as error:  # its file, or the message it reacts to, is gone
            await self._messages.record_failed(message, _reason(error))
            return None
        while True:
            if self._stopped:
                return None
            await self._port.ready.wait()
            if self._pacer is not None:
                await self._pacer.wait_turn(outbound.to)
            if self._fence is not None and not self._fence():
                await asyncio.sleep(FENCED_PAUSE_SECONDS)
                continue
            try:
                receipt = await self._sending(message.id, outbound)
            except EngineNotReady:
                await asyncio.sleep(NOT_READY_PAUSE_SECONDS)
                continue
            except Exception as error:
                transient = error.transient if isinstance(error, EngineError) else True
                if not transient or message.attempts + 1 > self._retry.limit:
                    await self._messages.record_failed(message, _reason(error))
                    return None
                retried = await self._messages.record_attempt(message, _reason(error))
                if retried is None:  # no longer queued (cancelled meanwhile): not sent again
                    return None
                message = retried
                await asyncio.sleep(self._retry.delay(message.attempts))
                continue
            return self._recorded(message, receipt.engine_message_id)

    async def _sending(self, message_id: str, outbound: OutboundMessage) -> SendReceipt:
        """The engine's send, with ``message_id`` in flight until its ``sent`` is recorded."""
        self.in_flight.add(message_id)
        try:
            return await self._port.send(outbound)
        except BaseException:
            self.in_flight.discard(message_id)
            raise

    async def _recorded(self, message: Message, engine_message_id: str) -> Message | None:
        try:
            return await self._messages.record_sent(message, engine_message_id)
        finally:
            self.in_flight.discard(message.id)


def _reason(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"
