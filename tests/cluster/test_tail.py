"""Cluster mode: every node's bus (and so its Socket.IO rooms, SSE streams, long-polls and
webhook workers) gets every event of a tenant in seq order, once, wherever it was written, also
when the Redis wake-ups are lost (the log is polled)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.cluster.test_leases import TTL, nodes, until
from tests.conftest import AUTH, RunningServer
from zapgate.events import repository as event_log
from zapgate.events.model import Event


def collect(node: RunningServer) -> list[Event]:
    seen: list[Event] = []
    node.services.bus.subscribe(seen.extend)
    return seen


async def send_through_each(cluster: list[RunningServer], count: int) -> list[str]:
    ids = []
    for n in range(count):
        node = cluster[n % len(cluster)]
        async with httpx.AsyncClient(base_url=node.url, headers=AUTH, timeout=10) as api:
            sent = await api.post(
                "/api/v1/sessions/default/messages", json={"to": "5511999999999", "text": f"m{n}"}
            )
            assert sent.status_code == 202, sent.text
            ids.append(sent.json()["id"])
    return ids


async def logged(node: RunningServer) -> list[int]:
    events = await event_log.read_after(node.services.database, "default", 0, 10_000)
    return [event.seq for event in events]


async def test_every_node_sees_every_event_in_order_once(tmp_path: Path) -> None:
    async with nodes(tmp_path, TTL) as cluster:
        before = [node.services.bus.latest("default") for node in cluster]
        seen = [collect(node) for node in cluster]
        await until(lambda: sum(len(n.services.sessions.running_keys()) for n in cluster) == 1, 12)
        await send_through_each(cluster, 12)
        newest = max(await logged(cluster[0]))
        await until(lambda: all(n.services.bus.latest("default") >= newest for n in cluster), 10)
        for node, start, events in zip(cluster, before, seen, strict=True):
            seqs = [e.seq for e in events if e.tenant == "default"]
            assert seqs == list(range(start + 1, seqs[-1] + 1)), node.services.settings.node_name
            assert seqs[-1] >= newest


async def test_events_arrive_without_redis_wake_ups(tmp_path: Path) -> None:
    async with nodes(tmp_path, TTL) as cluster:
        for node in cluster:  # every wake-up between nodes is lost from now on
            assert node.services.tail is not None
            node.services.tail._signals.on_seq = None
        reader = cluster[2]
        seen = collect(reader)
        await until(lambda: sum(len(n.services.sessions.running_keys()) for n in cluster) == 1, 12)
        before = reader.services.bus.latest("default")
        await send_through_each(cluster[:2], 4)
        newest = max(await logged(cluster[0]))
        await until(lambda: reader.services.bus.latest("default") >= newest, 5)
        seqs = [e.seq for e in seen if e.tenant == "default"]
        assert seqs == list(range(before + 1, seqs[-1] + 1))
