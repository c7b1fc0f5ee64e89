"""The simulator's directory (``zapgate.engines.directory``): an address book, LIDs, and groups.

A session's config lists its contacts (``contacts: [{"number", "name", "lid", "picture"}]``,
at most ``MAX_CONTACTS``). The rules for everyone else, chosen to be simple and deterministic:

- a number not in the book is on WhatsApp unless it ends in ``0000`` (the phone's own number
  and the echo contact always are);
- a number on WhatsApp has the LID its book entry gives, else one derived from the number
  (``derived_lid``: 15 digits, always the same for a number); a derived LID resolves back to its
  number once this phone has handed it out (the last ``LIDS_KEPT`` of them);
- a profile picture is the book entry's ``picture`` (None for everyone else).

Groups live in the engine's memory (gone when it restarts): at most ``MAX_GROUPS``, each with at
most ``MAX_PARTICIPANTS``. The phone creates them, so it is their owner and admin.
"""

from __future__ import annotations

import hashlib
import random
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from zapgate.engines.base import EngineNotReady, SessionStatus
from zapgate.engines.directory import (
    Group,
    GroupNotFound,
    NotAllowed,
    NotOnWhatsApp,
    Participant,
    Person,
)
from zapgate.errors import InvalidPhoneNumber
from zapgate.phone import address_of, chat_id, is_lid, normalize_address, normalize_number

if TYPE_CHECKING:
    from zapgate.engines.simulator_config import SimulatorConfig

MAX_CONTACTS = 1000
MAX_GROUPS = 100
MAX_PARTICIPANTS = 256
LIDS_KEPT = 10_000
READS_KEPT = 20
NOT_ON_WHATSAPP_SUFFIX = "0000"


