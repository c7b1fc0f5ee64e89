"""Who is causing what is written now: the actor of the request in progress.

The HTTP edge opens an :class:`ActorRef` for each request (:func:`acting`); admission fills it
with the caller's key id (:func:`identify`: ``key_...``, ``jwt:<subject>``). ``Committer.run``
reads it for each job (:func:`current`), and the events the job emits carry it. Only the task
that opened it sees it: a task started during the request (a session's sender, an engine's
reports) inherits the context but not the actor, so its events carry none, and the ref is
emptied when the request ends.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar, Token
from typing import Any


class ActorRef:
    """The caller of one request, once admission knows it; current while used as a context
    manager (:func:`acting`), emptied at its end."""

    __slots__ = ("_token", "actor", "owner", "tenant")

    def __init__(self, owner: asyncio.Task[Any] | None) -> None:
        self.owner = owner
        self.actor: str | None = None
        self.tenant: str | None = None
        self._token: Token[ActorRef | None] | None = None

    def __enter__(self) -> ActorRef:
        self._token = _current.set(self)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.owner = self.actor = None
        if self._token is not None:
            _current.reset(self._token)


_current: ContextVar[ActorRef | None] = ContextVar("zapgate_actor", default=None)


def acting() -> ActorRef:
    """An empty ref for the request this task serves: ``with acting() as ref: ...``."""
    return ActorRef(asyncio.current_task())


def identify(actor: str, tenant: str) -> None:
    """Name the caller of the request this task serves (nothing outside a request)."""
    ref = _current.get()
    if ref is not None and ref.owner is asyncio.current_task():
        ref.actor, ref.tenant = actor, tenant


def current() -> str | None:
    """The actor of the request this task serves, or None (no request, or not its task)."""
    ref = _current.get()
    if ref is None or ref.actor is None or ref.owner is not asyncio.current_task():
        return None
    return ref.actor


def opened() -> ActorRef | None:
    """The ref of the request this task serves (identified or not), or None."""
    ref = _current.get()
    return ref if ref is not None and ref.owner is asyncio.current_task() else None
