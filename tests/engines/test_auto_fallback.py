"""``auto`` as the original meant it: a session never paired falls back to the simulator when
WPPConnect fails; a paired one reports the failure and is never silently simulated."""

from __future__ import annotations

from tests.support.sink import RecordingSink, is_status
from zapgate.clock import SystemClock
from zapgate.engines import auto
from zapgate.engines.base import (
    Capability,
    EngineSink,
    OutboundMessage,
    SendReceipt,
    SessionConfig,
    SessionStatus,
    UnsupportedByEngine,
)
from zapgate.engines.simulator import SimulatorDefaults, SimulatorEngine

UNREACHABLE = "WhatsApp Web could not be reached"


class UnreachableEngine:
    """Like WPPConnect whose browser cannot reach WhatsApp: starts, then fails."""

    name = "wppconnect"
    capabilities = frozenset({Capability.TEXT, Capability.QR})

    def __init__(self) -> None:
        self.stopped = False

    async def start(self, session: SessionConfig, sink: EngineSink) -> None:
        await sink.status(SessionStatus.STARTING)
        await sink.status(SessionStatus.FAILED, UNREACHABLE)

    async def stop(self) -> None:
        self.stopped = True

    async def logout(self) -> None:
        return None

    async def send(self, message: OutboundMessage) -> SendReceipt:
        raise UnsupportedByEngine("never connected")

    async def request_pairing_code(self, phone: str) -> str:
        raise UnsupportedByEngine("never connected")


def simulator() -> SimulatorEngine:
    return SimulatorEngine(SimulatorDefaults(pairing_seconds=0), SystemClock())


async def test_a_session_never_paired_falls_back_to_the_simulator_saying_why() -> None:
    preferred = UnreachableEngine()
    engine = auto.choose(lambda: None, lambda: preferred, simulator)
    sink = RecordingSink()
    try:
        await engine.start(SessionConfig("default", "a", {}), sink)
        working = await sink.wait_for(is_status(SessionStatus.WORKING))
    finally:
        await engine.stop()
    assert preferred.stopped
    assert engine.name == "simulator"
    assert Capability.IMAGE in engine.capabilities
    assert UNREACHABLE in working.value[1]
    assert "fell back to the simulator" in working.value[1]
    assert not any(r.kind == "status" and r.value[0] is SessionStatus.FAILED for r in sink.reports)


async def test_a_paired_session_is_never_silently_simulated() -> None:
    preferred = UnreachableEngine()
    engine = auto.choose(lambda: None, lambda: preferred, simulator)
    sink = RecordingSink()
    try:
        restore = {"id": "5511999999999"}
        await engine.start(SessionConfig("default", "a", {}, restore=restore), sink)
        failed = await sink.wait_for(is_status(SessionStatus.FAILED))
    finally:
        await engine.stop()
    assert failed.value[1] == UNREACHABLE
    assert engine.name == "wppconnect"
    assert not any(r.kind == "qr" for r in sink.reports)
