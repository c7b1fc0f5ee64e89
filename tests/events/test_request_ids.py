"""Every event caused by a request names it: ``request_id`` is the request's ``X-Request-Id``.
The outbox's send and the acks of a message carry the id of the request that queued it; what an
engine reports by itself (its status, a message it received) carries none."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.conftest import RunningServer
from tests.support.events import EventWatcher, message_status
from tests.test_messages_api import wait_working
from zapgate.audit import actor as actors
from zapgate.events.model import EventType
from zapgate.requests import REQUEST_ID

NUMBER = "5511999999999"
SEND = "/api/v1/sessions/default/messages"


async def events_of(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await api.get("/api/v1/events", params={"limit": 1000})
    assert response.status_code == 200
    return list(response.json()["data"])


def of_message(envelopes: list[dict[str, Any]], message_id: str) -> list[tuple[str, Any]]:
    return [
        (e["payload"].get("status", e["type"]), e["request_id"])
        for e in envelopes
        if e["payload"].get("id") == message_id
    ]


async def test_a_send_and_everything_that_follows_carry_its_request_id(
    any_server: RunningServer, any_api: httpx.AsyncClient
) -> None:
    await wait_working(any_server)
    assert any_server.hot is not None
    served = any_server.hot.served
    async with EventWatcher(any_server.services.bus) as watcher:
        sent = await any_api.post(
            SEND, json={"to": NUMBER, "text": "traced"}, headers={"X-Request-Id": "abc"}
        )
        assert sent.status_code == 202, sent.text
        assert sent.headers["x-request-id"] == "abc"
        message_id = sent.json()["id"]
        await watcher.wait_for(message_status(message_id, "read"))
    assert any_server.hot.served == served + 1, "answered by the send hot path"

    envelopes = await events_of(any_api)
    assert all("request_id" in envelope for envelope in envelopes), "the envelope always says"
    assert of_message(envelopes, message_id) == [
        ("queued", "abc"),
        ("sent", "abc"),
        ("delivered", "abc"),
        ("read", "abc"),
    ]
    statuses = [e for e in envelopes if e["type"] == EventType.SESSION_STATUS]
    assert statuses
    assert all(e["request_id"] is None for e in statuses), "the engine's reports"


async def test_a_send_through_the_app_carries_its_request_id_too(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    async with EventWatcher(server.services.bus) as watcher:
        sent = await api.post(  # an Idempotency-Key: served by the ASGI app, not the hot path
            SEND,
            json={"to": NUMBER, "text": "traced"},
            headers={"X-Request-Id": "via-the-app", "Idempotency-Key": "k-1"},
        )
        assert sent.status_code == 202, sent.text
        message_id = sent.json()["id"]
        await watcher.wait_for(message_status(message_id, "sent"))
    mine = dict(of_message(await events_of(api), message_id))
    assert mine["queued"] == mine["sent"] == "via-the-app"


async def test_without_an_id_the_events_carry_the_one_the_answer_gave(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    sent = await api.post(SEND, json={"to": NUMBER, "text": "no id given"})
    assert sent.status_code == 202
    given = sent.headers["x-request-id"]
    assert given.startswith("req_")
    mine = dict(of_message(await events_of(api), sent.json()["id"]))
    assert mine["queued"] == given


async def test_a_session_change_names_its_request_and_an_engine_report_none(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    echo = server.services.settings.simulator_echo_contact
    async with EventWatcher(server.services.bus) as watcher:
        sent = await api.post(
            SEND, json={"to": echo, "text": "ping"}, headers={"X-Request-Id": "p"}
        )
        assert sent.status_code == 202
        await watcher.wait_for(lambda e: e.type == EventType.MESSAGE_RECEIVED)
    stopped = await api.post("/api/v1/sessions/default/stop", headers={"X-Request-Id": "stop-1"})
    assert stopped.status_code == 200

    envelopes = await events_of(api)
    received = [e for e in envelopes if e["type"] == EventType.MESSAGE_RECEIVED]
    assert received
    assert all(e["request_id"] is None for e in received), "the echo's reply"
    statuses = [
        (e["payload"]["status"], e["request_id"])
        for e in envelopes
        if e["type"] == EventType.SESSION_STATUS
    ]
    assert ("WORKING", None) in statuses, "the engine's own report"
    assert statuses[-1] == ("STOPPED", "stop-1"), "stopped by the request"


async def test_the_request_id_stays_with_the_task_that_serves_the_request() -> None:
    seen: dict[str, tuple[str | None, str | None]] = {}

    async def spawned() -> None:
        seen["spawned"] = actors.cause()

    token = REQUEST_ID.set("rid-1")
    try:
        with actors.acting():
            assert actors.cause() == (None, "rid-1"), "known before the caller is"
            actors.identify("key_someone", "default")
            assert actors.cause() == ("key_someone", "rid-1")
            await asyncio.create_task(spawned())
        assert actors.cause() == (None, None), "the request ended"
    finally:
        REQUEST_ID.reset(token)
    assert seen == {"spawned": (None, None)}, "a task it started is not the request"
