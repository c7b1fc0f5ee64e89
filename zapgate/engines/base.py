"""The engine contract (DESIGN.md §3): a small protocol, a sink to report to, one error tree."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class Capability(StrEnum):
    """What an engine can do: the message types it sends, and the rest."""

    TEXT = "text"
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACT = "contact"
    REACTION = "reaction"
    POLL = "poll"
    TEMPLATE = "template"
    """Send a template approved by Meta (the Cloud API)."""
    INTERACTIVE = "interactive"
    """Send reply buttons and lists (the Cloud API)."""
    EDIT = "edit"
    """Edit a sent text (and report edits of received ones)."""
    REVOKE = "revoke"
    """Delete a sent message for everyone (and report revoked received ones)."""
    PRESENCE = "presence"
    """Show typing or recording in a chat."""
    CALLS = "calls"
    """Report incoming calls, and reject them."""
    CHATS = "chats"
    """List chats and mark them read."""
    CONTACTS = "contacts"
    """List contacts, check numbers, profile pictures, and resolve LIDs to phone numbers."""
    GROUPS = "groups"
    """List, create and manage groups."""
    QR = "qr"
    PAIRING_CODE = "pairing_code"
    SIMULATION = "simulation"


MESSAGE_TYPES: tuple[str, ...] = (
    "text",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "location",
    "contact",
    "reaction",
)
"""The message types, in the order capabilities are listed."""
MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
"""The message types that carry a file."""
SEND_TYPES: tuple[str, ...] = (*MESSAGE_TYPES, "poll", "template", "interactive")
"""Every type a message can have: ``MESSAGE_TYPES`` (which every WhatsApp engine of the contract
suite sends; SMS carries only texts) and those an engine opts into with its capability (``poll``,
``template``, ``interactive``)."""


def message_types(capabilities: frozenset[Capability]) -> list[str]:
    """The message types among ``capabilities``, in ``SEND_TYPES`` order."""
    return [kind for kind in SEND_TYPES if kind in capabilities]


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
    """A file: its bytes, their sniffed type, and the name it is shown with."""

    data: bytes
    mime_type: str
    filename: str | None = None

    def data_uri(self) -> str:
        """The bytes as a ``data:<mime>;base64,...`` URI."""
        return f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode()}"


@dataclass(frozen=True, slots=True)
class Location:
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    """A contact card: its display name, phone numbers and the vCard (3.0) text."""

    name: str
    phones: tuple[str, ...]
    vcard: str


@dataclass(frozen=True, slots=True)
class Poll:
    """A poll: its question, its options, and how many of them a voter may pick (0: any)."""

    name: str
    options: tuple[str, ...]
    selectable_count: int = 1


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A message for the engine to send.

    ``kind`` is one of ``MESSAGE_TYPES``. ``text`` is the text, or a media message's caption.
    ``reply_to`` (any kind) and ``target`` (a reaction's message) are *engine* message ids;
    a reaction's ``emoji`` is ``""`` to remove it.
    """

    id: str
    to: str
    kind: str
    text: str | None
    media: Media | None = None
    voice: bool = False
    location: Location | None = None
    contact: Contact | None = None
    target: str | None = None
    emoji: str | None = None
    reply_to: str | None = None
    link_preview: bool = False
    poll: Poll | None = None
    template: dict[str, Any] | None = None
    """A ``template`` message: Meta's template object (name, language, components)."""
    interactive: dict[str, Any] | None = None
    """An ``interactive`` message: Meta's interactive object (reply buttons or a list)."""


@dataclass(frozen=True, slots=True)
class SendReceipt:
    """The engine's id for a sent message."""

    engine_message_id: str


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message the engine received; the optional fields as in ``OutboundMessage`` (engine
    ids in ``reply_to`` and ``target``). ``media`` carries the downloaded bytes; zapgate
    sniffs their type, so ``mime_type`` there is only the engine's word."""

    engine_message_id: str
    sender: str
    recipient: str
    kind: str
    text: str | None
    timestamp_ms: int
    media: Media | None = None
    voice: bool = False
    location: Location | None = None
    contact: Contact | None = None
    target: str | None = None
    emoji: str | None = None
    reply_to: str | None = None
    poll: Poll | None = None
    sender_phone: str | None = None
    """When ``sender`` is a LID (``<digits>@lid``): the sender's phone number, if known."""
    raw: dict[str, Any] | None = None
    """The engine's own record of the message, kept as it came (fields zapgate does not map,
    such as a button reply's id), when the engine has one worth keeping."""
    once: bool = False
    """The engine may deliver this message again (Meta retries a callback): store it once by
    its ``engine_message_id``."""


class Presence(StrEnum):
    """What a chat shows of this account: typing, recording a voice note, or nothing."""

    TYPING = "typing"
    RECORDING = "recording"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class MessageEdited:
    """A message (received, or sent from another device) got a new text."""

    engine_message_id: str
    text: str
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class MessageRevoked:
    """A message was deleted for everyone by its sender."""

    engine_message_id: str
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class PollVote:
    """``voter`` picked ``selected`` (option names; empty: took the vote back) in a poll."""

    poll_engine_message_id: str
    voter: str
    selected: tuple[str, ...]
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """Someone is calling the account."""

    call_id: str
    caller: str
    video: bool
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class SendFailed:
    """A message the engine had sent (it has an engine id) could not be delivered after all."""

    engine_message_id: str
    reason: str
    timestamp_ms: int


EngineEvent = MessageEdited | MessageRevoked | PollVote | IncomingCall | SendFailed
"""What an engine reports through ``EngineSink.event`` besides messages and acks."""


class EngineError(Exception):
    """An engine failure; ``transient`` ones are worth retrying."""

    transient = False


class TransientEngineError(EngineError):
    transient = True

    def __init__(self, *args: object, retry_after_seconds: float | None = None) -> None:
        super().__init__(*args)
        self.retry_after_seconds = retry_after_seconds
        """How long the far end asked to wait before the next try (Telegram's ``retry_after``);
        the sender waits at least that long. None: its own backoff."""


class PermanentEngineError(EngineError):
    transient = False


class EngineNotReady(TransientEngineError):
    """The engine is not connected right now."""


class UnsupportedByEngine(PermanentEngineError):
    """The engine cannot do this at all."""


class UnsupportedMessageType(UnsupportedByEngine):
    """The engine cannot send this type of message."""


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
    async def event(self, event: EngineEvent) -> None: ...
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


class MessageActions(Protocol):
    """What an engine with ``EDIT``, ``REVOKE``, ``PRESENCE`` or ``CALLS`` does besides sending.

    ``chat`` is a chat id (``<number>@c.us``, a group's ``...@g.us``); message ids are the
    engine's. Each raises EngineError subclasses only (UnsupportedByEngine when it cannot).
    """

    async def edit(self, chat: str, engine_message_id: str, text: str) -> None: ...
    async def revoke(self, chat: str, engine_message_id: str) -> None: ...
    async def presence(self, chat: str, state: Presence) -> None: ...
    async def reject_call(self, call_id: str) -> None: ...
