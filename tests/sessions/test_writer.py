"""Session writes of many sessions share one job: creations, status and account reports."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, cast

from tests.support.events import EventWatcher, status_is
from zapgate.db.committer import Committer, UnitOfWork
from zapgate.errors import QuotaExceeded, SessionExists, Unavailable
from zapgate.events.model import EventType
from zapgate.services import Services
from zapgate.sessions import repository as session_store
from zapgate.sessions.model import NewSession
from zapgate.sessions.writer import SessionWriter

TENANT = "default"
WORKING = {"status": "WORKING", "status_reason": None}


def stopped(name: str) -> NewSession:
    return NewSession(TENANT, name, "simulator", desired="stopped")


def working_event() -> tuple[str, dict[str, object]]:
    return EventType.SESSION_STATUS, {"status": "WORKING", "reason": None}


class CountingCommitter:
    """The services' writer, counting the jobs handed to it."""

    def __init__(self, committer: Committer) -> None:
        self._committer = committer
        self.jobs = 0

    async def run(self, job: Any, background: str | None = None) -> Any:
        self.jobs += 1
        return await self._committer.run(job, background)


def counted(services: Services) -> tuple[SessionWriter, CountingCommitter]:
    """A writer over the services' committer, and the count of its jobs."""
    counter = CountingCommitter(services.committer)
    return SessionWriter(cast(Committer, counter)), counter


async def stopped_sessions(services: Services, count: int) -> list[str]:
    names = [f"w{index}" for index in range(count)]
    for name in names:
        await services.sessions.create(TENANT, name, "simulator", {}, {}, start=False)
    return names


async def test_reports_waiting_together_share_one_write_job(services: Services) -> None:
    names = await stopped_sessions(services, 10)
    writer, counter = counted(services)
    async with EventWatcher(services.bus) as watcher:
        stored = await asyncio.gather(
            *(writer.update(TENANT, name, WORKING, working_event()) for name in names)
        )
        for name in names:
            await watcher.wait_for(status_is(name, "WORKING"))
    assert counter.jobs == 1
    assert [(s.name, s.status.value) for s in stored if s] == [(n, "WORKING") for n in names]
    listed = {s.name: s.status.value for s in await services.sessions.list_sessions(TENANT)}
    assert all(listed[name] == "WORKING" for name in names)


async def test_a_report_for_a_session_that_is_gone_is_none_without_an_event(
    services: Services,
) -> None:
    (name,) = await stopped_sessions(services, 1)
    writer = SessionWriter(services.committer)
    async with EventWatcher(services.bus) as watcher:
        gone, kept = await asyncio.gather(
            writer.update(TENANT, "never-created", WORKING, working_event()),
            writer.update(TENANT, name, WORKING, working_event()),
        )
        await watcher.wait_for(status_is(name, "WORKING"))
    assert gone is None
    assert kept is not None
    assert "never-created" not in {e.session for e in watcher.seen}


async def test_a_report_that_cannot_be_written_fails_alone(services: Services) -> None:
    names = await stopped_sessions(services, 3)
    writer = SessionWriter(services.committer)
    unstorable = {"me": {"id": object()}}  # not JSON
    answers = await asyncio.gather(
        writer.update(TENANT, names[0], {"me": {"id": "1"}}),
        writer.update(TENANT, names[1], unstorable),
        writer.update(TENANT, names[2], {"me": {"id": "3"}}),
        return_exceptions=True,
    )
    assert isinstance(answers[1], Unavailable)
    assert [getattr(a, "me", None) for a in (answers[0], answers[2])] == [{"id": "1"}, {"id": "3"}]


async def test_a_report_cancelled_before_its_job_is_not_written(services: Services) -> None:
    names = await stopped_sessions(services, 2)
    writer = SessionWriter(services.committer)
    dropped = asyncio.create_task(writer.update(TENANT, names[0], WORKING))
    kept = asyncio.create_task(writer.update(TENANT, names[1], WORKING))
    await asyncio.sleep(0)  # both joined the job, which has not run yet
    dropped.cancel()
    assert (await kept) is not None
    assert dropped.cancelled()
    assert (await services.sessions.get(TENANT, names[0])).status.value == "STOPPED"


async def test_creations_waiting_together_check_their_names_in_one_job(
    services: Services,
) -> None:
    writer, counter = counted(services)
    limits = await services.limits.of(TENANT)
    answers = await asyncio.gather(
        *(writer.create(stopped(name), limits) for name in ("a", "b", "a", "default")),
        return_exceptions=True,
    )
    assert counter.jobs == 1
    assert [isinstance(a, SessionExists) for a in answers] == [False, False, True, True]
    names = [s.name for s in await services.sessions.list_sessions(TENANT)]
    assert names == ["a", "b", "default"]


async def test_creations_in_one_job_respect_the_session_quota(services: Services) -> None:
    writer = SessionWriter(services.committer)
    limits = replace(await services.limits.of(TENANT), sessions=3)  # "default" is one
    answers = await asyncio.gather(
        *(writer.create(stopped(f"q{index}"), limits) for index in range(4)),
        return_exceptions=True,
    )
    assert [isinstance(a, QuotaExceeded) for a in answers] == [False, False, True, True]
    assert len(await services.sessions.list_sessions(TENANT)) == 3


async def test_a_new_session_says_whether_messages_wait_under_its_name(
    services: Services,
) -> None:
    config = {"pairing": "manual"}
    await services.sessions.create(TENANT, "reused", "simulator", config, {}, start=False)
    await services.messages.accept(TENANT, "reused", "", "5511999999999", "left over")

    async def crash_mid_delete(unit: UnitOfWork) -> None:  # the row goes, the message stays
        await session_store.delete(unit.connection, TENANT, "reused")

    await services.committer.run(crash_mid_delete)
    writer = SessionWriter(services.committer)
    limits = await services.limits.of(TENANT)
    fresh = await writer.create(stopped("fresh"), limits)
    reused = await writer.create(stopped("reused"), limits)
    assert (fresh[1], reused[1]) == (False, True)
