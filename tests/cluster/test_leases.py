"""Cluster mode: each session runs on exactly one node (the one holding its lease), sessions are
spread across the nodes, a dead node's sessions are taken over within the lease TTL, a paused
node sends nothing once its lease may have passed and stops what it lost, and a node that stops
hands its sessions over at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import (
    AUTH,
    RunningServer,
    served_cluster,
)
from zapgate.engines.base import SessionStatus
from zapgate.tasks import cancel_and_wait

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
TTL = 3.0
SESSIONS = 6


@asynccontextmanager
async def nodes(tmp_path: Path, ttl: float, **more: object) -> AsyncIterator[list[RunningServer]]:
    """Three nodes of one cluster (PostgreSQL and Redis), each its own engine and services."""
    async with served_cluster(tmp_path, ("a", "b", "c"), lease_ttl_seconds=ttl, **more) as running:
        yield running


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[list[RunningServer]]:
    async with nodes(tmp_path, TTL) as running:
        yield running


def placement(nodes: list[RunningServer]) -> dict[str, list[tuple[str, str]]]:
    return {
        node.services.settings.node_name: sorted(node.services.sessions.running_keys())
        for node in nodes
    }


async def until(check: Callable[[], bool], seconds: float) -> float:
    """How long until ``check`` holds, looking every 50 ms (the nodes run meanwhile)."""
    start = time.monotonic()
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.05)
    return time.monotonic() - start


def each_once(nodes: list[RunningServer], count: int) -> bool:
    keys = [key for node in nodes for key in node.services.sessions.running_keys()]
    return len(keys) == count and len(set(keys)) == count


async def test_sessions_are_spread_and_taken_over_when_a_node_dies(
    cluster: list[RunningServer],
) -> None:
    a, b, c = cluster
    async with httpx.AsyncClient(base_url=b.url, headers=AUTH, timeout=10) as api:
        for n in range(SESSIONS):
            made = await api.post("/api/v1/sessions", json={"name": f"s{n}"})
            assert made.status_code == 201, made.text
        total = SESSIONS + 1  # and the default session
        await until(lambda: each_once(cluster, total), seconds=TTL * 4)
        await until(lambda: all(len(k) >= 2 for k in placement(cluster).values()), TTL * 4)
        shown = (await api.get("/api/v1/sessions/s0")).json()["node"]
        assert shown in placement(cluster), "a session names the node that runs it"
        assert ("default", "s0") in placement(cluster)[shown]
        # node A dies: no more heartbeats or lease renewals, and its engines are gone
        lost = set(a.services.sessions.running_keys())
        assert lost
        kept = {n.services.settings.node_name: n.services.sessions.running_keys() for n in (b, c)}
        await cancel_and_wait(a.services.nodes._task)
        assert a.services.leases is not None
        await cancel_and_wait(a.services.leases._task, a.services.leases._renewing)
        for key in lost:
            await a.services.sessions.halt_here(key, None)
        took = await until(lambda: each_once([b, c], total), seconds=TTL * 4)
        assert took <= TTL + 1.5, f"taken over after {took:.1f} s (TTL {TTL} s)"
        for node in (b, c):  # the survivors took the orphans and gave up none of their own
            assert kept[node.services.settings.node_name] <= node.services.sessions.running_keys()
        for _tenant, name in lost:
            status = (await api.get(f"/api/v1/sessions/{name}")).json()
            assert status["node"] in ("b", "c")


async def test_a_paused_node_stops_what_it_lost_and_a_stopping_node_hands_over(
    cluster: list[RunningServer],
) -> None:
    total = 1
    await until(lambda: each_once(cluster, total), seconds=TTL * 4)
    owner = next(node for node in cluster if node.services.sessions.running_keys())
    others = [node for node in cluster if node is not owner]
    keeper = owner.services.leases
    assert keeper is not None
    # paused past its lease: it beats and renews nothing, its engine (in-process) keeps going
    await cancel_and_wait(owner.services.nodes._task, keeper._task, keeper._renewing)
    await until(lambda: any(n.services.sessions.running_keys() for n in others), TTL * 4)
    (key,) = owner.services.sessions.running_keys()  # its engine still runs: it is "paused"
    async with httpx.AsyncClient(base_url=owner.url, headers=AUTH, timeout=10) as api:
        sent = await api.post(
            f"/api/v1/sessions/{key[1]}/messages", json={"to": "5511999999999", "text": "once"}
        )
        assert sent.status_code == 202, sent.text

        async def sent_elsewhere() -> bool:
            message = (await api.get(f"/api/v1/messages/{sent.json()['id']}")).json()
            return bool(message["status"] != "queued")

        async with asyncio.timeout(TTL * 4):
            while not await sent_elsewhere():
                await asyncio.sleep(0.05)
    stale = owner.services.sessions.runner(*key)
    assert stale is not None
    assert getattr(stale.engine, "sends", None) == 0, "the node that lost the lease sent it"
    fresh = next(n for n in others if key in n.services.sessions.running_keys())
    assert getattr(fresh.services.sessions.runner(*key).engine, "sends", None) == 1  # type: ignore[union-attr]
    # a report its engine makes now is dropped: it would overwrite the new owner's status
    await stale._events.status(SessionStatus.FAILED, "a stale engine")
    await keeper.tick()  # it comes back: the lease is another node's now
    assert owner.services.sessions.running_keys() == set(), "it stopped what it lost"
    assert each_once(cluster, total)
    async with httpx.AsyncClient(base_url=owner.url, headers=AUTH, timeout=10) as api:
        shown = (await api.get(f"/api/v1/sessions/{key[1]}")).json()
    assert shown["status"] == "WORKING", "the stale engine's report did not overwrite it"
    assert shown["node"] == fresh.services.settings.node_name
    # a graceful stop hands the session over without waiting for the TTL
    new_owner = next(node for node in others if node.services.sessions.running_keys())
    assert new_owner.services.leases is not None
    await new_owner.services.leases.stop()
    third = next(node for node in others if node is not new_owner)
    took = await until(lambda: bool(third.services.sessions.running_keys()), TTL * 2)
    assert took < TTL, f"handed over after {took:.1f} s"


async def test_sends_through_any_node_are_sent_once_by_the_owner(
    cluster: list[RunningServer],
) -> None:
    """A message queued on a node that does not run its session wakes the owner through Redis;
    each is sent exactly once (the simulator counts its engine's sends)."""
    total = SESSIONS + 1
    async with httpx.AsyncClient(base_url=cluster[0].url, headers=AUTH, timeout=10) as api:
        for n in range(SESSIONS):
            assert (await api.post("/api/v1/sessions", json={"name": f"s{n}"})).status_code == 201
    await until(lambda: each_once(cluster, total), seconds=TTL * 4)
    await until(
        lambda: all(
            node.services.sessions.runner(*key) is not None
            and node.services.sessions.runner(*key).status.value == "WORKING"  # type: ignore[union-attr]
            for node in cluster
            for key in node.services.sessions.running_keys()
        ),
        seconds=TTL * 4,
    )
    ids: dict[str, list[str]] = {}
    for node in cluster:
        async with httpx.AsyncClient(base_url=node.url, headers=AUTH, timeout=10) as api:
            for n in range(SESSIONS):
                sent = await api.post(
                    f"/api/v1/sessions/s{n}/messages", json={"to": "5511999999999", "text": "x"}
                )
                assert sent.status_code == 202, sent.text
                ids.setdefault(f"s{n}", []).append(sent.json()["id"])
    async with httpx.AsyncClient(base_url=cluster[0].url, headers=AUTH, timeout=10) as api:

        async def statuses() -> list[str]:
            return [
                (await api.get(f"/api/v1/messages/{i}")).json()["status"]
                for sent in ids.values()
                for i in sent
            ]

        async with asyncio.timeout(TTL * 4):
            while "queued" in await statuses():
                await asyncio.sleep(0.05)
    sends = {}
    for node in cluster:
        for key in node.services.sessions.running_keys():
            runner = node.services.sessions.runner(*key)
            assert runner is not None
            sends[key[1]] = getattr(runner.engine, "sends", None)
    assert {name: sends[name] for name in ids} == dict.fromkeys(ids, len(cluster))
    assert sum(n.services.leases.signals_received for n in cluster if n.services.leases) > 0


async def test_lifecycle_calls_through_any_node_act_at_once(tmp_path: Path) -> None:
    """Created, stopped and started through nodes that do not run the session: every node looks
    at once (a Redis signal), long before its next look (a third of a 30 s TTL)."""
    async with nodes(tmp_path, 30.0) as cluster:
        first = cluster[0]
        async with httpx.AsyncClient(base_url=first.url, headers=AUTH, timeout=10) as api:
            assert (await api.post("/api/v1/sessions", json={"name": "shop"})).status_code == 201
        key = ("default", "shop")

        def runs_on() -> list[RunningServer]:
            return [n for n in cluster if key in n.services.sessions.running_keys()]

        await until(lambda: len(runs_on()) == 1, seconds=5)
        (owner,) = runs_on()
        elsewhere = next(n for n in cluster if n is not owner)
        async with httpx.AsyncClient(base_url=elsewhere.url, headers=AUTH, timeout=10) as api:
            stopped = await api.post("/api/v1/sessions/shop/stop")
            assert stopped.status_code == 200, stopped.text

            async def shown() -> tuple[str, str | None]:
                session = (await api.get("/api/v1/sessions/shop")).json()
                return session["status"], session["node"]

            async with asyncio.timeout(5):  # stopped by its owner, its lease given up
                while await shown() != ("STOPPED", None):
                    await asyncio.sleep(0.05)
            assert runs_on() == []
            assert (await api.post("/api/v1/sessions/shop/start")).status_code == 200
            await until(lambda: len(runs_on()) == 1, seconds=5)


async def test_a_handover_lets_the_send_in_flight_end_first(
    cluster: list[RunningServer],
) -> None:
    """A node that stops hands its sessions over, but first lets a send in flight end, so the
    next owner does not send the same message again."""
    slow = {"send_latency": {"kind": "fixed", "seconds": 0.5}}
    async with httpx.AsyncClient(base_url=cluster[0].url, headers=AUTH, timeout=10) as api:
        made = await api.post("/api/v1/sessions", json={"name": "slow", "config": slow})
        assert made.status_code == 201, made.text
        key = ("default", "slow")

        def owner() -> RunningServer | None:
            found = [n for n in cluster if key in n.services.sessions.running_keys()]
            return found[0] if found else None

        async def working() -> bool:
            session = (await api.get("/api/v1/sessions/slow")).json()
            return bool(session["status"] == "WORKING")

        async with asyncio.timeout(TTL * 4):
            while owner() is None or not await working():
                await asyncio.sleep(0.05)
        first = owner()
        assert first is not None
        assert first.services.leases is not None
        sent = await api.post(
            "/api/v1/sessions/slow/messages", json={"to": "5511999999999", "text": "once"}
        )
        engine = first.services.sessions.runner(*key).engine  # type: ignore[union-attr]
        await until(lambda: getattr(engine, "sending", 0) == 1, seconds=5)  # in flight now
        await first.services.leases.stop()
        message = (await api.get(f"/api/v1/messages/{sent.json()['id']}")).json()
        assert message["status"] != "queued", "the send in flight ended before the handover"
        assert getattr(engine, "sends", None) == 1
        await until(lambda: owner() not in (None, first), seconds=TTL * 4)
        second = owner()
        assert second is not None
        # an absence cannot be awaited: give a wrong second send a look (1 s) and its latency
        await asyncio.sleep(TTL / 3 + 0.5)
        assert getattr(second.services.sessions.runner(*key).engine, "sends", None) == 0  # type: ignore[union-attr]


async def test_a_look_that_waits_on_a_slow_stop_does_not_hold_up_the_renewals(
    cluster: list[RunningServer],
) -> None:
    """A session whose engine takes long to stop holds its lock, and a look waits on it: the
    leases are still renewed meanwhile, so the node stays sure of every session it runs."""
    await until(lambda: each_once(cluster, 1), seconds=TTL * 4)
    owner = next(node for node in cluster if node.services.sessions.running_keys())
    keeper = owner.services.leases
    assert keeper is not None
    (key,) = owner.services.sessions.running_keys()
    await owner.services.sessions.halt_here(key, None)  # held here, no longer running
    async with owner.services.sessions._lock(*key):  # its stop "hangs": the next look waits
        await asyncio.sleep(TTL)  # longer than a lease stays sure without a renewal
        assert keeper.holds(key), "the renewals waited for the look"
    await until(lambda: key in owner.services.sessions.running_keys(), TTL * 2)
