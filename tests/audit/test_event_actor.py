"""Every event carries the actor that caused it when there is one: the key whose request wrote
it. What engines and background work report (a send made by the outbox, acks, a session's own
status changes) carries none, even when a request started that work."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.audit.support import own_key_id
from tests.conftest import RunningServer
from tests.support.events import EventWatcher
from zapgate.audit import actor as actors
from zapgate.events.model import EventType

NUMBER = "5511999999999"


async def events_of(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await api.get("/api/v1/events", params={"limit": 1000})
    assert response.status_code == 200
    return list(response.json()["data"])


async def test_an_event_caused_by_a_request_carries_its_actor(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    admin = await own_key_id(api)
    async with EventWatcher(server.services.bus) as watcher:
        sent = await api.post(
            "/api/v1/sessions/default/messages", json={"to": NUMBER, "text": "who?"}
        )
        assert sent.status_code == 202
        message_id = sent.json()["id"]
        await watcher.wait_for(
            lambda e: e.type == EventType.MESSAGE_SENT and e.payload["id"] == message_id
        )
    assert (await api.post("/api/v1/sessions/default/stop")).status_code == 200

    envelopes = await events_of(api)
    assert all("actor" in envelope for envelope in envelopes), "the envelope always says"
    mine = {e["type"]: e["actor"] for e in envelopes if e["payload"].get("id") == message_id}
    assert mine[EventType.MESSAGE_QUEUED] == admin, "queued by the request"
    assert mine[EventType.MESSAGE_SENT] is None, "sent by the session's outbox"
    statuses = [
        (e["payload"]["status"], e["actor"])
        for e in envelopes
        if e["type"] == EventType.SESSION_STATUS
    ]
    assert ("WORKING", None) in statuses, "the engine's own report"
    assert statuses[-1] == ("STOPPED", admin), "stopped by the request"


async def test_the_actor_stays_with_the_task_that_serves_the_request() -> None:
    seen: dict[str, str | None] = {}

    async def spawned() -> None:
        seen["during"] = actors.current()
        await released.wait()
        seen["after"] = actors.current()

    released = asyncio.Event()
    with actors.acting():
        assert actors.current() is None, "not identified yet"
        actors.identify("key_someone", "default")
        assert actors.current() == "key_someone"
        task = asyncio.create_task(spawned())
        await asyncio.sleep(0)
    assert actors.current() is None
    released.set()
    await task
    assert seen == {"during": None, "after": None}
    actors.identify("key_nobody", "default")  # outside a request: nothing to name
    assert actors.current() is None
