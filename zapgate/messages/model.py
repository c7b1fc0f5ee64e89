"""The message as the domain sees it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from zapgate.channels import channel_of
from zapgate.clock import to_iso
from zapgate.phone import address_of


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class MessageStatus(StrEnum):
    """Status, ordered: a message never moves back (``failed`` ends it)."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"
    RECEIVED = "received"
    FAILED = "failed"
    REVOKED = "revoked"
    """Deleted for everyone (its text and file are gone)."""
    CANCELLED = "cancelled"
    """Deleted while queued: never sent."""


PROGRESS = (
    MessageStatus.QUEUED,
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.READ,
    MessageStatus.PLAYED,
)


def statuses_before(status: MessageStatus) -> list[str]:
    """The statuses an outbound message may move to ``status`` from."""
    return [s.value for s in PROGRESS[: PROGRESS.index(status)]]


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    tenant: str
    session: str
    direction: Direction
    chat_id: str
    sender: str
    recipient: str
    kind: str
    text: str | None
    status: MessageStatus
    error: str | None
    attempts: int
    engine_message_id: str | None
    created_at: int
    updated_at: int
    content: dict[str, Any] | None = None
    """What a message of a type other than text carries (``media``, ``location``, ``contact``,
    ``message_id`` and ``emoji`` of a reaction, ``voice``, ``poll`` with its ``votes``), and
    ``reply_to``, ``edited_at``, ``revoked_at``: its public fields."""
    media_id: str | None = None
    request_id: str | None = None
    """The ``X-Request-Id`` of the request that queued it (outbound): its ``message.sent`` and
    ``message.status`` events carry it (not in the wire form: the events say it)."""

    @classmethod
    def from_row(cls, row: Any) -> Message:
        """Build from a ``messages`` row mapping."""
        return cls(
            id=row["id"],
            tenant=row["tenant_id"],
            session=row["session"],
            direction=Direction(row["direction"]),
            chat_id=row["chat_id"],
            sender=row["sender"],
            recipient=row["recipient"],
            kind=row["kind"],
            text=row["text"],
            status=MessageStatus(row["status"]),
            error=row["error"],
            attempts=row["attempts"],
            engine_message_id=row["engine_message_id"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            content=row.get("content"),
            media_id=row.get("media_id"),
            request_id=row.get("request_id"),
        )

    def to_row(self) -> dict[str, Any]:
        """The ``messages`` row."""
        return {
            "id": self.id,
            "tenant_id": self.tenant,
            "session": self.session,
            "channel": channel_of(self.chat_id).value,
            "direction": self.direction.value,
            "chat_id": self.chat_id,
            "sender": self.sender,
            "recipient": self.recipient,
            "kind": self.kind,
            "text": self.text,
            "status": self.status.value,
            "error": self.error,
            "attempts": self.attempts,
            "engine_message_id": self.engine_message_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "content": self.content,
            "media_id": self.media_id,
            "request_id": self.request_id,
        }

    def public(self) -> dict[str, Any]:
        """The wire form (REST, events)."""
        plain = {
            "id": self.id,
            "session": self.session,
            "channel": channel_of(self.chat_id).value,
            "direction": self.direction.value,
            "chat_id": self.chat_id,
            "from": address_of(self.sender),
            "to": address_of(self.recipient),
            "type": self.kind,
            "text": self.text,
            "status": self.status.value,
            "error": self.error,
            "attempts": self.attempts,
            "engine_message_id": self.engine_message_id,
            "timestamp": to_iso(self.created_at),
            "updated_at": to_iso(self.updated_at),
        }
        if self.content:
            plain.update(self.content)
        return plain
