"""Small engines for tests of the session machinery."""

from __future__ import annotations

from zapgate.engines.base import (
    Capability,
    EngineSink,
    OutboundMessage,
    PermanentEngineError,
    SendReceipt,
    SessionConfig,
    SessionStatus,
    UnsupportedByEngine,
)


class InstantEngine:
    """Goes WORKING at once; no QR, no pairing code."""

    name = "instant"
    capabilities = frozenset({Capability.TEXT})

    async def start(self, session: SessionConfig, sink: EngineSink) -> None:
        await sink.status(SessionStatus.STARTING)
        await sink.me({"id": "5511000000001"})
        await sink.status(SessionStatus.WORKING)

    async def stop(self) -> None:
        return None

    async def logout(self) -> None:
        return None

    async def send(self, message: OutboundMessage) -> SendReceipt:
        return SendReceipt(f"instant-{message.id}")

    async def request_pairing_code(self, phone: str) -> str:
        raise UnsupportedByEngine("no pairing codes")


class BrokenEngine(InstantEngine):
    """Fails every start."""

    name = "broken"
    starts = 0

    async def start(self, session: SessionConfig, sink: EngineSink) -> None:
        BrokenEngine.starts += 1
        await sink.status(SessionStatus.STARTING)
        raise PermanentEngineError("the browser could not be launched")
