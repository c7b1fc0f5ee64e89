"""The engine contract (DESIGN.md §3): a small protocol, a sink to report to, one error tree."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class Capability(StrEnum):
    """What an engine can do."""

    TEXT = "text"
    FILE = "file"
    QR = "qr"
    PAIRING_CODE = "pairing_code"
    SIMULATION = "simulation"


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
    restore: dict[str, Any] | None = None
    """The account paired last time (a saved login); None means a new pairing is needed."""


@dataclass(frozen=True, slots=True)
class Media:
    """A file to send: its content as a ``data:<mime>;base64,...`` URI."""

    data_uri: str
    filename: str
    caption: str | None = None


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A message for the engine to send: ``kind`` is ``text``, or ``file`` with ``media``."""

    id: str
    to: str
    kind: str
    text: str | None
    media: Media | None = None


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


class UnsupportedByEngine(PermanentEngineError):
    """The engine cannot do this at all."""


class WrongEngineState(PermanentEngineError):
    """The engine cannot do this in its current state (e.g. a scan when no QR is shown)."""


class EngineSink(Protocol):
    """How an engine reports what happens to its session.

    Any call counts as a sign of life; an engine that has nothing else to say calls
    ``heartbeat`` now and then, or its session is flagged stale and restarted.
    """

    async def status(self, status: SessionStatus, reason: str | None = None) -> None: ...
    async def qr(self, raw: str) -> None: ...
    async def me(self, account: dict[str, Any]) -> None: ...
    async def message(self, message: InboundMessage) -> str: ...
    async def ack(self, engine_message_id: str, status: AckStatus) -> None: ...
    async def heartbeat(self) -> None: ...


class Engine(Protocol):
    """One WhatsApp connection.

    ``start`` returns once the engine is under way and reports progress through the sink
    (STARTING, SCAN_QR_CODE with ``qr``, WORKING; DISCONNECTED while it reconnects by itself;
    FAILED with a reason when it gives up). ``send`` raises EngineError subclasses only.
    """

    name: str
    capabilities: frozenset[Capability]

    async def start(self, session: SessionConfig, sink: EngineSink) -> None: ...
    async def stop(self) -> None: ...
    async def logout(self) -> None: ...
    async def send(self, message: OutboundMessage) -> SendReceipt: ...
    async def request_pairing_code(self, phone: str) -> str: ...
