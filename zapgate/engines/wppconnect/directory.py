"""The WPPConnect engine's directory (``zapgate.engines.directory``): contacts, numbers, LIDs,
groups and read receipts, each one bridge request (see PROTOCOL.md) answered by the library.

What the page answers is checked again here (``mapping.person`` / ``mapping.group``): ids must
look like ids, lists are cut to the bridge's limits, and anything else is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from zapgate.engines.base import EngineError, PermanentEngineError
from zapgate.engines.directory import Group, GroupNotFound, NotAllowed, NotOnWhatsApp, Person
from zapgate.engines.wppconnect import mapping
from zapgate.phone import chat_id

CONTACTS_KEPT = 5000
GROUPS_KEPT = 500
URL_LIMIT = 2048
GROUP_ERRORS: Mapping[str, type[EngineError]] = {
    "group_not_found": GroupNotFound,
    "chat_not_found": GroupNotFound,
    "not_a_group": GroupNotFound,
    "group_not_exist": GroupNotFound,
    "not_allowed": NotAllowed,
    "group_you_are_not_admin": NotAllowed,
    "you_not_group_admin": NotAllowed,
    "group_participant_is_not_a_group_member": NotAllowed,
    "not_on_whatsapp": NotOnWhatsApp,
}
"""The bridge's and wa-js's error codes for group requests, as the directory's errors."""


class WppDirectory:
    """The directory part of ``WppConnectEngine`` (a mixin: it asks through the engine's bridge)."""

    if TYPE_CHECKING:

        async def _request(
            self,
            method: str,
            params: dict[str, Any],
            errors: Mapping[str, type[EngineError]] | None = None,
        ) -> Any: ...

    # Capability.CONTACTS ------------------------------------------------------------------

    async def contacts(self) -> list[Person]:
        """The address book (WhatsApp Web's contacts that are the account's own), each with
        the LID or number WhatsApp Web has paired it with, if any."""
        found = await self._request("contacts", {"limit": CONTACTS_KEPT})
        items = found[:CONTACTS_KEPT] if isinstance(found, list) else []
        return [person for item in items if (person := mapping.person(item)) is not None]

    async def lookup(self, address: str) -> Person | None:
        """Who a number (its canonical form, its LID) or a LID (its number) is."""
        return mapping.person(await self._request("lookup", {"id": chat_id(address)}))

    async def profile_picture(self, address: str) -> str | None:
        """The profile picture's URL (an ``https://`` URL, else None)."""
        found = await self._request("profile_picture", {"id": chat_id(address)})
        url = found.get("url") if isinstance(found, dict) else None
        ok = isinstance(url, str) and url.startswith("https://") and len(url) <= URL_LIMIT
        return url if ok else None

    # Capability.GROUPS --------------------------------------------------------------------

    async def groups(self) -> list[Group]:
        """The groups the account is in."""
        found = await self._request("groups", {"limit": GROUPS_KEPT}, GROUP_ERRORS)
        items = found[:GROUPS_KEPT] if isinstance(found, list) else []
        return [group for item in items if (group := mapping.group(item)) is not None]

    async def group(self, group_id: str) -> Group:
        return self._group(await self._request("group", {"groupId": group_id}, GROUP_ERRORS))

    async def create_group(self, name: str, participants: list[str]) -> Group:
        params = {"name": name, "participants": [chat_id(p) for p in participants]}
        return self._group(await self._request("create_group", params, GROUP_ERRORS))

    async def add_participants(self, group_id: str, participants: list[str]) -> Group:
        """Add ``participants`` (those already in stay as they are; one WhatsApp refuses, e.g.
        by their privacy settings, is simply not in the group answered)."""
        params = {"groupId": group_id, "participants": [chat_id(p) for p in participants]}
        return self._group(await self._request("add_participants", params, GROUP_ERRORS))

    async def remove_participants(self, group_id: str, participants: list[str]) -> Group:
        """Remove ``participants`` (those not in are ignored); the account leaves by
        ``leave_group``."""
        params = {"groupId": group_id, "participants": [chat_id(p) for p in participants]}
        return self._group(await self._request("remove_participants", params, GROUP_ERRORS))

    async def leave_group(self, group_id: str) -> None:
        await self._request("leave_group", {"groupId": group_id}, GROUP_ERRORS)

    @staticmethod
    def _group(found: Any) -> Group:
        group = mapping.group(found)
        if group is None:
            raise PermanentEngineError("WhatsApp Web answered no group")
        return group

    # Capability.CHATS ---------------------------------------------------------------------

    async def mark_read(self, chat_id: str) -> None:
        """Read receipts for ``chat_id`` (the library's ``sendSeen``)."""
        await self._request("mark_read", {"chatId": chat_id})
