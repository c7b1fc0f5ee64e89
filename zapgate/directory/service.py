"""Directory use cases: contacts, numbers, LIDs and groups, asked of the session's engine.

Each needs the session running on this node with an engine that has the capability
(``Capability.CONTACTS`` or ``GROUPS``): otherwise 422 ``unsupported`` naming the engine, or 409
``session_not_running``. The engine's errors are translated here, once (``_translated``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from zapgate.engines.base import (
    Capability,
    Engine,
    EngineError,
    EngineNotReady,
    UnsupportedByEngine,
)
from zapgate.engines.directory import Contacts, Group, Groups, Person
from zapgate.engines.directory import GroupNotFound as EngineGroupNotFound
from zapgate.engines.directory import NotAllowed as EngineNotAllowed
from zapgate.engines.directory import NotOnWhatsApp as EngineNotOnWhatsApp
from zapgate.errors import (
    Conflict,
    ContactNotFound,
    GroupNotFound,
    NotOnWhatsApp,
    SessionNotReady,
    Unavailable,
    Unsupported,
)
from zapgate.sessions.service import SessionManager


class DirectoryService:
    def __init__(self, sessions: SessionManager) -> None:
        self._sessions = sessions

    # contacts -------------------------------------------------------------------------------

    async def contacts(self, tenant: str, session: str) -> list[Person]:
        """The engine's address book."""
        engine = await self._contacts(tenant, session)
        with _translated():
            return await engine.contacts()

    async def lookup(self, tenant: str, session: str, address: str) -> Person:
        """Who a number or LID is, with both ids where known: ContactNotFound for a LID the
        engine cannot resolve (a number without WhatsApp is answered, ``on_whatsapp`` False)."""
        engine = await self._contacts(tenant, session)
        with _translated():
            person = await engine.lookup(address)
        if person is None:
            raise ContactNotFound(f"the engine does not know who {address} is")
        return person

    async def picture(self, tenant: str, session: str, address: str) -> str | None:
        """The profile picture's URL (None: none, or hidden); ContactNotFound for a number
        without WhatsApp or an unknown LID."""
        person = await self.lookup(tenant, session, address)
        if not person.on_whatsapp:
            raise ContactNotFound(f"{address} is not on WhatsApp")
        engine = await self._contacts(tenant, session)
        with _translated():
            return await engine.profile_picture(address)

    # groups ---------------------------------------------------------------------------------

    async def groups(self, tenant: str, session: str) -> list[Group]:
        engine = await self._groups(tenant, session)
        with _translated():
            return await engine.groups()

    async def group(self, tenant: str, session: str, group_id: str) -> Group:
        engine = await self._groups(tenant, session)
        with _translated():
            return await engine.group(group_id)

    async def create_group(
        self, tenant: str, session: str, name: str, participants: list[str]
    ) -> Group:
        engine = await self._groups(tenant, session)
        with _translated():
            return await engine.create_group(name, participants)

    async def add_participants(
        self, tenant: str, session: str, group_id: str, participants: list[str]
    ) -> Group:
        engine = await self._groups(tenant, session)
        with _translated():
            return await engine.add_participants(group_id, participants)

    async def remove_participants(
        self, tenant: str, session: str, group_id: str, participants: list[str]
    ) -> Group:
        engine = await self._groups(tenant, session)
        with _translated():
            return await engine.remove_participants(group_id, participants)

    async def leave_group(self, tenant: str, session: str, group_id: str) -> None:
        engine = await self._groups(tenant, session)
        with _translated():
            await engine.leave_group(group_id)

    async def _contacts(self, tenant: str, session: str) -> Contacts:
        engine = await self._engine(tenant, session, Capability.CONTACTS)
        if not isinstance(engine, Contacts):
            raise Unsupported(f"engine {engine.name!r} does not support contacts")
        return engine

    async def _groups(self, tenant: str, session: str) -> Groups:
        engine = await self._engine(tenant, session, Capability.GROUPS)
        if not isinstance(engine, Groups):
            raise Unsupported(f"engine {engine.name!r} does not support groups")
        return engine

    async def _engine(self, tenant: str, session: str, needed: Capability) -> Engine:
        """The engine running the session here, if it has ``needed``."""
        found = await self._sessions.require(tenant, session)
        return self._sessions.running_engine(found, needed)


@contextmanager
def _translated() -> Iterator[None]:
    """The engine's errors as the API's."""
    try:
        yield
    except EngineGroupNotFound as error:
        raise GroupNotFound(str(error)) from None
    except EngineNotOnWhatsApp as error:
        raise NotOnWhatsApp(str(error)) from None
    except EngineNotAllowed as error:
        raise Conflict(str(error)) from None
    except EngineNotReady as error:
        raise SessionNotReady(str(error)) from None
    except UnsupportedByEngine as error:
        raise Unsupported(str(error)) from None
    except EngineError as error:
        if error.transient:
            raise Unavailable(f"the engine failed: {error}; retry later") from None
        raise Conflict(f"the engine refused: {error}") from None
