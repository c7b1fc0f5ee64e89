"""Cluster mode: an Idempotency-Key in flight is claimed in the database, so two nodes given the
same key at once run the effect once; the claim gives way to the stored answer, is freed when a
request ends without one, and one left by a dead node lapses and is taken over."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import (
    AUTH,
    bounded_teardown,
    postgres_reason,
    postgres_schema,
    require_service,
    served_cluster,
)
from zapgate.clock import now_ms
from zapgate.db.committer import Committer, UnitOfWork
from zapgate.db.migrate import migrate
from zapgate.db.tables import idempotency_claims, messages
from zapgate.errors import IdempotencyKeyInProgress, IdempotentReplay
from zapgate.events.bus import EventBus
from zapgate.idempotency.service import CLAIM_SECONDS, Claim, Idempotency
from zapgate.sessions.repository import all_tenants_missing_sessions
from zapgate.tenants import repository as tenant_store

pytestmark = pytest.mark.postgres
TENANT = "default"
PRINT = "f" * 64


def render(result: Any) -> tuple[int, Any]:
    return 201, {"id": result}


@dataclass
class Node:
    idempotency: Idempotency
    committer: Committer

    async def begin(self, key: str) -> Claim:
        return await self.idempotency.begin(TENANT, key, PRINT, render)

    async def write(self, claim: Claim, result: str) -> None:
        """The effect's write, as a use case makes it: guarded, with the answer."""

        async def job(unit: UnitOfWork) -> None:
            await claim.guard(unit)
            claim.record(unit, result)

        await self.committer.run(job)


@asynccontextmanager
async def cluster(
    *clocks: Callable[[], int],
) -> AsyncIterator[tuple[AsyncEngine, list[Node]]]:
    """One node per clock on one PostgreSQL schema, each with its engine and writer."""
    require_service(await postgres_reason())
    async with postgres_schema() as engine_for:
        engines = [engine_for() for _ in clocks]
        await migrate(engines[0])
        async with engines[0].begin() as connection:
            await tenant_store.create(connection, TENANT, TENANT)
        nodes = []
        for engine, clock in zip(engines, clocks, strict=True):
            committer = Committer(engine, EventBus(), all_tenants_missing_sessions)
            committer.start()
            nodes.append(Node(Idempotency(engine, 3600, committer, clock=clock), committer))
        try:
            yield engines[0], nodes
        finally:
            for each in nodes:
                await bounded_teardown(each.idempotency.drain(), "claims")
                await bounded_teardown(each.committer.stop(), "the writer")


async def claims(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        count = sa.select(sa.func.count()).select_from(idempotency_claims)
        return int(await connection.scalar(count) or 0)


async def test_a_key_in_flight_on_one_node_is_in_progress_on_the_other() -> None:
    async with cluster(now_ms, now_ms) as (engine, (a, b)):
        outcomes = await asyncio.gather(a.begin("k-1"), b.begin("k-1"), return_exceptions=True)
        won = [outcome for outcome in outcomes if isinstance(outcome, Claim)]
        lost = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        assert len(won) == 1
        assert [type(error) for error in lost] == [IdempotencyKeyInProgress]
        winner = a if outcomes[0] is won[0] else b
        assert await claims(engine) == 1
        await winner.write(won[0], "msg-1")
        assert await claims(engine) == 0, "the write replaced the claim with the answer"
        winner.idempotency.end(won[0])
        for node in (a, b):
            with pytest.raises(IdempotentReplay) as replay:
                await node.begin("k-1")
            assert (replay.value.status, replay.value.body) == (201, {"id": "msg-1"})


async def test_a_request_ended_without_an_answer_frees_the_key_for_every_node() -> None:
    async with cluster(now_ms, now_ms) as (engine, (a, b)):
        claim = await a.begin("k-2")
        a.idempotency.end(claim)  # failed before its write: nothing stored
        again = await a.begin("k-2")  # this node waits for its own claim to go
        a.idempotency.end(again)
        await a.idempotency.drain()
        assert await claims(engine) == 0
        elsewhere = await b.begin("k-2")
        await b.write(elsewhere, "msg-2")
        b.idempotency.end(elsewhere)
        with pytest.raises(IdempotentReplay):
            await a.begin("k-2")


async def test_an_expired_claim_is_taken_over_and_its_late_holder_is_refused() -> None:
    def later() -> int:  # b's clock: a's claim has lapsed (a died, or is stuck)
        return now_ms() + int(CLAIM_SECONDS * 1000) + 1000

    async with cluster(now_ms, later) as (engine, (a, b)):
        stuck = await a.begin("k-3")
        taken = await b.begin("k-3")
        with pytest.raises(IdempotencyKeyInProgress):
            await a.write(stuck, "msg-late")
        await b.write(taken, "msg-3")
        a.idempotency.end(stuck)
        b.idempotency.end(taken)
        await a.idempotency.drain()
        assert await claims(engine) == 0
        with pytest.raises(IdempotentReplay) as replay:
            await a.begin("k-3")
        assert replay.value.body == {"id": "msg-3"}, "only the new holder's effect was kept"


async def test_a_live_claim_is_not_taken_over() -> None:
    async with cluster(now_ms, now_ms) as (_, (a, b)):
        held = await a.begin("k-4")
        with pytest.raises(IdempotencyKeyInProgress):
            await b.begin("k-4")
        a.idempotency.end(held)
        await a.idempotency.drain()
        b.idempotency.end(await b.begin("k-4"))


async def test_a_single_node_writes_no_claim() -> None:
    async with cluster(now_ms) as (engine, (node,)):
        alone = Idempotency(engine, 3600)
        claim = await alone.begin(TENANT, "k-5", PRINT, render)
        assert claim.claim_id is None
        assert await claims(engine) == 0
        with pytest.raises(IdempotencyKeyInProgress):
            await alone.begin(TENANT, "k-5", PRINT, render)
        alone.end(claim)
        await node.write(claim, "msg-5")


@pytest.mark.redis
async def test_the_same_send_through_two_nodes_at_once_makes_one_message(tmp_path: Path) -> None:
    async with served_cluster(tmp_path, ("a", "b")) as (a, b):
        send = "/api/v1/sessions/default/messages"
        body = {"to": "5511999999999", "text": "once"}
        key = {"Idempotency-Key": "order-77", **AUTH}
        async with (
            httpx.AsyncClient(base_url=a.url, headers=key, timeout=10) as to_a,
            httpx.AsyncClient(base_url=b.url, headers=key, timeout=10) as to_b,
        ):
            answers = await asyncio.gather(
                *(client.post(send, json=body) for client in [to_a, to_b] * 8)
            )
            assert {answer.status_code for answer in answers} <= {202, 409}
            ids = {answer.json()["id"] for answer in answers if answer.status_code == 202}
            assert len(ids) == 1
            for client in (to_a, to_b):
                replay = await client.post(send, json=body)
                assert replay.headers["idempotent-replayed"] == "true"
                assert replay.json()["id"] in ids
        async with a.services.database.connect() as connection:
            count = sa.select(sa.func.count()).select_from(messages)
            assert await connection.scalar(count) == 1
