"""Nodes register, beat a heartbeat and leave; ``GET /api/v1/nodes`` lists the live ones, and a
session names the node that runs it. Cluster mode needs PostgreSQL and an answering Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import (
    AUTH,
    POSTGRES_URL,
    REDIS_URL,
    RunningServer,
    cluster_settings,
    make_settings,
    postgres_reason,
    postgres_schema,
    redis_reason,
    require_service,
    serve,
)
from zapgate.app import start, stop
from zapgate.db.migrate import BOOT_LOCK, boot_lock
from zapgate.errors import Unavailable
from zapgate.services import build_services
from zapgate.tasks import cancel_and_wait


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float) -> None:
    async with asyncio.timeout(seconds):
        while not await check():
            await asyncio.sleep(0.05)


async def test_a_node_lists_itself_and_names_itself_on_its_sessions(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    name = server.services.settings.node_name
    listed = (await api.get("/api/v1/nodes")).json()["data"]
    assert [(node["name"], node["sessions"]) for node in listed] == [(name, 1)]
    assert listed[0]["last_seen"] >= listed[0]["started_at"]
    assert (await api.get("/api/v1/sessions/default")).json()["node"] == name
    assert (await api.post("/api/v1/sessions/default/stop")).status_code == 200
    assert (await api.get("/api/v1/sessions/default")).json()["node"] is None


def test_cluster_mode_needs_postgresql(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"cluster mode .* needs PostgreSQL"):
        make_settings(tmp_path, redis_url=REDIS_URL)
    with pytest.raises(ValidationError, match="ZAPGATE_REDIS_URL must start with"):
        make_settings(tmp_path, redis_url="http://127.0.0.1:6379")


@pytest.mark.postgres
@pytest.mark.redis
async def test_nodes_join_beat_and_leave(tmp_path: Path) -> None:
    """Two nodes of a cluster see each other; one that leaves is gone at once, one whose
    heartbeat stops is gone after a TTL; a cluster node does not start without Redis."""
    require_service(await postgres_reason())
    require_service(await redis_reason())
    async with postgres_schema() as engine_for:

        def settings(node: str, redis_url: str = REDIS_URL):  # type: ignore[no-untyped-def]
            return make_settings(
                tmp_path / node,
                database_url="postgresql+asyncpg://unused/x",
                redis_url=redis_url,
                node_name=node,
                lease_ttl_seconds=3,
            )

        a = build_services(settings("node-a"), engine_for())
        b = build_services(settings("node-b"), engine_for())
        c = build_services(settings("node-c"), engine_for())
        async with (
            serve(a) as node_a,
            serve(b),
            serve(c),
            httpx.AsyncClient(base_url=node_a.url, headers=AUTH) as api,
        ):

            async def names() -> list[str]:
                listed = (await api.get("/api/v1/nodes")).json()["data"]
                return [node["name"] for node in listed]

            assert await names() == ["node-a", "node-b", "node-c"]
            await b.nodes.stop()  # node B leaves: gone at once
            assert await names() == ["node-a", "node-c"]
            await cancel_and_wait(c.nodes._task)  # node C hangs: gone after a TTL

            async def only_a() -> bool:
                return await names() == ["node-a"]

            await eventually(only_a, seconds=3 * 2)
        lost = build_services(settings("node-d", "redis://127.0.0.1:1/0"), engine_for())
        with pytest.raises(Unavailable, match="Redis"):
            await start(lost)
        await stop(lost)


async def test_a_simulator_session_counts_the_sends_its_engine_performed(
    api: httpx.AsyncClient,
) -> None:
    """The simulator is the phone's test double: each message it sends counts once."""
    assert (await api.get("/api/v1/sessions/default")).json()["engine_stats"] == {"sends": 0}
    ids = []
    for n in range(3):
        sent = await api.post(
            "/api/v1/sessions/default/messages", json={"to": "5511999999999", "text": f"{n}"}
        )
        ids.append(sent.json()["id"])

    async def all_sent() -> bool:
        statuses = [(await api.get(f"/api/v1/messages/{i}")).json()["status"] for i in ids]
        return "queued" not in statuses

    await eventually(all_sent, seconds=15)
    session = (await api.get("/api/v1/sessions/default")).json()
    assert session["engine_stats"] == {"sends": 3}
    assert (await api.post("/api/v1/sessions/default/stop")).status_code == 200
    assert (await api.get("/api/v1/sessions/default")).json()["engine_stats"] is None


@pytest.mark.postgres
@pytest.mark.redis
async def test_nodes_starting_together_on_an_empty_database_all_start(tmp_path: Path) -> None:
    """Migrations and the defaults (tenant, session, operator key) are made by one node at a
    time (an advisory lock), so three nodes started at once on a new database all come up."""
    require_service(await postgres_reason())
    require_service(await redis_reason())
    async with postgres_schema() as engine_for:
        built = [
            build_services(
                cluster_settings(
                    tmp_path,
                    name,
                    api_key=AUTH["Authorization"].removeprefix("Bearer "),
                ),
                engine_for(),
            )
            for name in ("a", "b", "c")
        ]
        try:
            await asyncio.gather(*(start(services) for services in built))
            for services in built:
                assert await services.auth.authenticate(AUTH["Authorization"].split()[1])
        finally:
            for services in built:
                await stop(services)


@pytest.mark.postgres
async def test_the_boot_lock_outlasts_the_idle_transaction_timeout() -> None:
    """A cluster node's connections end transactions left idle (a frozen node's): the boot lock
    is held outside any transaction, so a slow boot keeps it, and releases it cleanly."""
    require_service(await postgres_reason())
    idle = {"server_settings": {"idle_in_transaction_session_timeout": "200"}}
    engine = create_async_engine(POSTGRES_URL, connect_args=idle)
    other = create_async_engine(POSTGRES_URL)
    try:
        async with boot_lock(engine):
            await asyncio.sleep(0.6)  # a boot slower than the timeout (the point of the test)
            async with other.connect() as connection:
                taken = await connection.scalar(
                    sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": BOOT_LOCK}
                )
                assert taken is False, "the boot lock was lost with its connection"
        async with other.connect() as connection:
            assert await connection.scalar(
                sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": BOOT_LOCK}
            )
            await connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": BOOT_LOCK})
    finally:
        await engine.dispose()
        await other.dispose()
