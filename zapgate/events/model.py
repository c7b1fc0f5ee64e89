"""The event envelope shared by Socket.IO, webhooks and the events API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from zapgate.clock import now_ms, to_iso
from zapgate.ids import new_id


class EventType:
    """Event type names (DESIGN.md §1)."""

    SESSION_STATUS = "session.status"
    SESSION_QR = "session.qr"
    SESSION_HEALTH = "session.health"
    MESSAGE_RECEIVED = "message.received"
    MESSAGE_QUEUED = "message.queued"
    MESSAGE_SENT = "message.sent"
    MESSAGE_STATUS = "message.status"
    MESSAGE_EDITED = "message.edited"
    MESSAGE_REVOKED = "message.revoked"
    MESSAGE_POLL_VOTE = "message.poll_vote"
    CALL_RECEIVED = "call.received"
    WEBHOOK_DISABLED = "webhook.disabled"
    SINK_DISABLED = "sink.disabled"
    INTEGRATION_DISABLED = "integration.disabled"


LEGACY_CHANNEL = "whatsapp"
"""The channel of a session's event written before events named theirs (the only one then)."""


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An event before it has a place in the log."""

    tenant: str
    session: str | None
    type: str
    payload: dict[str, Any]
    id: str = field(default_factory=lambda: new_id("evt"))
    created_at: int = field(default_factory=now_ms)
    actor: str | None = None
    """Who caused it (``zapgate.audit.actor``); ``UnitOfWork.emit`` fills it in."""
    request_id: str | None = None
    """The request that caused it; ``UnitOfWork.emit`` fills it in too."""
    channel: str | None = None
    """The channel of its session (``zapgate.channels``); None for an event of no session."""

    def placed(self, seq: int) -> Event:
        """This draft as the event at ``seq``."""
        return Event(
            self.id,
            seq,
            self.tenant,
            self.session,
            self.type,
            self.payload,
            self.created_at,
            self.actor,
            self.request_id,
            self.channel,
        )


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the log; ``seq`` increases per tenant without gaps."""

    id: str
    seq: int
    tenant: str
    session: str | None
    type: str
    payload: dict[str, Any]
    created_at: int
    actor: str | None = None
    """The key (``key_...``, ``jwt:<subject>``) whose request caused it; None for what engines
    and background work report."""
    request_id: str | None = None
    """The ``X-Request-Id`` of the request that caused it: the request being served when it was
    written, else the one that queued the message it is about (``message.sent``, its
    ``message.status``); None for what engines report by themselves."""
    channel: str | None = None
    """``whatsapp``, ``telegram`` or ``sms``: its session's; None for an event of no session."""
    _json: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_row(cls, row: Any) -> Event:
        """Build from an ``events`` row mapping."""
        return cls(
            row["id"],
            row["seq"],
            row["tenant_id"],
            row["session"],
            row["type"],
            row["payload"],
            row["created_at"],
            row["actor"],
            row["request_id"],
            row["channel"] or (LEGACY_CHANNEL if row["session"] is not None else None),
        )

    def envelope(self) -> dict[str, Any]:
        """The wire form, the same on every channel."""
        return {
            "id": self.id,
            "seq": self.seq,
            "type": self.type,
            "session": self.session,
            "channel": self.channel,
            "tenant": self.tenant,
            "timestamp": to_iso(self.created_at),
            "actor": self.actor,
            "request_id": self.request_id,
            "payload": self.payload,
        }

    def envelope_json(self) -> bytes:
        """The envelope as JSON bytes, encoded once however many subscriptions send it."""
        if self._json is None:
            object.__setattr__(self, "_json", orjson.dumps(self.envelope()))
        assert self._json is not None
        return self._json
