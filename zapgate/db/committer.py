"""Group commit: concurrent writes share one transaction, and their events share one append.

Every state change that emits an event goes through ``Committer.run``. A single writer loop takes
all jobs waiting at that moment, runs them in one transaction, allocates their events' seqs,
commits once and then publishes the events. Under load this turns N fsyncs into one; alone, a job
commits at once. If a batch fails, its jobs are retried one by one so a bad job fails alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapgate.audit import actor as actors
from zapgate.errors import AppError, SessionNotFound, Unavailable
from zapgate.events import repository as event_log
from zapgate.events.bus import EventBus
from zapgate.events.model import Event, EventDraft
from zapgate.tasks import cancel_and_wait

T = TypeVar("T")
MissingSessions = Callable[
    [AsyncConnection, list[tuple[str, str]]], Awaitable[set[tuple[str, str]]]
]
STOP_DRAIN_SECONDS = 30.0
BACKGROUND_PER_BATCH = 128
"""Background jobs (records no request waits for) in one transaction, after the requests'.
Each is a few deferred rows; 32 made webhook lanes wait on their bookkeeping (drain 1,900-2,300
deliveries/s against 3,500 at 128, same sitting)."""
log = logging.getLogger(__name__)


class UnitOfWork:
    """What a job sees: the transaction's connection, deferred bulk inserts and event emission."""

    def __init__(self, connection: AsyncConnection, missing_sessions: MissingSessions) -> None:
        self.connection = connection
        self._missing_sessions = missing_sessions
        self._inserts: dict[sa.Table, list[dict[str, Any]]] = defaultdict(list)
        self._updates: dict[_UpdateShape, list[dict[str, Any]]] = defaultdict(list)
        self._events: list[EventDraft] = []
        self._sessions: set[tuple[str, str]] = set()
        self._steps: list[Callable[[AsyncConnection], Awaitable[None]]] = []
        self.committed: list[Callable[[], None]] = []
        """Callbacks run once the transaction is committed (never if it fails): how a job
        updates in-memory state, since a job may run twice and must touch only its unit."""
        self.scratch: dict[Any, Any] = {}
        """State shared by the jobs of one transaction (e.g. counters loaded once per batch)."""
        self.actor: str | None = None
        """Who caused the job running now (``Committer.run`` took it from its caller): the
        events it emits carry it."""
        self.request_id: str | None = None
        """The id of the request that caused the job running now, taken as ``actor`` is."""

    def require_session(self, tenant: str, name: str) -> None:
        """Fail the write (SessionNotFound) unless the session exists when it commits.

        Checked once per batch for every session its jobs touch, so a send racing a delete
        cannot leave a message queued for a session that is gone.
        """
        self._sessions.add((tenant, name))

    def insert(self, table: sa.Table, row: dict[str, Any]) -> None:
        """Insert ``row`` when the batch flushes (one executemany per table)."""
        self._inserts[table].append(row)

    def update(self, table: sa.Table, match: dict[str, Any], values: dict[str, Any]) -> None:
        """Set ``values`` on the rows whose columns equal ``match`` when the batch flushes,
        after its inserts; updates of one shape share one executemany. Nothing in the batch
        reads the rows back, so use it for bookkeeping only."""
        shape = _UpdateShape(table, tuple(sorted(match)), tuple(sorted(values)))
        self._updates[shape].append(
            {**{f"m_{k}": v for k, v in match.items()}, **{f"v_{k}": v for k, v in values.items()}}
        )

    def at_flush(self, step: Callable[[AsyncConnection], Awaitable[None]]) -> None:
        """Run ``step`` once at the flush, after the deferred inserts: how jobs that each note
        a little (in ``scratch``) write it for the whole batch in one statement."""
        self._steps.append(step)

    def emit(self, draft: EventDraft) -> None:
        """Append ``draft`` to the log in this transaction, with the job's actor unless it
        names its own (a job shared by several callers does), and the id of the job's request
        if it has one, else the draft's own (a message's events name the request that queued
        it)."""
        actor = draft.actor or self.actor
        request = self.request_id or draft.request_id
        if actor is not draft.actor or request is not draft.request_id:
            draft = replace(draft, actor=actor, request_id=request)
        self._events.append(draft)

    async def flush(self) -> list[Event]:
        """Check required sessions, write the deferred rows, then the events."""
        if self._sessions:
            await self._check_sessions()
        for table, rows in self._inserts.items():
            await self.connection.execute(_insert_statement(table), rows)
        self._inserts.clear()
        for step in self._steps:
            await step(self.connection)
        self._steps.clear()
        for shape, params in self._updates.items():
            await self.connection.execute(_update_statement(shape), params)
        self._updates.clear()
        placed: list[Event] = []
        if self._events:
            placed = await event_log.all_tenants_append(self.connection, self._events)
        self._events.clear()
        return placed

    async def _check_sessions(self) -> None:
        wanted = sorted(self._sessions)
        self._sessions.clear()
        missing = await self._missing_sessions(self.connection, wanted)
        if missing:
            names = ", ".join(repr(name) for _, name in sorted(missing))
            raise SessionNotFound(f"no session {names}")


