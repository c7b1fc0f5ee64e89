"""Session writes of many sessions in one job: creations, and what running sessions report.

A node creating or starting thousands of sessions gets thousands of small writes at once: a new
row, then STARTING, the account, WORKING. One write job each costs a few statements apiece, run
one after another by the single writer, with every request's write queued behind them. Here the
writes of a kind waiting when the writer reaches their job share it: one query to check all the
new names, one ``executemany`` per kind of change, one read of the rows back, then the events in
order. Each write is answered once its transaction has committed, like any job; a shared job
that fails is tried again one write at a time, so a bad write fails alone; a write whose caller
was cancelled before its job ran is not made (as the job of a cancelled ``Committer.run``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

from zapgate.audit import actor as actors
from zapgate.channels import Channel
from zapgate.db.committer import Committer, UnitOfWork
from zapgate.errors import AppError, SessionExists, TenantSuspended
from zapgate.events.model import EventDraft
from zapgate.idempotency.service import Claim
from zapgate.limits.model import Limits
from zapgate.limits.service import LimitService
from zapgate.sessions import repository
from zapgate.sessions.model import NewSession, Session
from zapgate.tenants import repository as tenant_store
from zapgate.tenants.model import TenantStatus

BATCH_MAX = 500
"""Writes in one job (the queries bind two parameters a write)."""

I = TypeVar("I")  # noqa: E741 - the item
R = TypeVar("R")
Write = Callable[[UnitOfWork, list[I]], Awaitable[list[R | AppError]]]
"""Writes items in the unit; one answer per item, in order (an AppError refuses that item)."""


@dataclass(slots=True)
class _Waiting(Generic[I, R]):
    item: I
    answer: asyncio.Future[R]


class _Shared(Generic[I, R]):
    """Items that wait for the same job, written by ``write`` when the job runs."""

    def __init__(self, committer: Committer, write: Write[I, R], batch_max: int) -> None:
        self._committer = committer
        self._write = write
        self._batch_max = batch_max
        self._open: list[_Waiting[I, R]] | None = None
        """The items whose job has not run yet: a new item joins them."""
        self._jobs: set[asyncio.Task[None]] = set()

    async def submit(self, item: I) -> R:
        """Write ``item`` with the others waiting; its answer once committed (or its error)."""
        answer: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        waiting = _Waiting(item, answer)
        if self._open is not None and len(self._open) < self._batch_max:
            self._open.append(waiting)
        else:
            self._open = [waiting]
            self._submit(self._open)
        return await answer

    def _submit(self, batch: list[_Waiting[I, R]]) -> None:
        async def job(unit: UnitOfWork) -> None:
            if batch is self._open:
                self._open = None  # taken: later items make a new job
            live = [waiting for waiting in batch if not waiting.answer.cancelled()]
            if live:
                answers = await self._write(unit, [waiting.item for waiting in live])
                unit.committed.append(lambda: _answer(live, answers))

        task = asyncio.create_task(self._committer.run(job), name="session-writes")
        self._jobs.add(task)
        task.add_done_callback(lambda done: self._settle(batch, done))

    def _settle(self, batch: list[_Waiting[I, R]], done: asyncio.Task[None]) -> None:
        """After the job: on failure, each item again alone, or its caller gets the error."""
        self._jobs.discard(done)
        if batch is self._open:
            self._open = None  # the job never ran (the writer is stopped)
        unanswered = [waiting for waiting in batch if not waiting.answer.done()]
        if done.cancelled():
            for waiting in unanswered:
                waiting.answer.cancel()
            return
        error = done.exception() or RuntimeError("the write was not made")
        if len(unanswered) > 1:
            for waiting in unanswered:
                self._submit([waiting])
            return
        for waiting in unanswered:
            waiting.answer.set_exception(error)


def _answer(live: list[_Waiting[I, R]], answers: list[R | AppError]) -> None:
    for waiting, answer in zip(live, answers, strict=True):
        if waiting.answer.done():
            continue
        if isinstance(answer, AppError):
            waiting.answer.set_exception(answer)
        else:
            waiting.answer.set_result(answer)


@dataclass(frozen=True, slots=True)
class _Creation:
    new: NewSession
    limits: Limits
    claim: Claim | None


@dataclass(frozen=True, slots=True)
class _Report:
    tenant: str
    name: str
    values: dict[str, Any]
    event: tuple[str, dict[str, Any]] | None
    actor: str | None
    """Who caused it (a request's key; None for an engine's report): a shared job runs in a
    task of its own, so each report carries its caller's actor."""
    request_id: str | None
    """The id of the request that caused it, carried as ``actor`` is."""