class BookEntry(BaseModel):
    """A contact of the simulated phone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    number: str = Field(max_length=64, examples=["5511988887777"])
    name: str | None = Field(default=None, min_length=1, max_length=100)
    lid: str | None = Field(
        default=None, max_length=64, description="its LID (default: derived from the number)"
    )
    picture: str | None = Field(
        default=None, max_length=2048, pattern=r"^https://", description="profile picture URL"
    )

    @field_validator("number")
    @classmethod
    def _number(cls, value: str) -> str:
        try:
            return normalize_number(value)
        except InvalidPhoneNumber as error:
            raise ValueError(str(error)) from None

    @field_validator("lid")
    @classmethod
    def _lid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            lid = normalize_address(value)
        except InvalidPhoneNumber as error:
            raise ValueError(str(error)) from None
        if not is_lid(lid):
            raise ValueError("a LID is 6-20 digits and @lid, e.g. 123456789012345@lid")
        return lid


def _distinct(book: list[BookEntry]) -> list[BookEntry]:
    numbers = [entry.number for entry in book]
    lids = [entry.lid for entry in book if entry.lid is not None]
    if len(set(numbers)) != len(numbers) or len(set(lids)) != len(lids):
        raise ValueError("each number and each LID may appear once in contacts")
    return book


AddressBook = Annotated[list[BookEntry], Field(max_length=MAX_CONTACTS), AfterValidator(_distinct)]


def derived_lid(number: str) -> str:
    """The LID the simulator gives a number that its book gives none: 15 digits from a hash."""
    digest = int(hashlib.sha256(f"lid:{number}".encode()).hexdigest()[:16], 16)
    return f"{10**14 + digest % (9 * 10**14)}@lid"


@dataclass(slots=True)
class _Group:
    id: str
    name: str
    owner: str
    created_at_ms: int
    members: dict[str, Participant] = field(default_factory=dict)

    def frozen(self) -> Group:
        return Group(
            self.id, self.name, self.owner, self.created_at_ms, tuple(self.members.values())
        )


class SimulatedDirectory:
    """The directory part of ``SimulatorEngine`` (a mixin: it reads the engine's config)."""

    _config: SimulatorConfig
    _rng: random.Random
    _status: SessionStatus

    if TYPE_CHECKING:

        def _echo_contact(self) -> str: ...
        def _now_ms(self) -> int: ...

    _lids: OrderedDict[str, str] | None = None
    _groups_held: dict[str, _Group] | None = None
    _reads: deque[str] | None = None

    # Capability.CONTACTS ------------------------------------------------------------------

    async def contacts(self) -> list[Person]:
        """The address book."""
        self._require_connected()
        return [self._person(entry.number) for entry in self._config.contacts]

    async def lookup(self, address: str) -> Person | None:
        """Who ``address`` is (see the module for the rules)."""
        self._require_connected()
        if is_lid(address):
            number = self._number_of_lid(address)
            return None if number is None else self._person(number)
        return self._person(address)

    async def profile_picture(self, address: str) -> str | None:
        """The book entry's picture."""
        person = await self.lookup(address)
        if person is None or not person.on_whatsapp or person.number is None:
            raise NotOnWhatsApp(f"{address} is not on WhatsApp")
        entry = self._entry(person.number)
        return entry.picture if entry is not None else None

    def _person(self, number: str) -> Person:
        entry = self._entry(number)
        if entry is None and not self._on_whatsapp(number):
            return Person(number, None, None, on_whatsapp=False)
        lid = entry.lid if entry is not None and entry.lid else derived_lid(number)
        self._remember_lid(lid, number)
        return Person(number, lid, entry.name if entry is not None else None)

    def _entry(self, number: str) -> BookEntry | None:
        return next((e for e in self._config.contacts if e.number == number), None)

    def _on_whatsapp(self, number: str) -> bool:
        always = (self._config.own_number, self._echo_contact())
        return number in always or not number.endswith(NOT_ON_WHATSAPP_SUFFIX)

    def _number_of_lid(self, lid: str) -> str | None:
        entry = next((e for e in self._config.contacts if e.lid == lid), None)
        if entry is not None:
            return entry.number
        return self._lids.get(lid) if self._lids is not None else None

    def _remember_lid(self, lid: str, number: str) -> None:
        if self._lids is None:
            self._lids = OrderedDict()
        self._lids[lid] = number
        self._lids.move_to_end(lid)
        while len(self._lids) > LIDS_KEPT:
            self._lids.popitem(last=False)

    def sender_phone(self, sender: str) -> str | None:
        """The phone number of a LID ``sender``, when this phone knows it."""
        return self._number_of_lid(sender) if is_lid(sender) else None

    # Capability.GROUPS --------------------------------------------------------------------

    @property
    def _held_groups(self) -> dict[str, _Group]:
        if self._groups_held is None:
            self._groups_held = {}
        return self._groups_held

    async def groups(self) -> list[Group]:
        """The groups the phone is in, oldest first."""
        self._require_connected()
        return [group.frozen() for group in self._held_groups.values()]

    async def group(self, group_id: str) -> Group:
        """One group, with its participants."""
        self._require_connected()
        return self._group(group_id).frozen()

    async def create_group(self, name: str, participants: list[str]) -> Group:
        """A new group of the phone (owner and admin) and ``participants``."""
        self._require_connected()
        if len(self._held_groups) >= MAX_GROUPS:
            raise NotAllowed(f"the simulated phone is in {MAX_GROUPS} groups already")
        own = chat_id(self._config.own_number)
        digits = "".join(self._rng.choice("0123456789") for _ in range(12))
        group = _Group(f"1203630{digits}@g.us", name, own, self._now_ms())
        group.members[own] = Participant(own, admin=True, owner=True)
        self._admit(group, participants)
        self._held_groups[group.id] = group
        return group.frozen()

    async def add_participants(self, group_id: str, participants: list[str]) -> Group:
        """Add ``participants`` (those already in stay as they are)."""
        self._require_connected()
        group = self._group(group_id)
        self._admit(group, participants)
        return group.frozen()

    async def remove_participants(self, group_id: str, participants: list[str]) -> Group:
        """Remove ``participants`` (those not in are ignored); the phone leaves by
        ``leave_group``."""
        self._require_connected()
        group = self._group(group_id)
        ids = {chat_id(p) for p in participants}
        if group.owner in ids:
            raise NotAllowed("the account cannot remove itself: leave the group instead")
        for member in ids:
            group.members.pop(member, None)
        return group.frozen()

    async def leave_group(self, group_id: str) -> None:
        """Leave the group: the phone no longer sees it."""
        self._require_connected()
        self._held_groups.pop(self._group(group_id).id)

    def _group(self, group_id: str) -> _Group:
        group = self._held_groups.get(group_id)
        if group is None:
            raise GroupNotFound(f"the account is not in group {group_id}")
        return group

    def _admit(self, group: _Group, participants: list[str]) -> None:
        missing = [p for p in participants if not self._reachable(p)]
        if missing:
            raise NotOnWhatsApp(f"not on WhatsApp: {', '.join(missing)}")
        new = [chat_id(p) for p in dict.fromkeys(participants) if chat_id(p) not in group.members]
        if len(group.members) + len(new) > MAX_PARTICIPANTS:
            raise NotAllowed(f"a group has at most {MAX_PARTICIPANTS} participants")
        for member in new:
            group.members[member] = Participant(member)

    def _reachable(self, address: str) -> bool:
        if is_lid(address):
            return self._number_of_lid(address) is not None
        return self._on_whatsapp(address_of(address))

    # Capability.CHATS ---------------------------------------------------------------------

    async def mark_read(self, chat: str) -> None:
        """Read receipts for ``chat`` (kept in ``read_chats`` for tests)."""
        self._require_connected()
        self.read_chats.append(chat)

    @property
    def read_chats(self) -> deque[str]:
        """The chats marked read last, oldest first."""
        if self._reads is None:
            self._reads = deque(maxlen=READS_KEPT)
        return self._reads

    def _require_connected(self) -> None:
        if self._status is not SessionStatus.WORKING:
            raise EngineNotReady(f"the simulated phone is not connected ({self._status})")