@dataclass(frozen=True, slots=True)
class _UpdateShape:
    table: sa.Table
    match: tuple[str, ...]
    values: tuple[str, ...]


@lru_cache(maxsize=64)
def _insert_statement(table: sa.Table) -> sa.Insert:
    """``INSERT INTO table``, built once: a statement reused keeps its cache key."""
    return table.insert()


@lru_cache(maxsize=64)
def _update_statement(shape: _UpdateShape) -> sa.Update:
    """``UPDATE table SET v... WHERE m...``, built once per shape."""
    columns = shape.table.c
    where = [columns[name] == sa.bindparam(f"m_{name}") for name in shape.match]
    values: dict[str, Any] = {name: sa.bindparam(f"v_{name}") for name in shape.values}
    return sa.update(shape.table).where(*where).values(values)


class Refusal:
    """What a job returns, instead of raising, to refuse before it has written anything (a full
    quota): the transaction commits for every other job of the batch and ``run`` raises
    ``error`` to this job's caller. Raising instead would roll the whole batch back and retry
    every job alone, one fsync each, for every tenant."""

    __slots__ = ("error",)

    def __init__(self, error: AppError) -> None:
        self.error = error


Job = Callable[[UnitOfWork], Awaitable[T]]


@dataclass(slots=True)
class _Pending(Generic[T]):
    job: Job[T]
    actor: str | None
    request_id: str | None
    future: asyncio.Future[T] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Committer:
    """The single writer of a process.

    ``missing_sessions`` answers ``UnitOfWork.require_session`` (which of these sessions are not
    stored); it is passed in so this module knows no domain table.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        bus: EventBus,
        missing_sessions: MissingSessions,
        batch_max: int = 256,
    ) -> None:
        self._engine = engine
        self._bus = bus
        self._missing_sessions = missing_sessions
        self._batch_max = batch_max
        self._urgent: deque[_Pending[Any]] = deque()
        self._background: dict[str, deque[_Pending[Any]]] = {}
        self._turns: deque[str] = deque()  # tenants with background work, in round-robin order
        self._ready = asyncio.Event()
        self._unfinished = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.jobs = 0
        self.observe: Callable[[list[Event], int, float], None] | None = None
        """Told of every batch committed here: its events, its writes and its seconds
        (metrics)."""
        self.announce: Callable[[list[Event]], None] | None = None
        """Cluster mode: told of every batch of events committed here (after the bus), so the
        other nodes read them."""

    def start(self) -> None:
        """Start the writer loop."""
        self._task = asyncio.create_task(self._loop(), name="zapgate-committer")

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._task is None:
            return
        try:
            async with asyncio.timeout(STOP_DRAIN_SECONDS):
                await self._idle.wait()
        except TimeoutError:
            log.error("the writer did not drain in %s s; stopping it anyway", STOP_DRAIN_SECONDS)
        await cancel_and_wait(self._task)
        self._task = None

    async def run(
        self, job: Callable[[UnitOfWork], Awaitable[T | Refusal]], background: str | None = None
    ) -> T:
        """Run ``job`` in a (shared) transaction; returns once it is committed and published.

        ``background`` (a tenant) marks work no request is waiting for (webhook bookkeeping,
        send and ack records): at most ``BACKGROUND_PER_BATCH`` such jobs go in a transaction,
        after every request's job and taken from the tenants in turn, so a flood of one
        tenant's background work never makes a request, or another tenant's work, wait behind
        it. Jobs keep their order among a tenant's background jobs, and among request jobs.
        The events ``job`` emits carry the actor and the id of the request this task serves,
        if any (``zapgate.audit.actor``).
        """
        if self._task is None:
            raise Unavailable("the writer is not running")
        pending: _Pending[T | Refusal] = _Pending(job, *actors.cause())
        if background is None:
            self._urgent.append(pending)
        else:
            if background not in self._background:
                self._background[background] = deque()
                self._turns.append(background)
            self._background[background].append(pending)
        self._unfinished += 1
        self._idle.clear()
        self._ready.set()
        result = await pending.future
        if isinstance(result, Refusal):
            raise result.error
        return result

    async def _loop(self) -> None:
        while True:
            while not self._urgent and not self._turns:
                self._ready.clear()
                await self._ready.wait()
            batch = self._take()
            try:
                await self._commit_batch(batch)
            finally:
                self._unfinished -= len(batch)
                if not self._unfinished:
                    self._idle.set()

    def _take(self) -> list[_Pending[Any]]:
        batch: list[_Pending[Any]] = []
        while self._urgent and len(batch) < self._batch_max:
            batch.append(self._urgent.popleft())
        room = min(BACKGROUND_PER_BATCH, max(1, self._batch_max - len(batch)))  # never starved
        while self._turns and room > 0:
            tenant = self._turns.popleft()
            queue = self._background[tenant]
            batch.append(queue.popleft())
            room -= 1
            if queue:
                self._turns.append(tenant)
            else:
                del self._background[tenant]
        return batch

    async def _commit_batch(self, batch: list[_Pending[Any]]) -> None:
        live = [p for p in batch if not p.future.cancelled()]
        if not live:
            return
        began = time.perf_counter()
        try:
            results, events = await self._transaction(live)
        except Exception as error:
            if len(live) == 1:
                _fail(live[0], error)
                return
            for pending in live:
                await self._commit_batch([pending])
            return
        self.batches += 1
        self.jobs += len(live)
        if self.observe is not None:
            self.observe(events, len(live), time.perf_counter() - began)
        self._bus.publish(events)
        if self.announce is not None and events:
            self.announce(events)
        for pending, result in zip(live, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(result)

    async def _transaction(self, batch: list[_Pending[Any]]) -> tuple[list[Any], list[Event]]:
        async with self._engine.begin() as connection:
            unit = UnitOfWork(connection, self._missing_sessions)
            results = []
            for pending in batch:
                unit.actor, unit.request_id = pending.actor, pending.request_id
                results.append(await pending.job(unit))
            events = await unit.flush()
        for callback in unit.committed:
            try:
                callback()
            except Exception:
                log.exception("an after-commit callback failed")
        return results, events


def _fail(pending: _Pending[Any], error: BaseException) -> None:
    if pending.future.done():
        return
    if isinstance(error, AppError):
        pending.future.set_exception(error)
    elif isinstance(error, SQLAlchemyError | OSError):
        log.error("write failed: %s", error)
        pending.future.set_exception(Unavailable("the database refused the write; retry later"))
    else:
        pending.future.set_exception(error)
