"""Cluster mode: one node at a time dispatches webhooks (a role held by a lease), so each event
is delivered once and in order whichever node wrote it; a subscription made through another
node is served at once; when the dispatching node dies, another takes over within the TTL."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.cluster.test_leases import TTL, nodes, until
from tests.conftest import AUTH, RunningServer
from tests.support.receiver import Receiver
from zapgate.events import repository as event_log
from zapgate.tasks import cancel_and_wait


def dispatching(cluster: list[RunningServer]) -> list[RunningServer]:
    return [n for n in cluster if n.services.dispatch_role and n.services.dispatch_role.holds()]


async def send(node: RunningServer, count: int, ids: set[str]) -> None:
    async with httpx.AsyncClient(base_url=node.url, headers=AUTH, timeout=10) as api:
        for n in range(count):
            sent = await api.post(
                "/api/v1/sessions/default/messages", json={"to": "5511999999999", "text": f"{n}"}
            )
            assert sent.status_code == 202, sent.text
            ids.add(sent.json()["id"])


async def events_of(node: RunningServer, messages: set[str]) -> list[str]:
    """The events of these messages in the log (all written after the subscription)."""
    events = await event_log.read_after(node.services.database, "default", 0, 100_000)
    return [event.id for event in events if event.payload.get("id") in messages]


async def test_one_node_dispatches_and_another_takes_over_when_it_dies(
    tmp_path: Path, receiver: Receiver
) -> None:
    async with nodes(tmp_path, TTL, webhook_allowlist="127.0.0.1") as cluster:
        await until(lambda: len(dispatching(cluster)) == 1, TTL * 2)
        (holder,) = dispatching(cluster)
        other = next(n for n in cluster if n is not holder)
        async with httpx.AsyncClient(base_url=other.url, headers=AUTH, timeout=10) as api:
            made = await api.post("/api/v1/webhooks", json={"url": receiver.url})
            assert made.status_code == 201, made.text
        ids: set[str] = set()
        for node in cluster:
            await send(node, 4, ids)

        def delivered() -> list[str]:
            return [r.headers["webhook-id"] for r in receiver.successes()]

        expected = await events_of(holder, ids)
        await receiver.wait_until(lambda r: set(expected) <= set(delivered()), timeout=10)
        assert len(delivered()) == len(set(delivered())), "each event delivered once"
        hook = made.json()["id"]
        assert [n.services.dispatcher.serving("default", hook) for n in cluster].count(True) == 1

        # the dispatching node dies: no more renewals, its workers gone, its lease left as is
        assert holder.services.dispatch_role is not None
        await cancel_and_wait(holder.services.dispatch_role._task)
        await holder.services.dispatcher.stop()
        died = time.monotonic()
        survivors = [n for n in cluster if n is not holder]
        await send(survivors[0], 3, ids)
        await until(lambda: len(dispatching(survivors)) == 1, TTL * 3)
        took = time.monotonic() - died
        assert took <= TTL * 1.5, f"taken over after {took:.1f} s (TTL {TTL} s)"
        expected = await events_of(survivors[0], ids)
        await receiver.wait_until(lambda r: set(expected) <= set(delivered()), timeout=10)
