"""The engine contract (DESIGN.md §3): a small protocol, a sink to report to, one error tree."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class Capability(StrEnum):
    """What an engine can do."""

    TEXT = "text"
    INBOUND_INJECTION = "inbound_injection"
    QR = "qr"


class SessionStatus(StrEnum):
    """Session lifecycle states (DESIGN.md §4)."""

    STOPPED = "STOPPED"
    STARTING = "STARTING"
    SCAN_QR_CODE = "SCAN_QR_CODE"
    WORKING = "WORKING"
    DISCONNECTED = "DISCONNECTED"
    FAILED = "FAILED"


class AckStatus(StrEnum):
    """Delivery progress of an outbound message, in order."""

    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """What an engine is given at start."""

    tenant: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A message for the engine to send."""

    id: str
    to: str
    kind: str
    text: str | None


@dataclass(frozen=True, slots=True)
class SendReceipt:
    """The engine's id for a sent message."""

    engine_message_id: str


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message the engine received."""

    engine_message_id: str
    sender: str
    recipient: str
    kind: str
    text: str | None
    timestamp_ms: int


class EngineError(Exception):
    """An engine failure; ``transient`` ones are worth retrying."""

    transient = False


class TransientEngineError(EngineError):
    transient = True


class PermanentEngineError(EngineError):
    transient = False


class EngineNotReady(TransientEngineError):
    """The engine is not connected right now."""


class EngineSink(Protocol):
    """How an engine reports what happens to its session."""

    async def status(self, status: SessionStatus, reason: str | None = None) -> None: ...
    async def qr(self, raw: str) -> None: ...
    async def me(self, account: dict[str, Any]) -> None: ...
    async def message(self, message: InboundMessage) -> str: ...
    async def ack(self, engine_message_id: str, status: AckStatus) -> None: ...


class Engine(Protocol):
    """One WhatsApp connection."""

    name: str
    capabilities: frozenset[Capability]

    async def start(self, session: SessionConfig, sink: EngineSink) -> None: ...
    async def stop(self) -> None: ...
    async def logout(self) -> None: ...
    async def send(self, message: OutboundMessage) -> SendReceipt: ...
