"""The ``auto`` engine: wppconnect when its runtime is here, else the simulator, saying why."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from zapgate.engines.base import (
    AckStatus,
    Engine,
    EngineSink,
    InboundMessage,
    OutboundMessage,
    SendReceipt,
    SessionConfig,
    SessionStatus,
)

log = logging.getLogger(__name__)


def choose(
    missing: Callable[[], str | None],
    preferred: Callable[[], Engine],
    fallback: Callable[[], Engine],
) -> Engine:
    """``preferred()`` when nothing is missing, else ``fallback()`` annotated with the reason."""
    gap = missing()
    if gap is None:
        return preferred()
    note = f"auto engine is running the simulator: wppconnect cannot run here ({gap})"
    log.warning(note)
    return Explained(fallback(), note)


class Explained:
    """An engine whose status reports carry a standing explanation (unless they have a reason)."""

    def __init__(self, inner: Engine, note: str) -> None:
        self.inner = inner
        self.note = note
        self.name = inner.name
        self.capabilities = inner.capabilities

    async def start(self, session: SessionConfig, sink: EngineSink) -> None:
        await self.inner.start(session, _NotedSink(sink, self.note))

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

    async def heartbeat(self) -> None:
        await self._sink.heartbeat()
