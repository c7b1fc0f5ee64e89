"""How the contract suite drives each engine: create it, scan, deliver, disconnect."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any, Protocol

from zapgate.clock import SystemClock
from zapgate.engines.base import Engine
from zapgate.engines.simulator import SimulatorDefaults, SimulatorEngine
from zapgate.engines.wppconnect.engine import WppConnectEngine, WppOptions
from zapgate.engines.wppconnect.runtime import WppRuntime

FAKE_PAGE = Path(__file__).resolve().parents[1] / "wppconnect" / "fake_whatsapp.html"


class EngineDriver(Protocol):
    """The test-side controls an engine offers (a fake phone, a fake page, a fake API)."""

    name: str
    config: dict[str, Any]

    def available(self) -> str | None: ...
    def create(self) -> Engine: ...
    async def scan(self, engine: Engine) -> None: ...
    async def deliver(self, engine: Engine, sender: str, text: str) -> None: ...
    async def disconnect(self, engine: Engine) -> None: ...
    async def check_file_sent(self, engine: Engine, filename: str) -> None: ...


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

    def available(self) -> str | None:
        return None

    def create(self) -> Engine:
        return SimulatorEngine(SimulatorDefaults(), SystemClock())

    async def scan(self, engine: Engine) -> None:
        await _simulator(engine).simulate_scan()

    async def deliver(self, engine: Engine, sender: str, text: str) -> None:
        await _simulator(engine).inject_inbound(sender, text)

    async def disconnect(self, engine: Engine) -> None:
        await _simulator(engine).force_disconnect()

    async def check_file_sent(self, engine: Engine, filename: str) -> None:
        sent = _simulator(engine).recent_sends
        assert any(m.media is not None and m.media.filename == filename for m in sent)


class WppConnectDriver:
    """The real library in real Chromium against the fake WhatsApp Web page."""

    name = "wppconnect"
    config: dict[str, Any] = {}  # noqa: RUF012 - read-only

    def __init__(self) -> None:
        self.runtime = WppRuntime()

    def available(self) -> str | None:
        return self.runtime.missing()

    def create(self) -> Engine:
        options = WppOptions(
            runtime=self.runtime,
            data_dir=Path(tempfile.mkdtemp(prefix="zg-contract-")),
            fake_page=FAKE_PAGE,
            start_timeout_seconds=30,
        )
        return WppConnectEngine(options, SystemClock())

    async def scan(self, engine: Engine) -> None:
        await _wpp(engine).fake("scan")
        await _wpp(engine).fake("autoAck", True)

    async def deliver(self, engine: Engine, sender: str, text: str) -> None:
        await _wpp(engine).fake("receive", {"from": f"{sender}@c.us", "body": text})

    async def disconnect(self, engine: Engine) -> None:
        """The connection drops; WhatsApp Web reconnects by itself a moment later."""
        wpp = _wpp(engine)
        await wpp.fake("disconnect")
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, lambda: loop.create_task(wpp.fake("reconnect")))

    async def check_file_sent(self, engine: Engine, filename: str) -> None:
        sent = await _wpp(engine).fake("sent")
        assert any(item.get("filename") == filename for item in sent), sent


def _simulator(engine: Engine) -> SimulatorEngine:
    assert isinstance(engine, SimulatorEngine)
    return engine


def _wpp(engine: Engine) -> WppConnectEngine:
    assert isinstance(engine, WppConnectEngine)
    return engine


DRIVERS: list[EngineDriver] = [SimulatorDriver(), WppConnectDriver()]