class SessionWriter:
    """Creates sessions and writes their reports, many to a job (see the module)."""

    def __init__(
        self,
        committer: Committer,
        batch_max: int = BATCH_MAX,
        channel_of: Callable[[str], str] = lambda _engine: Channel.WHATSAPP,
    ) -> None:
        """``channel_of``: the channel of an engine (its sessions' events name it)."""
        self._creations = _Shared(committer, _create, batch_max)
        self._reports = _Shared(committer, partial(_update, channel_of), batch_max)

    async def create(
        self, new: NewSession, limits: Limits, claim: Claim | None = None
    ) -> tuple[Session, bool]:
        """Store a new session: SessionExists, or the ``sessions`` quota's error, if it cannot be.

        Returns it, and whether messages queued under its name wait in the outbox (left by an
        earlier session of that name).
        """
        return await self._creations.submit(_Creation(new, limits, claim))

    async def update(
        self,
        tenant: str,
        name: str,
        values: dict[str, Any],
        event: tuple[str, dict[str, Any]] | None = None,
    ) -> Session | None:
        """Set ``values`` on a session and emit ``event`` (type, payload) with it, once committed.

        Returns the session as stored, or None (and no event) when it is gone. One session's
        reports must set the same columns each time, or disjoint ones (status; account).
        """
        report = _Report(tenant, name, values, event, *actors.cause())
        return await self._reports.submit(report)


async def _create(
    unit: UnitOfWork, creations: list[_Creation]
) -> list[tuple[Session, bool] | AppError]:
    for creation in creations:
        if creation.claim is not None:
            await creation.claim.guard(unit)  # if it raises, each creation is tried alone
    active = {  # a tenant suspended or deleted since its request was admitted gets nothing
        tenant
        for tenant in dict.fromkeys(creation.new.tenant for creation in creations)
        if await tenant_store.status_of(unit.connection, tenant) == TenantStatus.ACTIVE
    }
    keys = [(creation.new.tenant, creation.new.name) for creation in creations]
    taken, queued = await repository.all_tenants_names_in_use(unit.connection, keys)
    used: dict[str, int] = {}
    answers: list[tuple[Session, bool] | AppError] = []
    rows = []
    for creation, key in zip(creations, keys, strict=True):
        tenant, name = key
        if tenant not in active:
            answers.append(TenantSuspended(f"tenant {tenant!r} is suspended or being deleted"))
            continue
        if key in taken:
            answers.append(SessionExists(f"a session named {name!r} exists"))
            continue
        if creation.limits.sessions:  # counting scans a tenant's sessions: only for a quota
            if tenant not in used:
                used[tenant] = await repository.count(unit.connection, tenant)
            if refusal := LimitService.no_room(creation.limits, "sessions", used[tenant]):
                answers.append(refusal.error)
                continue
            used[tenant] += 1
        taken.add(key)
        row = repository.new_row(creation.new)
        rows.append(row)
        answers.append((Session.from_row(row), key in queued))
    await repository.all_tenants_insert(unit.connection, rows)
    for creation, answer in zip(creations, answers, strict=True):
        if creation.claim is not None and not isinstance(answer, AppError):
            creation.claim.record(unit, answer[0])
    return answers


async def _update(
    channel_of: Callable[[str], str], unit: UnitOfWork, reports: list[_Report]
) -> list[Session | AppError | None]:
    changes = [(report.tenant, report.name, report.values) for report in reports]
    stored = await repository.all_tenants_update(unit.connection, changes)
    answers: list[Session | AppError | None] = []
    for report in reports:
        session = stored.get((report.tenant, report.name))
        if session is not None and report.event is not None:
            kind, payload = report.event
            unit.emit(
                EventDraft(
                    report.tenant,
                    report.name,
                    kind,
                    payload,
                    actor=report.actor,
                    request_id=report.request_id,
                    channel=channel_of(session.engine),
                )
            )
        answers.append(session)
    return answers
