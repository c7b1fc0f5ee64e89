"""What an engine may know of the account's world besides messages: contacts, numbers, LIDs and
groups, and how it marks chats read. Optional: an engine offers each part by its capability
(``Capability.CONTACTS``, ``GROUPS``, ``CHATS``) and these methods.

Addresses are normalised (``zapgate.phone.normalize_address``): a phone number's digits, or a
LID as ``<digits>@lid``. Group ids end in ``@g.us``. Methods raise ``EngineError`` subclasses
only: ``GroupNotFound`` for a group the account is not in, ``NotAllowed`` for a change the
account may not make (not a group admin), ``NotOnWhatsApp`` for a number without WhatsApp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from zapgate.engines.base import PermanentEngineError


@dataclass(frozen=True, slots=True)
class Person:
    """Someone on WhatsApp, by phone ``number`` and/or ``lid`` (each None when unknown)."""

    number: str | None
    lid: str | None
    name: str | None = None
    on_whatsapp: bool = True


@dataclass(frozen=True, slots=True)
class Participant:
    """A member of a group: its chat id (``<number>@c.us`` or ``<digits>@lid``)."""

    id: str
    admin: bool = False
    owner: bool = False


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    name: str
    owner: str | None
    created_at_ms: int
    participants: tuple[Participant, ...]


class GroupNotFound(PermanentEngineError):
    """The account is not in this group (or it does not exist)."""


class NotAllowed(PermanentEngineError):
    """The account may not do this (a group change that needs an admin)."""


class NotOnWhatsApp(PermanentEngineError):
    """A number that has no WhatsApp account."""


@runtime_checkable
class Contacts(Protocol):
    """``Capability.CONTACTS``."""

    async def contacts(self) -> list[Person]:
        """The address book (bounded by the engine)."""
        ...

    async def lookup(self, address: str) -> Person | None:
        """Who a number or LID is: both ids where known (``on_whatsapp`` False for a number
        without WhatsApp); None for a LID the engine cannot resolve."""
        ...

    async def profile_picture(self, address: str) -> str | None:
        """The URL of the profile picture (None: none, or hidden)."""
        ...


@runtime_checkable
class Groups(Protocol):
    """``Capability.GROUPS``."""

    async def groups(self) -> list[Group]: ...
    async def group(self, group_id: str) -> Group: ...
    async def create_group(self, name: str, participants: list[str]) -> Group: ...
    async def add_participants(self, group_id: str, participants: list[str]) -> Group: ...
    async def remove_participants(self, group_id: str, participants: list[str]) -> Group: ...
    async def leave_group(self, group_id: str) -> None: ...


@runtime_checkable
class ChatReader(Protocol):
    """``Capability.CHATS``: read receipts."""

    async def mark_read(self, chat_id: str) -> None:
        """Send read receipts for what was received in ``chat_id``."""
        ...


@runtime_checkable
class MessageReader(Protocol):
    """``Capability.CHATS`` where read receipts go by message: reading one marks the chat read
    up to it (the Cloud API)."""

    async def mark_message_read(self, engine_message_id: str) -> None:
        """Mark a received message (and those before it in its chat) read."""
        ...
