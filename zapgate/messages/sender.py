"""The per-session outbox sender: takes queued messages in order and hands them to the engine."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from zapgate.engines.base import EngineError, EngineNotReady, OutboundMessage, SendReceipt
from zapgate.messages.model import Message
from zapgate.messages.pacing import Pacer
from zapgate.messages.service import MessageService
from zapgate.tasks import cancel_and_wait

log = logging.getLogger(__name__)
OUTBOX_PAGE = 100
WAKE_GATHER_SECONDS = 0.005
"""How long a windowed sender, woken while it sends, lets more messages be queued before it
reads the outbox again (a burst of sends makes one read, not one each)."""
OUTBOX_PAGE_MANY = 400
"""Queued messages a windowed sender takes on at once (the engine has ``window`` of them)."""
PER_RECIPIENT = 16
"""Messages to one recipient a windowed sender has on hand at once."""
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
        self._stir = asyncio.Event()
        """Set by a wake, and by a windowed sender's send that ends: its run looks again."""
        self._held: _Window | None = None
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
        self._stir.set()
        task, self._task = self._task, None
        if task is not None and finish_seconds > 0:
            await asyncio.wait([task], timeout=finish_seconds)
        await cancel_and_wait(task)

    def wake(self) -> None:
        """Say that new messages were queued."""
        self._woken = True
        self._stir.set()
        if not self._stopped:
            self._spawn()

    def _spawn(self) -> None:
        if self._task is None:
            name = f"sender:{self._tenant}:{self._session}"
            self._task = asyncio.create_task(self._run(), name=name)

    async def _run(self) -> None:
        if self._window > 1:
            await self._run_many()
            return
        while True:
            self._woken = False
            try:
                page = await self._messages.queued(self._tenant, self._session, OUTBOX_PAGE)
                await self._deliver_page(page)
            except asyncio.CancelledError:
                raise
            except Exception:
                await self._failed()
                continue
            if self._stopped or (not page and not self._woken):
                if not self._stopped:
                    self._task = None  # idle: the next wake starts a new task
                return

    async def _failed(self) -> None:
        """The outbox could not be read (or a page not sent): log it, wait, try again."""
        log.exception("sender %s/%s failed; retrying", self._tenant, self._session)
        await asyncio.sleep(self._retry.base_seconds)

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

    async def _run_many(self) -> None:
        """Keep up to ``window`` sends in the engine's hands (see ``_Window``), reading the
        outbox again when half of what is on hand has ended, or soon after a wake."""
        window = self._held = _Window(self)
        low = OUTBOX_PAGE_MANY // 2
        try:
            while not self._stopped:
                self._woken = False
                if window.failed:  # a send failed unexpectedly: wait, then read it again
                    window.failed = False
                    await asyncio.sleep(self._retry.base_seconds)
                window.finished.clear()
                try:
                    page = await self._messages.queued(
                        self._tenant, self._session, OUTBOX_PAGE_MANY + len(window.handling)
                    )
                except asyncio.CancelledError:
                    raise
                except Exception:
                    await self._failed()
                    continue
                for message in page:
                    if not self._stopped:
                        window.take(message)
                if not window.handling and not self._woken and not window.failed:
                    self._task = None  # idle: the next wake starts a new task
                    return
                while window.handling and not self._stopped:
                    if len(window.handling) <= low and (self._woken or window.failed):
                        break
                    self._stir.clear()  # no await since the checks: nothing is missed
                    await self._stir.wait()
                if self._woken and not self._stopped:  # the wakes of a burst make one read
                    await asyncio.sleep(WAKE_GATHER_SECONDS)
            # stopping: what the engine has may end (``stop`` bounds the wait); nothing starts
            await asyncio.gather(*window.handling.values(), return_exceptions=True)
        finally:
            await window.cancel()
            self._held = None

    def holds(self, message_id: str) -> bool:
        """Whether the engine has ``message_id`` (a cancel would not stop it). One a windowed
        sender has on hand but not yet given the engine is withdrawn: it will not be sent (the
        caller cancels it; if that fails, the next read takes it again)."""
        if message_id in self.in_flight:
            return True
        if self._held is not None and message_id in self._held.handling:
            self._held.withdrawn.add(message_id)
        return False

    async def _deliver(
        self, message: Message, slots: asyncio.Semaphore | None = None
    ) -> Coroutine[Any, Any, Message | None] | None:
        """Hand ``message`` to the engine (holding one of ``slots`` while the engine has it);
        returns the (not yet awaited) record of the send."""
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
                if slots is None:
                    receipt = await self._sending(message.id, outbound)
                else:
                    async with slots:
                        held = self._held
                        if self._stopped or (held is not None and message.id in held.withdrawn):
                            return None  # stopping, or cancelled, while it waited: not sent
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
                await asyncio.sleep(max(self._retry.delay(message.attempts), _asked_wait(error)))
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


def _asked_wait(error: Exception) -> float:
    """The seconds the engine's far end asked to wait before a retry (0: none asked)."""
    asked = getattr(error, "retry_after_seconds", None)
    return float(asked) if isinstance(asked, int | float) and asked > 0 else 0.0


class _Window:
    """What a windowed sender has on hand: a task per message, chained behind the previous
    one to the same recipient (their order kept), at most ``PER_RECIPIENT`` per recipient so one
    busy chat does not fill it, sending through ``window`` slots.

    A message is never taken twice: not while it is handled, nor by a read that began before it
    ended (``finished``: that read may show it as it was). A send that fails unexpectedly (not
    an engine error: the database, say) leaves its message queued, and the messages behind it
    to the same recipient too, in order, for the next read after a pause (``failed``).
    """

    def __init__(self, sender: Sender) -> None:
        self._sender = sender
        self.handling: dict[str, asyncio.Task[bool]] = {}
        self.finished: set[str] = set()
        self.withdrawn: set[str] = set()
        """Handled messages being cancelled: not given to the engine."""
        self.failed = False
        self._last: dict[str, asyncio.Task[bool]] = {}
        self._per_recipient: Counter[str] = Counter()
        self._slots = asyncio.Semaphore(sender._window)

    def take(self, message: Message) -> None:
        """Start handling ``message`` (unless it is, was since the read, or its recipient has
        enough on hand)."""
        recipient = message.recipient
        if message.id in self.handling or message.id in self.finished:
            return
        if self._per_recipient[recipient] >= PER_RECIPIENT:
            return
        task = asyncio.create_task(self._one(message, self._last.get(recipient)))
        self.handling[message.id] = self._last[recipient] = task
        self._per_recipient[recipient] += 1
        task.add_done_callback(partial(self._ended, message))

    async def _one(self, message: Message, before: asyncio.Task[bool] | None) -> bool:
        """Send ``message`` after ``before``; False when it was left queued."""
        if before is not None:
            await asyncio.wait([before])
            if before.cancelled() or not before.result():
                return False  # the one before it is still queued: this one waits its turn
        try:
            record = await self._sender._deliver(message, self._slots)
            if record is not None:
                await record
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sending %s failed; it stays queued", message.id)
            self.failed = True
            return False
        return True

    def _ended(self, message: Message, done: asyncio.Task[bool]) -> None:
        self.handling.pop(message.id, None)
        self.withdrawn.discard(message.id)
        self.finished.add(message.id)
        self._per_recipient[message.recipient] -= 1
        if self._per_recipient[message.recipient] <= 0:
            del self._per_recipient[message.recipient]
        if self._last.get(message.recipient) is done:
            del self._last[message.recipient]
        self._sender._stir.set()

    async def cancel(self) -> None:
        tasks = list(self.handling.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
