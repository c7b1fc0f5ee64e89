"""The ``auto`` engine, as the original meant it: "if WPPConnect is unavailable, simulate".

WPPConnect when its runtime is here, else the simulator, saying why. A session that was never
paired also falls back to the simulator when WPPConnect fails (its browser cannot reach
WhatsApp), with the reason in its status; a paired session never silently becomes simulated:
it reports the failure, and its messages wait queued.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from zapgate.engines.base import (
    AckStatus,
    Engine,
    EngineEvent,
    EngineSink,
    InboundMessage,
    OutboundMessage,
    SendReceipt,
    SessionConfig,
    SessionStatus,
)
from zapgate.tasks import cancel_and_wait

log = logging.getLogger(__name__)


def choose(
    missing: Callable[[], str | None],
    preferred: Callable[[], Engine],
    fallback: Callable[[], Engine],
) -> Engine:
    """``preferred()`` (falling back if it fails before any pairing) when nothing is missing,
    else ``fallback()`` annotated with the reason."""
    gap = missing()
    if gap is None:
        return Fallback(preferred(), fallback)
    note = f"auto engine is running the simulator: wppconnect cannot run here ({gap})"
    log.warning(note)
    return Explained(fallback(), note)


class _Wrapped:
    """An engine that hands everything to ``inner`` (the wrappers below change only a part)."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities

    async def stop(self) -> None:
        await self.inner.stop()

    async def logout(self) -> None:
        await self.inner.logout()

    async def send(self, message: OutboundMessage) -> SendReceipt:
        return await self.inner.send(message)

    async def request_pairing_code(self, phone: str) -> str:
        return await self.inner.request_pairing_code(phone)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Fallback(_Wrapped):
    """``inner`` until it fails in a session never paired; then ``fallback()`` in its place."""

    def __init__(self, inner: Engine, fallback: Callable[[], Engine]) -> None:
        super().__init__(inner)
        self._fallback = fallback
        self._paired = False
        self._switch: asyncio.Task[None] | None = None
        self.note: str | None = None

    async def start(self, session: SessionConfig, sink: EngineSink) -> None:
        self._paired = session.restore is not None
        await self.inner.start(session, _Watched(sink, self, session))

    async def stop(self) -> None:
        await cancel_and_wait(self._switch)
        await self.inner.stop()

    def failed(self, reason: str | None, session: SessionConfig, sink: EngineSink) -> bool:
        """Whether a failure is taken over by the fallback (a session never paired)."""
        if self._paired or self.note is not None:
            return False
        self.note = (
            f"auto engine fell back to the simulator: wppconnect failed ({reason or 'no reason'})"
            " before this session was ever paired"
        )
        log.warning("%s/%s: %s", session.tenant, session.name, self.note)
        self._switch = asyncio.create_task(self._take_over(session, sink), name="auto-fallback")
        return True

    def paired(self) -> None:
        self._paired = True

    async def _take_over(self, session: SessionConfig, sink: EngineSink) -> None:
        assert self.note is not None
        await self.inner.stop()
        self.inner = self._fallback()
        self.name, self.capabilities = self.inner.name, self.inner.capabilities
        await self.inner.start(session, _NotedSink(sink, self.note))


class Explained(_Wrapped):
    """An engine whose status reports carry a standing explanation (unless they have a reason)."""

    def __init__(self, inner: Engine, note: str) -> None:
        super().__init__(inner)
        self.note = note

    async def start(self, session: SessionConfig, sink: EngineSink) -> None:
        await self.inner.start(session, _NotedSink(sink, self.note))


class _Watched:
    """The sink of the preferred engine: notes a pairing, hands a failure to the fallback."""

    def __init__(self, sink: EngineSink, owner: Fallback, session: SessionConfig) -> None:
        self._sink = sink
        self._owner = owner
        self._session = session

    async def status(self, status: SessionStatus, reason: str | None = None) -> None:
        if status is SessionStatus.FAILED and self._owner.failed(reason, self._session, self._sink):
            return
        await self._sink.status(status, reason)

    async def qr(self, raw: str) -> None:
        await self._sink.qr(raw)

    async def me(self, account: dict[str, Any]) -> None:
        self._owner.paired()
        await self._sink.me(account)

    async def message(self, message: InboundMessage) -> str:
        return await self._sink.message(message)

    async def ack(self, engine_message_id: str, status: AckStatus) -> None:
        await self._sink.ack(engine_message_id, status)

    async def event(self, event: EngineEvent) -> None:
        await self._sink.event(event)

    async def heartbeat(self) -> None:
        await self._sink.heartbeat()


class _NotedSink:
    def __init__(self, sink: EngineSink, note: str) -> None:
        self._sink = sink
        self._note = note

    async def status(self, status: SessionStatus, reason: str | None = None) -> None:
        await self._sink.status(status, reason or self._note)

    async def qr(self, raw: str) -> None:
        await self._sink.qr(raw)

    async def me(self, account: dict[str, Any]) -> None:
        await self._sink.me(account)

    async def message(self, message: InboundMessage) -> str:
        return await self._sink.message(message)

    async def ack(self, engine_message_id: str, status: AckStatus) -> None:
        await self._sink.ack(engine_message_id, status)

    async def event(self, event: EngineEvent) -> None:
        await self._sink.event(event)

    async def heartbeat(self) -> None:
        await self._sink.heartbeat()
