"""The simulator: a phone with contacts, in-process, reporting through the same sink as others.

It pairs itself (a QR, then WORKING after ``pairing_seconds``), acknowledges sends (sent, then
delivered, then read, ``ack_seconds`` apart), has an echo contact that answers texts, and accepts
injected inbound messages.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from zapgate.clock import now_ms
from zapgate.engines.base import (
    AckStatus,
    Capability,
    EngineNotReady,
    EngineSink,
    InboundMessage,
    OutboundMessage,
    SendReceipt,
    SessionConfig,
    SessionStatus,
)
from zapgate.ids import ulid

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SimulatorOptions:
    """Behaviour of one simulated phone."""

    pairing_seconds: float = 0.2
    ack_seconds: float = 0.05
    echo_contact: str = "5511900000000"
    own_number: str = "5511000000000"

    @classmethod
    def from_config(cls, defaults: SimulatorOptions, config: dict[str, Any]) -> SimulatorOptions:
        """Per-session options over process defaults."""
        return cls(
            pairing_seconds=float(config.get("pairing_seconds", defaults.pairing_seconds)),
            ack_seconds=float(config.get("ack_seconds", defaults.ack_seconds)),
            echo_contact=str(config.get("echo_contact", defaults.echo_contact)),
            own_number=str(config.get("own_number", defaults.own_number)),
        )


class SimulatorEngine:
    """A simulated WhatsApp account."""

    name = "simulator"
    capabilities = frozenset({Capability.TEXT, Capability.INBOUND_INJECTION, Capability.QR})

    def __init__(self, defaults: SimulatorOptions | None = None) -> None:
        self._defaults = defaults or SimulatorOptions()
        self._options = self._defaults
        self._sink: EngineSink | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._working = False

    async def start(self, session: SessionConfig, sink: EngineSink) -> None:
        """Begin pairing: STARTING, a QR, then WORKING."""
        self._options = SimulatorOptions.from_config(self._defaults, session.options)
        self._sink = sink
        await sink.status(SessionStatus.STARTING)
        await sink.status(SessionStatus.SCAN_QR_CODE)
        await sink.qr(f"2@{secrets.token_urlsafe(24)},simulator,{session.name}")
        self._spawn(self._pair())

    async def stop(self) -> None:
        """Drop the connection; pending acks and replies are abandoned."""
        self._working = False
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def logout(self) -> None:
        """Forget the pairing."""
        await self.stop()

    async def send(self, message: OutboundMessage) -> SendReceipt:
        """Accept a send; acks and an echo follow."""
        if not self._working:
            raise EngineNotReady("the simulated phone is not connected")
        receipt = SendReceipt(f"sim_{ulid()}")
        self._spawn(self._acknowledge(receipt.engine_message_id))
        if message.to == self._options.echo_contact and message.text:
            self._spawn(self._echo(message.text))
        return receipt

    async def inject_inbound(self, sender: str, text: str, kind: str = "text") -> str:
        """Deliver a message from ``sender`` now; returns the stored message id."""
        if self._sink is None or not self._working:
            raise EngineNotReady("the simulated phone is not connected")
        return await self._sink.message(self._inbound(sender, text, kind))

    def _inbound(self, sender: str, text: str, kind: str) -> InboundMessage:
        return InboundMessage(
            engine_message_id=f"sim_{ulid()}",
            sender=sender,
            recipient=self._options.own_number,
            kind=kind,
            text=text,
            timestamp_ms=now_ms(),
        )

    async def _pair(self) -> None:
        await asyncio.sleep(self._options.pairing_seconds)
        sink = self._require_sink()
        await sink.me({"id": self._options.own_number, "pushname": "zapgate simulator"})
        self._working = True
        await sink.status(SessionStatus.WORKING)

    async def _acknowledge(self, engine_message_id: str) -> None:
        sink = self._require_sink()
        for status in (AckStatus.DELIVERED, AckStatus.READ):
            await asyncio.sleep(self._options.ack_seconds)
            await sink.ack(engine_message_id, status)

    async def _echo(self, text: str) -> None:
        await asyncio.sleep(self._options.ack_seconds)
        await self._require_sink().message(self._inbound(self._options.echo_contact, text, "text"))

    def _require_sink(self) -> EngineSink:
        if self._sink is None:
            raise EngineNotReady("the simulator was not started")
        return self._sink

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("simulator task failed", exc_info=task.exception())
