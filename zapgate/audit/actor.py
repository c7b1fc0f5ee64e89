"""Who is causing what is written now: the actor of the request in progress.

The HTTP edge opens an :class:`ActorRef` for each request (:func:`acting`); admission fills it
with the caller's key id (:func:`identify`: ``key_...``, ``jwt:<subject>``); it also holds the
request's id (``X-Request-Id``, ``zapgate.requests``), known when it opens. ``Committer.run``
reads both for each job (:func:`cause`), and the events the job emits carry them. Only the task
that opened it sees it: a task started during the request (a session's sender, an engine's
reports) inherits the context but not the actor nor the request id, so its events carry none,
and the ref is emptied when the request ends.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar, Token
from typing import Any

from zapgate.requests import REQUEST_ID


class ActorRef:
    """The caller of one request, once admission knows it, and the request's id; current while
    used as a context manager (:func:`acting`), emptied at its end."""

    __slots__ = ("_token", "actor", "owner", "request_id", "tenant")

    def __init__(self, owner: asyncio.Task[Any] | None, request_id: str | None = None) -> None:
        self.owner = owner
        self.actor: str | None = None
        self.tenant: str | None = None
        self.request_id = request_id
        self._token: Token[ActorRef | None] | None = None

    def __enter__(self) -> ActorRef:
        self._token = _current.set(self)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.owner = self.actor = self.request_id = None
        if self._token is not None:
            _current.reset(self._token)


_current: ContextVar[ActorRef | None] = ContextVar("zapgate_actor", default=None)


def acting() -> ActorRef:
    """An empty ref for the request this task serves (with its id, set before: see
    ``zapgate.requests``): ``with acting() as ref: ...``."""
    return ActorRef(asyncio.current_task(), REQUEST_ID.get())


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


def cause() -> tuple[str | None, str | None]:
    """The actor and the id of the request this task serves (either None: not identified, or
    no request, or not its task): what the events it writes carry."""
    ref = _current.get()
    if ref is None or ref.owner is not asyncio.current_task():
        return None, None
    return ref.actor, ref.request_id


def request_id() -> str | None:
    """The id of the request this task serves, or None (no request, or not its task)."""
    return cause()[1]


def opened() -> ActorRef | None:
    """The ref of the request this task serves (identified or not), or None."""
    ref = _current.get()
    return ref if ref is not None and ref.owner is asyncio.current_task() else None
