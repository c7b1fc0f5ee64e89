"""A connected socket: who it is (its principal) and which events it listens to."""

from __future__ import annotations

from dataclasses import dataclass

import socketio

from zapgate.auth.service import Principal
from zapgate.events.model import Event
from zapgate.limits.streams import StreamSlot
from zapgate.realtime.inputs import MAX_SESSIONS, InvalidInput
from zapgate.realtime.rooms import session_room, tenant_room


@dataclass(slots=True)
class Client:
    """One socket; ``sessions`` None means every event of the tenant.

    Its rooms are entered only once it may receive live events (at once, or when its replay
    starts); until then ``joined`` is False and subscriptions only change ``sessions``.
    """

    sid: str
    principal: Principal
    sessions: set[str] | None = None
    joined: bool = False
    slot: StreamSlot | None = None
    """Its key's stream slot, given back when it disconnects."""

    @property
    def tenant(self) -> str:
        """The tenant whose events it may see."""
        return self.principal.tenant

    def wants(self, event: Event) -> bool:
        """Whether ``event`` is for this socket (the same rule as its rooms)."""
        if event.tenant != self.tenant:
            return False
        return self.sessions is None or event.session in self.sessions

    def rooms(self) -> set[str]:
        """The rooms that deliver what it wants."""
        if self.sessions is None:
            return {tenant_room(self.tenant)}
        return {session_room(self.tenant, name) for name in self.sessions}

    def subscribe(self, name: str) -> None:
        """Listen to session ``name`` (instead of the whole tenant, if it listened to that)."""
        if self.sessions is None:
            self.sessions = set()
        if name not in self.sessions and len(self.sessions) >= MAX_SESSIONS:
            raise InvalidInput(f"at most {MAX_SESSIONS} sessions per socket")
        self.sessions.add(name)

    def unsubscribe(self, name: str) -> None:
        """Stop listening to session ``name`` (no effect when it listens to the whole tenant)."""
        if self.sessions is not None:
            self.sessions.discard(name)


async def join(sio: socketio.AsyncServer, client: Client) -> None:
    """Enter the client's rooms: from now on live events reach it."""
    client.joined = True
    for room in client.rooms():
        await sio.enter_room(client.sid, room)


async def move(sio: socketio.AsyncServer, client: Client, before: set[str]) -> None:
    """Bring a joined client's rooms from ``before`` to what it wants now."""
    if not client.joined:
        return
    after = client.rooms()
    for room in before - after:
        await sio.leave_room(client.sid, room)
    for room in after - before:
        await sio.enter_room(client.sid, room)
