"""How the contract suite drives each engine: create it, scan, deliver, disconnect."""

from __future__ import annotations

from typing import Any, Protocol

from zapgate.clock import SystemClock
from zapgate.engines.base import Engine
from zapgate.engines.simulator import SimulatorDefaults, SimulatorEngine


class EngineDriver(Protocol):
    """The test-side controls an engine offers (a fake phone, a fake page, a fake API)."""

    name: str
    config: dict[str, Any]

    def create(self) -> Engine: ...
    async def scan(self, engine: Engine) -> None: ...
    async def deliver(self, engine: Engine, sender: str, text: str) -> None: ...
    async def disconnect(self, engine: Engine) -> None: ...


class SimulatorDriver:
    """The simulator's own hooks."""

    name = "simulator"
    config: dict[str, Any] = {  # noqa: RUF012 - read-only
        "pairing": "manual",
        "seed": 1,
        "delivered_latency": {"kind": "fixed", "seconds": 0.01},
        "read_latency": {"kind": "fixed", "seconds": 0.01},
        "reconnect_latency": {"kind": "fixed", "seconds": 0.05},
        "echo_contact": "",
    }

    def create(self) -> Engine:
        return SimulatorEngine(SimulatorDefaults(), SystemClock())

    async def scan(self, engine: Engine) -> None:
        await _simulator(engine).simulate_scan()

    async def deliver(self, engine: Engine, sender: str, text: str) -> None:
        await _simulator(engine).inject_inbound(sender, text)

    async def disconnect(self, engine: Engine) -> None:
        await _simulator(engine).force_disconnect()


def _simulator(engine: Engine) -> SimulatorEngine:
    assert isinstance(engine, SimulatorEngine)
    return engine


DRIVERS: list[EngineDriver] = [SimulatorDriver()]
