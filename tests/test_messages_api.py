"""Sending and reading messages through the REST API on a real server."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import RunningServer
from tests.support.events import EventWatcher, message_status, of_type
from zapgate.clock import to_iso
from zapgate.engines.base import InboundMessage, SessionStatus


async def wait_working(server: RunningServer, session: str = "default") -> None:
    """Return once the session is WORKING (awaiting its status event if needed)."""
    async with EventWatcher(server.services.bus) as watcher:
        current = await server.services.sessions.get("default", session)
        if current.status is SessionStatus.WORKING:
            return
        await watcher.wait_for(
            lambda e: e.type == "session.status" and e.payload["status"] == "WORKING"
        )


async def test_send_is_accepted_then_sent_delivered_and_read(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    async with EventWatcher(server.services.bus) as watcher:
        response = await api.post(
            "/api/v1/sessions/default/messages", json={"to": "+55 11 99999-9999", "text": "Olá"}
        )
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["status"] == "queued"
        assert body["to"] == "5511999999999"
        assert body["chat_id"] == "5511999999999@c.us"
        assert body["id"].startswith("msg_")
        for status in ("sent", "delivered", "read"):
            await watcher.wait_for(message_status(body["id"], status))
    stored = (await api.get(f"/api/v1/messages/{body['id']}")).json()
    assert stored["status"] == "read"
    assert stored["engine_message_id"].startswith("sim_")


async def test_events_of_a_send_are_in_order_in_the_log(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    async with EventWatcher(server.services.bus) as watcher:
        sent = await api.post(
            "/api/v1/sessions/default/messages", json={"to": "5511999999999", "text": "a"}
        )
        message_id = sent.json()["id"]
        await watcher.wait_for(message_status(message_id, "read"))
    page = (await api.get("/api/v1/events", params={"after": 0, "limit": 1000})).json()
    seqs = [event["seq"] for event in page["data"]]
    assert seqs == list(range(1, len(seqs) + 1))
    mine = [e for e in page["data"] if e["payload"].get("id") == message_id]
    assert [e["type"] for e in mine] == [
        "message.queued",
        "message.sent",
        "message.status",
        "message.status",
    ]
    assert [e["payload"]["status"] for e in mine] == ["queued", "sent", "delivered", "read"]
    assert page["next_after"] == seqs[-1]
    assert all(e["tenant"] == "default" and e["id"].startswith("evt_") for e in page["data"])


async def test_echo_contact_answers(server: RunningServer, api: httpx.AsyncClient) -> None:
    echo = server.services.settings.simulator_echo_contact
    async with EventWatcher(server.services.bus) as watcher:
        await api.post("/api/v1/sessions/default/messages", json={"to": echo, "text": "ping"})
        received = await watcher.wait_for(of_type("message.received"))
    assert received.payload["from"] == echo
    assert received.payload["text"] == "ping"
    assert received.payload["direction"] == "in"


async def test_inbound_injection_is_stored_and_announced(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    async with EventWatcher(server.services.bus) as watcher:
        response = await api.post(
            "/api/v1/sessions/default/simulate/inbound",
            json={"from": "5511988887777", "text": "Oi!"},
        )
        assert response.status_code == 201, response.text
        event = await watcher.wait_for(of_type("message.received"))
    assert event.payload["id"] == response.json()["id"]
    assert event.payload["from"] == "5511988887777"
    history = (
        await api.get("/api/v1/sessions/default/messages", params={"direction": "in"})
    ).json()
    assert [m["text"] for m in history["data"]] == ["Oi!"]


async def test_history_filters_and_cursor_pagination(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    ids = []
    for index in range(7):
        to = "5511999990001" if index % 2 else "5511999990002"
        response = await api.post(
            "/api/v1/sessions/default/messages", json={"to": to, "text": f"m{index}"}
        )
        ids.append(response.json()["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get("/api/v1/sessions/default/messages", params=params)).json()
        seen += [m["id"] for m in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    by_chat = (
        await api.get("/api/v1/sessions/default/messages", params={"chat": "5511999990001"})
    ).json()
    assert [m["text"] for m in by_chat["data"]] == ["m5", "m3", "m1"]
    outbound = (
        await api.get("/api/v1/sessions/default/messages", params={"direction": "out"})
    ).json()
    assert len(outbound["data"]) == 7
    future = (
        await api.get("/api/v1/sessions/default/messages", params={"since": "2999-01-01T00:00:00Z"})
    ).json()
    assert future["data"] == []
    past = (
        await api.get("/api/v1/sessions/default/messages", params={"until": "2000-01-01T00:00:00Z"})
    ).json()
    assert past["data"] == []


async def test_history_by_time_is_newest_first_by_timestamp_and_pages_each_once(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    """Stored in one order, stamped in another (a phone's backlog arrives late), with ties."""
    base = 1_780_000_000_000
    stamps = [base + 5, base + 1, base + 3, base + 3, base + 9, base + 3, base + 7, base + 1]
    stored = []
    record = server.services.messages.record_inbound
    for index, stamp in enumerate(stamps):
        sender = "5511988887777@c.us"
        inbound = InboundMessage(f"e{index}", sender, "me", "text", f"t{index}", stamp)
        stored.append(await record("default", "default", inbound))
    url = "/api/v1/sessions/default/messages"
    window = {"since": to_iso(base + 1), "until": to_iso(base + 9), "direction": "in"}
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {**window, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = await api.get(url, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [m["id"] for m in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    expected = sorted(
        (m for m in stored if base + 1 <= m.created_at < base + 9),
        key=lambda m: (m.created_at, m.id),
        reverse=True,
    )
    assert seen == [m.id for m in expected]
    assert len(seen) == 7

    only_until = (await api.get(url, params={"until": to_iso(base + 3), "limit": 500})).json()
    assert [m["text"] for m in only_until["data"]] == ["t7", "t1"]


async def test_a_cursor_continues_after_its_message_whichever_kind_of_page_gave_it(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    url = "/api/v1/sessions/default/messages"
    for index in range(3):
        await api.post(url, json={"to": "5511999990001", "text": f"c{index}"})
    since = "2000-01-01T00:00:00Z"
    by_id = (await api.get(url, params={"limit": 1})).json()
    by_time = (await api.get(url, params={"limit": 1, "since": since})).json()
    assert by_id["data"] == by_time["data"]
    newest = by_id["data"][0]["id"]
    assert by_id["next_cursor"] == newest
    assert by_time["next_cursor"].endswith("." + newest)

    after_id = await api.get(url, params={"since": since, "cursor": by_id["next_cursor"]})
    after_time = await api.get(url, params={"cursor": by_time["next_cursor"]})
    assert after_id.status_code == after_time.status_code == 200
    assert [m["text"] for m in after_id.json()["data"]] == ["c1", "c0"]
    assert [m["text"] for m in after_time.json()["data"]] == ["c1", "c0"]

    unknown = await api.get(url, params={"since": since, "cursor": "msg_unknown"})
    assert unknown.status_code == 404
    for cursor in ("99999999999999999999.msg_X", "12.msg with spaces", "1.2.msg_X", "-.msg_X"):
        response = await api.get(url, params={"until": "2999-01-01T00:00:00Z", "cursor": cursor})
        assert response.status_code == 422, (cursor, response.text)
        assert response.json()["error"] == "invalid_input"


async def test_original_contract_send_and_list(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    response = await api.post(
        "/whatsapp/send", json={"number": "5511999999999", "message": "Olá, mundo!"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert body["message"]["text"] == "Olá, mundo!"
    for index in range(3):
        await api.post("/whatsapp/send", json={"number": 5511999999999, "message": f"n{index}"})
    listed = await api.get("/whatsapp/messages", params={"limit": 2})
    assert listed.status_code == 200
    first = listed.json()
    assert isinstance(first, list)
    assert [m["body"] for m in first] == ["n2", "n1"]
    assert 'rel="next"' in listed.headers["link"]
    second = (
        await api.get("/whatsapp/messages", params={"limit": 2, "before": first[-1]["id"]})
    ).json()
    assert [m["body"] for m in second] == ["n0", "Olá, mundo!"]


async def test_events_long_poll_returns_when_an_event_arrives(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    latest = server.services.bus.latest("default")
    poll = asyncio.create_task(api.get("/api/v1/events", params={"after": latest, "wait": 10}))
    await asyncio.sleep(0)  # let the poll start; correctness does not depend on it
    await api.post(
        "/api/v1/sessions/default/simulate/inbound", json={"from": "5511988887777", "text": "x"}
    )
    page = (await poll).json()
    assert page["data"], "the long-poll returned without the new event"
    assert page["data"][0]["seq"] == latest + 1
    empty = (await api.get("/api/v1/events", params={"after": 10**9, "wait": 0.2})).json()
    assert empty == {"data": [], "next_after": 10**9}
