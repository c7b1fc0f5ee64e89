"""A chat as the domain sees it: a conversation of a session's stored history."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zapgate.clock import to_iso
from zapgate.messages.model import Message
from zapgate.phone import is_lid, number_of


@dataclass(frozen=True, slots=True)
class Chat:
    tenant: str
    session: str
    chat_id: str
    last: Message
    """The newest message, either way."""
    unread: int
    """Inbound messages after ``read_up_to``."""
    read_up_to: str | None
    read_at: int | None
    phone: str | None
    """A LID chat: the phone number last received with it."""

    @classmethod
    def from_row(cls, row: Any) -> Chat:
        """Build from a row of ``chats`` joined with its last ``messages`` row."""
        last = Message.from_row(row)
        return cls(
            tenant=last.tenant,
            session=last.session,
            chat_id=row["chat_id"],
            last=last,
            unread=row["unread"],
            read_up_to=row["read_up_to"],
            read_at=row["read_at"],
            phone=row["phone"],
        )

    def public(self) -> dict[str, Any]:
        """The wire form."""
        user = self.chat_id.endswith("@c.us")
        return {
            "id": self.chat_id,
            "phone": number_of(self.chat_id) if user else self.phone,
            "lid": self.chat_id if is_lid(self.chat_id) else None,
            "unread_count": self.unread,
            "read_up_to": self.read_up_to,
            "read_at": to_iso(self.read_at) if self.read_at is not None else None,
            "last_activity": to_iso(self.last.created_at),
            "last_message": self.last.public(),
        }
