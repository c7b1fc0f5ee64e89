"""Helpers for the Socket.IO tests: tenants with keys, committed events, held log reads."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import RunningServer
from tests.support.js_client import JsSocketClient, Line
from tests.support.tenants import tenant_key
from zapgate.db.committer import UnitOfWork
from zapgate.events import repository as event_log
from zapgate.events.model import Event, EventDraft
from zapgate.tenants import repository as tenant_store


def open_streams(server: RunningServer, key: str) -> int:
    """How many streams (sockets among them) ``key`` holds open now."""
    cached = server.services.auth.cached(key)
    assert cached is not None
    return server.services.limits.streams.open(cached.key_id)


async def tenant_with_key(server: RunningServer, tenant: str) -> str:
    """Create ``tenant`` and return a new API key of it."""

    async def job(unit: UnitOfWork) -> None:
        await tenant_store.ensure(unit.connection, tenant, tenant)

    await server.services.committer.run(job)
    return await tenant_key(server.services, tenant, "realtime test")


async def emit(server: RunningServer, tenant: str, *numbers: int, session: str = "s1") -> None:
    """Commit one ``test.event`` per number, one transaction each (payload ``{"n": number}``)."""
    for number in numbers:

        async def job(unit: UnitOfWork, n: int = number) -> None:
            unit.emit(EventDraft(tenant, session, "test.event", {"n": n}))

        await server.services.committer.run(job)


async def emit_many(server: RunningServer, tenant: str, count: int, session: str = "s1") -> None:
    """Commit ``count`` events in one transaction."""

    async def job(unit: UnitOfWork) -> None:
        for n in range(count):
            unit.emit(EventDraft(tenant, session, "test.event", {"n": n}))

    await server.services.committer.run(job)


def seqs(client: JsSocketClient) -> list[int]:
    """The seqs of every ``event`` the client printed so far."""
    return [
        line["args"][0]["seq"]
        for line in client.lines
        if line["kind"] == "event" and line["name"] == "event"
    ]


def got_seq(seq: int) -> Callable[[Line], bool]:
    """Predicate: an ``event`` with this seq."""
    return lambda line: (
        line["kind"] == "event" and line["name"] == "event" and line["args"][0]["seq"] == seq
    )


def named(name: str) -> Callable[[Line], bool]:
    """Predicate: a server event called ``name``."""
    return lambda line: line["kind"] == "event" and line["name"] == name


def connected(line: Line) -> bool:
    """Predicate: connected, or refused."""
    return line["kind"] in {"connect", "connect_error"}


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` holds, checking every 10 ms (for state with no event to await)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


AfterRead = Callable[[list[Event]], Awaitable[None]]


class HeldReads:
    """Replaces the event log's ``read_after``: reads of ``tenant`` wait until :meth:`release`.

    ``entered`` counts reads that reached the hold, ``cancelled`` those cancelled there.
    ``after_read`` (if given) runs after each read of ``tenant``, before the page is returned.
    """

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        tenant: str,
        held: bool = True,
        after_read: AfterRead | None = None,
    ) -> None:
        self.entered = 0
        self.cancelled = 0
        self._released = asyncio.Event()
        if not held:
            self._released.set()
        self._changed = asyncio.Event()
        real = event_log.read_after

        async def read_after(
            engine: AsyncEngine, of: str, after: int, limit: int, session: str | None = None
        ) -> list[Event]:
            if of != tenant:
                return await real(engine, of, after, limit, session)
            self.entered += 1
            self._notify()
            try:
                await self._released.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                self._notify()
                raise
            page = await real(engine, of, after, limit, session)
            if after_read is not None:
                await after_read(page)
            return page

        monkeypatch.setattr(event_log, "read_after", read_after)

    def release(self) -> None:
        """Let every held and future read through."""
        self._released.set()

    async def wait(self, predicate: Callable[[HeldReads], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate(self)`` holds."""
        async with asyncio.timeout(timeout):
            while not predicate(self):
                await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


def events_of(client: JsSocketClient) -> list[dict[str, Any]]:
    """Every ``event`` envelope the client printed so far."""
    return [
        line["args"][0]
        for line in client.lines
        if line["kind"] == "event" and line["name"] == "event"
    ]
