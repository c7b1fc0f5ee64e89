"""One running session: its engine under supervision, its sender, and what it last reported.

The runner starts the engine, restarts it with exponential backoff when it reports FAILED (up to
a limit, after which the session stays FAILED until someone starts it again), and restarts it at
once when the manager finds it stale. Every report from the engine counts as a sign of life.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from zapgate.clock import Clock
from zapgate.engines.base import (
    AckStatus,
    Engine,
    EngineEvent,
    EngineNotReady,
    InboundMessage,
    OutboundMessage,
    SendReceipt,
    SessionConfig,
    SessionStatus,
)
from zapgate.tasks import cancel_and_wait

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SupervisionPolicy:
    """How a failing or silent engine is handled."""

    restart_limit: int = 5
    restart_base_seconds: float = 2.0
    restart_cap_seconds: float = 300.0
    stale_seconds: float = 120.0

    def backoff(self, failures: int) -> float:
        """Seconds to wait before restart number ``failures``."""
        return float(min(self.restart_base_seconds * 2 ** (failures - 1), self.restart_cap_seconds))


class RunnerEvents(Protocol):
    """What a runner tells the session manager (which turns it into writes and events)."""

    async def status(self, status: SessionStatus, reason: str | None) -> None: ...
    async def qr(self, raw: str) -> None: ...
    async def me(self, account: dict[str, Any]) -> None: ...
    async def message(self, message: InboundMessage) -> str: ...
    async def ack(self, engine_message_id: str, status: AckStatus) -> None: ...
    async def event(self, event: EngineEvent) -> None: ...
    async def health(self, state: str) -> None: ...


class SessionRunner:
    """Supervises one session's engine on this node."""

    def __init__(
        self,
        config: SessionConfig,
        create_engine: Callable[[], Engine],
        events: RunnerEvents,
        clock: Clock,
        policy: SupervisionPolicy,
        starts: asyncio.Semaphore | None = None,
        restarted: Callable[[str], None] | None = None,
    ) -> None:
        self._restarted = restarted
        """Told of each restart of the engine (``failed``, ``stale``): metrics."""
        self.config = config
        self._starts = starts or asyncio.Semaphore()
        """Shared by the runners of a node: how many engines may be starting at once."""
        self._create_engine = create_engine
        self._events = events
        self._clock = clock
        self._policy = policy
        self.engine: Engine | None = None
        self.ready = asyncio.Event()
        self.status = SessionStatus.STOPPED
        self.qr: str | None = None
        self.me: dict[str, Any] | None = config.restore
        self.health = "ok"
        self.failures = 0
        self.last_activity = clock.monotonic()
        self._ended: asyncio.Future[None] | None = None
        """Done when the current engine run is over (a future per run: lighter than an Event)."""
        self._reason: str | None = None
        self._restart_requested = False
        self._task: asyncio.Task[None] | None = None

    # lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Begin supervising."""
        self._task = asyncio.create_task(self._supervise(), name=f"session:{self.config.name}")

    async def stop(self, logout: bool = False) -> None:
        """Stop the engine (logging out first if asked) and the supervision."""
        await cancel_and_wait(self._task)
        self._task = None
        engine, self.engine = self.engine, None
        self.ready.clear()
        if engine is not None:
            await _quietly(engine.logout() if logout else engine.stop(), "stop")

    async def mark_stale(self) -> None:
        """Flag the session stale and restart its engine at once (no backoff)."""
        self.health = "stale"
        await self._events.health("stale")
        self._restart_requested = True
        self._end_run()

    @property
    def supervising(self) -> bool:
        """False once the runner gave up (or was stopped)."""
        return self._task is not None and not self._task.done()

    async def _supervise(self) -> None:
        while True:
            await self._run_engine_once()
            if self._restart_requested:
                self._restart_requested = False
                self._count_restart("stale")
                continue
            self.failures += 1
            if self.failures > self._policy.restart_limit:
                await self._report(
                    SessionStatus.FAILED,
                    f"gave up after {self._policy.restart_limit} restarts: {self._reason}",
                )
                return
            await self._clock.sleep(self._policy.backoff(self.failures))
            self._count_restart("failed")

    async def _run_engine_once(self) -> None:
        self._ended = ended = asyncio.get_running_loop().create_future()
        self._reason = None
        async with self._starts:
            engine = self._create_engine()
            self.engine = engine
            self.last_activity = self._clock.monotonic()
            try:
                await engine.start(replace(self.config, restore=self.me), _Sink(self))
            except Exception as error:
                await self._report(SessionStatus.FAILED, f"start failed: {error}")
        await ended
        self.ready.clear()
        await asyncio.shield(_quietly(engine.stop(), "stop"))  # a cancel must not cut it short
        self.engine = None

    def _count_restart(self, reason: str) -> None:
        if self._restarted is not None:
            self._restarted(reason)

    def _end_run(self) -> None:
        if self._ended is not None and not self._ended.done():
            self._ended.set_result(None)

    # what the engine reports -----------------------------------------------------------------

    def touch(self) -> None:
        """Record a sign of life."""
        self.last_activity = self._clock.monotonic()

    async def _report(self, status: SessionStatus, reason: str | None = None) -> None:
        self.touch()
        self.status = status
        if status is SessionStatus.WORKING:
            self.failures = 0
            self.ready.set()
        else:
            self.ready.clear()
        if status is not SessionStatus.SCAN_QR_CODE:
            self.qr = None
        try:
            await self._events.status(status, reason)
        finally:
            if status is SessionStatus.FAILED:
                self._reason = reason
                self._end_run()  # even if the write failed: the run is over either way
        if status is SessionStatus.WORKING and self.health != "ok":
            self.health = "ok"
            await self._events.health("ok")

    async def send(self, message: OutboundMessage) -> SendReceipt:
        """Hand a message to the current engine."""
        engine = self.engine
        if engine is None or not self.ready.is_set():
            raise EngineNotReady("the session is not WORKING")
        return await engine.send(message)

    def is_stale(self) -> bool:
        """True when a WORKING or DISCONNECTED engine has been silent too long."""
        if self.status not in (SessionStatus.WORKING, SessionStatus.DISCONNECTED):
            return False
        return self._clock.monotonic() - self.last_activity > self._policy.stale_seconds


class _Sink:
    """The EngineSink handed to one engine run."""

    def __init__(self, runner: SessionRunner) -> None:
        self._runner = runner

    async def status(self, status: SessionStatus, reason: str | None = None) -> None:
        await self._runner._report(status, reason)

    async def qr(self, raw: str) -> None:
        self._runner.touch()
        self._runner.qr = raw
        await self._runner._events.qr(raw)

    async def me(self, account: dict[str, Any]) -> None:
        self._runner.touch()
        self._runner.me = account
        await self._runner._events.me(account)

    async def message(self, message: InboundMessage) -> str:
        self._runner.touch()
        return await self._runner._events.message(message)

    async def ack(self, engine_message_id: str, status: AckStatus) -> None:
        self._runner.touch()
        await self._runner._events.ack(engine_message_id, status)

    async def event(self, event: EngineEvent) -> None:
        self._runner.touch()
        await self._runner._events.event(event)

    async def heartbeat(self) -> None:
        self._runner.touch()


async def _quietly(work: Awaitable[None], what: str) -> None:
    try:
        await work
    except Exception:
        log.exception("engine %s failed", what)
