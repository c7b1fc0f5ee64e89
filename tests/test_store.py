"""The store, on a SQLite file and on PostgreSQL: migrations, the event log, messages, keys."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.tenants import tenant_key
from zapgate.db.committer import UnitOfWork
from zapgate.db.gather import Gathering
from zapgate.db.migrate import migrate
from zapgate.db.tables import messages as messages_table
from zapgate.db.tables import tenants as tenant_table
from zapgate.engines.base import AckStatus, InboundMessage
from zapgate.errors import Conflict, MessageNotFound, Unauthorized
from zapgate.events import repository as event_log
from zapgate.events.model import EventDraft
from zapgate.messages import repository as message_store
from zapgate.messages.model import Direction, MessageStatus
from zapgate.messages.repository import HistoryQuery
from zapgate.services import Services
from zapgate.tenants import repository as tenant_store


async def emit(services: Services, tenant: str, count: int) -> None:
    async def job(unit: UnitOfWork) -> None:
        for index in range(count):
            unit.emit(EventDraft(tenant, None, "test.event", {"n": index}))

    await services.committer.run(job)


async def make_tenant(services: Services, tenant: str) -> None:
    async def job(unit: UnitOfWork) -> None:
        await tenant_store.ensure(unit.connection, tenant, tenant)

    await services.committer.run(job)


async def test_migrations_are_idempotent_and_create_the_default(services: Services) -> None:
    await migrate(services.database)
    session = await services.sessions.get("default", "default")
    assert session.engine == "simulator"
    async with services.database.connect() as connection:
        version = await connection.scalar(sa.text("SELECT version_num FROM alembic_version"))
    assert version == head_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from zapgate.db.migrate import MIGRATIONS_DIR

    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert head is not None
    return head


async def test_event_seq_is_gapless_per_tenant_under_concurrency(services: Services) -> None:
    await make_tenant(services, "acme")
    start_default = await event_log.last_seq(services.database, "default")
    jobs = [emit(services, "default" if i % 3 else "acme", 1 + i % 4) for i in range(60)]
    await asyncio.gather(*jobs)
    default = await event_log.read_after(services.database, "default", start_default, 10_000)
    acme = await event_log.read_after(services.database, "acme", 0, 10_000)
    assert [e.seq for e in default] == list(
        range(start_default + 1, start_default + 1 + len(default))
    )
    assert [e.seq for e in acme] == list(range(1, len(acme) + 1))
    expected_acme = sum(1 + i % 4 for i in range(60) if i % 3 == 0)
    assert len(acme) == expected_acme
    assert all(e.tenant == "acme" for e in acme)
    assert services.committer.batches < services.committer.jobs, "concurrent jobs were not grouped"


async def test_a_failing_job_fails_alone(services: Services) -> None:
    async def bad(unit: UnitOfWork) -> None:
        unit.emit(EventDraft("default", None, "test.bad", {}))
        raise Conflict("this one is refused")

    before = await event_log.last_seq(services.database, "default")
    results = await asyncio.gather(
        emit(services, "default", 1),
        services.committer.run(bad),
        emit(services, "default", 1),
        return_exceptions=True,
    )
    assert results[0] is None
    assert results[2] is None
    assert isinstance(results[1], Conflict)
    events = await event_log.read_after(services.database, "default", before, 100)
    mine = [e for e in events if e.type.startswith("test.")]
    assert [e.type for e in mine] == ["test.event", "test.event"]


async def test_message_lifecycle_is_monotonic(services: Services) -> None:
    message = await services.messages.accept("default", "default", "", "5511999999999", "hi")
    assert message.status is MessageStatus.QUEUED
    sent = await services.messages.record_sent(message, "eng-1")
    assert sent is not None
    assert sent.status is MessageStatus.SENT
    read = await services.messages.record_ack("default", "default", "eng-1", AckStatus.READ)
    assert read is not None
    assert read.status is MessageStatus.READ
    back = await services.messages.record_ack("default", "default", "eng-1", AckStatus.DELIVERED)
    assert back is None
    assert (await services.messages.get("default", message.id)).status is MessageStatus.READ
    assert await services.messages.record_failed(read, "late failure") is None


async def test_an_ack_before_the_sent_record_is_applied(services: Services) -> None:
    await services.sessions.shutdown()  # keep the sender from racing this test
    message = await services.messages.accept("default", "default", "", "5511999999999", "hi")
    early = await services.messages.record_ack("default", "default", "eng-2", AckStatus.DELIVERED)
    assert early is None
    await services.messages.record_sent(message, "eng-2")
    stored = await services.messages.get("default", message.id)
    assert stored.status is MessageStatus.DELIVERED


async def test_history_is_scoped_by_tenant(services: Services) -> None:
    await make_tenant(services, "acme")
    inbound = InboundMessage("e-1", "5511988887777", "5511000000000", "text", "secret", 1)
    stored = await services.messages.record_inbound("default", "default", inbound)
    with pytest.raises(MessageNotFound):
        await services.messages.get("acme", stored.id)
    page = await services.messages.history(HistoryQuery(tenant="acme", session="default", limit=10))
    assert page == []
    mine = await services.messages.history(
        HistoryQuery(tenant="default", session="default", limit=10, direction=Direction.IN)
    )
    assert [m.id for m in mine] == [stored.id]


async def test_messages_are_stored_with_their_event_atomically(services: Services) -> None:
    await services.sessions.shutdown()
    before = await event_log.last_seq(services.database, "default")
    message = await services.messages.accept("default", "default", "", "5511999999999", "x")
    events = await event_log.read_after(services.database, "default", before, 10)
    about_messages = [e for e in events if e.type.startswith("message.")]
    assert [(e.type, e.payload["id"]) for e in about_messages] == [("message.queued", message.id)]
    async with services.database.connect() as connection:
        count = await connection.scalar(
            sa.select(sa.func.count())
            .select_from(messages_table)
            .where(messages_table.c.id == message.id)
        )
    assert count == 1


async def test_api_keys_are_hashed_and_verified(services: Services) -> None:
    key = await tenant_key(services, "acme", "ci")
    principal = await services.auth.authenticate(key)
    assert principal.tenant == "acme"
    async with services.database.connect() as connection:
        hashes = (
            (await connection.execute(sa.text("SELECT key_hash FROM api_keys"))).scalars().all()
        )
    assert key not in hashes
    assert all(len(h) == 64 for h in hashes)
    for wrong in ["", key[:-1], key + "a", "zg_" + "0" * 12 + "_x"]:
        with pytest.raises(Unauthorized):
            await services.auth.authenticate(wrong)


async def test_a_replaced_configured_key_stops_working(services: Services) -> None:
    old = services.settings.api_key
    assert old is not None
    assert (await services.auth.authenticate(old)).tenant == "default"
    new = "another-configured-admin-key-123"
    await services.auth.bootstrap("default", new)
    services.auth._cache.clear()
    assert (await services.auth.authenticate(new)).tenant == "default"
    with pytest.raises(Unauthorized):
        await services.auth.authenticate(old)


async def test_a_send_for_a_deleted_session_fails_alone(services: Services) -> None:
    from zapgate.errors import SessionNotFound

    await services.sessions.create("default", "doomed", "simulator", {}, {}, start=False)
    await services.sessions.delete("default", "doomed")
    results = await asyncio.gather(
        services.messages.accept("default", "default", "", "5511999999999", "ok 1"),
        services.messages.accept("default", "doomed", "", "5511999999999", "lost?"),
        services.messages.accept("default", "default", "", "5511999999999", "ok 2"),
        return_exceptions=True,
    )
    assert isinstance(results[1], SessionNotFound)
    assert [r.text for r in (results[0], results[2])] == ["ok 1", "ok 2"]  # type: ignore[union-attr]
    doomed = await services.messages.history(
        HistoryQuery(tenant="default", session="doomed", limit=10)
    )
    assert doomed == []


async def test_background_work_never_makes_a_request_wait_behind_all_of_it(
    services: Services,
) -> None:
    from zapgate.db.committer import BACKGROUND_PER_BATCH

    gate = asyncio.Event()
    batches: list[list[str]] = []

    def job(name: str, hold: bool = False) -> Any:
        async def run(unit: UnitOfWork) -> None:
            if "batch" not in unit.scratch:
                unit.scratch["batch"] = len(batches)
                batches.append([])
            batches[unit.scratch["batch"]].append(name)
            if hold:
                await gate.wait()

        return run

    committer = services.committer
    first = asyncio.create_task(committer.run(job("first", hold=True)))
    while not batches:  # the writer is busy with the first job
        await asyncio.sleep(0)
    background = [
        asyncio.create_task(committer.run(job(f"bg{i}"), background="default")) for i in range(200)
    ]
    request = asyncio.create_task(committer.run(job("request")))
    other = asyncio.create_task(committer.run(job("other tenant"), background="acme"))
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(first, request, other, *background)
    order = batches
    assert order[0] == ["first"]
    assert order[1][0] == "request", "the request's job went first in the next transaction"
    assert len(order[1]) == 1 + BACKGROUND_PER_BATCH
    assert "other tenant" in order[1], "another tenant's work took its turn, not the last place"
    done = [name for names in order[1:] for name in names if name.startswith("bg")]
    assert done == [f"bg{i}" for i in range(200)], "background work keeps its order"


async def test_start_up_objects_are_out_of_the_collectors_sight(services: Services) -> None:
    import gc

    assert gc.get_freeze_count() > 10_000, "full collections would walk every start-up object"


async def test_a_refusal_fails_only_its_own_job_and_keeps_the_batch(services: Services) -> None:
    from zapgate.db.committer import Refusal
    from zapgate.errors import QuotaExceeded

    async def fine(unit: UnitOfWork) -> int:
        return 1

    async def refused(unit: UnitOfWork) -> Refusal:
        return Refusal(QuotaExceeded("full"))

    committer = services.committer
    before = committer.batches
    jobs = [committer.run(fine) for _ in range(100)]
    results = await asyncio.gather(
        *jobs[:50], committer.run(refused), *jobs[50:], return_exceptions=True
    )
    assert isinstance(results[50], QuotaExceeded)
    assert results.count(1) == 100
    assert committer.batches - before <= 3, "a refusal must not split the batch into 101"


async def test_deferred_updates_land_after_the_batchs_inserts_in_one_statement_per_shape(
    services: Services,
) -> None:
    await make_tenant(services, "upd")
    await make_tenant(services, "other")

    def row(tenant: str, name: str) -> dict[str, Any]:
        return {"id": name, "tenant_id": tenant, "name": name, "last_seq": 0, "created_at": 1}

    async def insert_and_update(unit: UnitOfWork) -> None:
        unit.insert(tenant_table, row("upd", "t-a"))
        unit.insert(tenant_table, row("upd", "t-b"))
        unit.update(tenant_table, {"id": "t-a"}, {"name": "renamed a"})
        unit.update(tenant_table, {"id": "t-b"}, {"name": "renamed b"})
        unit.update(tenant_table, {"id": "nobody"}, {"name": "no row: nothing happens"})

    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(services.database.sync_engine, "before_cursor_execute", count)
    try:
        await services.committer.run(insert_and_update)
    finally:
        sa.event.remove(services.database.sync_engine, "before_cursor_execute", count)
    async with services.database.connect() as connection:
        names = dict(
            (await connection.execute(sa.select(tenant_table.c.id, tenant_table.c.name))).all()
        )
    assert names["t-a"] == "renamed a"
    assert names["t-b"] == "renamed b"
    assert "nobody" not in names
    assert names["other"] == "other", "an update touches only the rows it matches"
    renames = [s for s in statements if "SET name" in s]
    assert len(renames) == 1, "the three updates of one shape went in one executemany"


@pytest.mark.parametrize(
    "filters",
    [
        (False, False, False, False, False),
        (False, False, False, False, True),
        (True, False, False, False, True),
        (False, False, False, True, False, True),
        (False, False, True, True, True, True),
        (True, True, False, True, True, True),
    ],
    ids=[
        "newest page",
        "cursor page",
        "chat cursor page",
        "until page",
        "window cursor page",
        "chat direction until cursor page",
    ],
)
async def test_history_pages_seek_an_index_however_long_the_history(
    services: Services, filters: tuple[bool, ...]
) -> None:
    if services.database.dialect.name != "sqlite":
        pytest.skip("the plan is SQLite's; PostgreSQL plans by its statistics")
    statement = message_store._history(*filters)
    params = {"t": "default", "s": "default", "n": 50, "chat": "1@c.us", "before": "msg_Z"}
    params |= {"direction": "in", "since": 1, "until": 9, "before_ms": 8}
    bound = statement.params(**params)
    sql = str(
        bound.compile(dialect=services.database.dialect, compile_kwargs={"literal_binds": True})
    )
    async with services.database.connect() as connection:
        plan = (await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")).all()
    details = " | ".join(str(row[-1]) for row in plan)
    assert "SEARCH messages USING INDEX" in details, details
    assert "TEMP B-TREE" not in details, details


async def test_a_burst_of_acks_is_written_together_in_progress_order(services: Services) -> None:
    await services.sessions.shutdown()  # keep the sender from racing this test
    sent = []
    for n in range(20):
        message = await services.messages.accept("default", "default", "", "5511999999999", "x")
        sent.append(await services.messages.record_sent(message, f"burst-{n}"))
    assert all(sent)
    before = await event_log.last_seq(services.database, "default")
    jobs = services.committer.jobs
    acks = [("burst-0", AckStatus.READ)]  # its read before its delivered: both apply, in order
    acks += [(f"burst-{n}", status) for n in range(20) for status in (AckStatus.DELIVERED,)]
    acks += [(f"burst-{n}", AckStatus.READ) for n in range(1, 20)]
    acks += [("burst-3", AckStatus.READ), ("not-sent-yet", AckStatus.DELIVERED)]
    answers = await asyncio.gather(
        *(services.messages.record_ack("default", "default", e, s) for e, s in acks)
    )
    assert services.committer.jobs - jobs <= 3, "the burst shared a job or so, not one each"
    assert answers[0] is not None
    assert answers[0].status is MessageStatus.READ
    assert answers[1] is not None
    assert answers[1].status is MessageStatus.DELIVERED
    assert answers[-2] is None, "a repeated ack moves nothing"
    assert answers[-1] is None
    events = await event_log.read_after(services.database, "default", before, 1000)
    statuses: dict[str, list[str]] = {}
    for event in events:
        statuses.setdefault(event.payload["engine_message_id"], []).append(event.payload["status"])
    assert statuses == {f"burst-{n}": ["delivered", "read"] for n in range(20)}
    early = await services.messages.accept("default", "default", "", "5511999999999", "x")
    await services.messages.record_sent(early, "not-sent-yet")
    stored = await services.messages.get("default", early.id)
    assert stored.status is MessageStatus.DELIVERED, "the ack that came first was kept"


async def test_a_failed_gathered_job_fails_every_item_it_took(services: Services) -> None:
    calls = []

    async def batch(unit: UnitOfWork, key: str, items: list[int]) -> list[int]:
        calls.append(list(items))
        raise Conflict("refused")

    gathering: Gathering[str, int, int] = Gathering(services.committer, batch, lambda key: key)
    results = await asyncio.gather(
        *(gathering.submit("default", n) for n in range(5)), return_exceptions=True
    )
    assert all(isinstance(result, Conflict) for result in results)
    assert calls[0] == [0, 1, 2, 3, 4], "one job took all five"
    ok: Gathering[str, int, int] = Gathering(
        services.committer, lambda unit, key, items: _double(items), lambda key: key
    )
    assert await asyncio.gather(*(ok.submit("default", n) for n in range(3))) == [0, 2, 4]


async def _double(items: list[int]) -> list[int]:
    return [2 * item for item in items]


async def test_commits_leave_the_wal_to_the_checkpointer_which_copies_it_all(
    services: Services,
) -> None:
    if services.database.dialect.name != "sqlite":
        pytest.skip("WAL checkpoints are SQLite's")
    await services.checkpointer.stop()  # this test runs the passes itself
    await services.checkpointer.checkpoint()

    async def big(unit: UnitOfWork) -> None:
        for n in range(100):
            unit.emit(EventDraft("default", None, "test.big", {"n": n, "pad": "x" * 4000}))

    for _ in range(12):  # ~1,200 pages: past the 1,000 at which a commit would checkpoint
        await services.committer.run(big)
    busy, frames, copied = await services.checkpointer.checkpoint()
    assert busy == 0
    assert frames > 1000, "no commit checkpointed on its own: the WAL still held the writes"
    assert copied == frames, "a passive pass copies everything when nothing reads"
    async with services.database.connect() as connection:
        setting = (await connection.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar_one()
    assert setting == 0


async def test_event_payloads_read_back_as_written(services: Services) -> None:
    """JSON columns are written by orjson, or by the stdlib where orjson refuses (an integer
    beyond 64 bits); both read back equal, on both databases."""
    payloads: list[dict[str, Any]] = [
        {"text": "Olá, 世界 🎉", "n": -(2**63), "nested": [1.5, None, True, {"k": "v"}]},
        {"big": 2**70},
        {"empty": "", "quote": '"\\'},
    ]
    before = await event_log.last_seq(services.database, "default")

    async def job(unit: UnitOfWork) -> None:
        for payload in payloads:
            unit.emit(EventDraft("default", None, "test.event", payload))

    await services.committer.run(job)
    events = await event_log.read_after(services.database, "default", before, 10)
    assert [e.payload for e in events if e.type == "test.event"] == payloads
