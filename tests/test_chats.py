"""Chats from the stored history (SQLite and PostgreSQL): newest activity first, the last
message, unread counts after the read mark, cursors; a chat's messages; LIDs sent to and
received from."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.conftest import RunningServer
from tests.support.events import EventWatcher, message_status
from tests.test_messages_api import wait_working
from zapgate.engines.base import SessionStatus

CHATS = "/api/v1/sessions/default/chats"
INBOUND = "/api/v1/sessions/default/simulate/inbound"
SEND = "/api/v1/sessions/default/messages"
ANA, BRUNO, CARLA = "5511911110001", "5511911110002", "5511911110003"
LID = "123456789012345@lid"
BOOK = {"contacts": [{"number": "5511977776666", "name": "Ana Lid", "lid": LID}]}


async def working(server: RunningServer, name: str) -> None:
    """Once the session's engine is WORKING (not only some session's status event)."""
    await wait_working(server)
    async with asyncio.timeout(10):
        while True:
            runner = server.services.sessions.runner("default", name)
            if runner is not None and runner.status is SessionStatus.WORKING:
                return
            await asyncio.sleep(0.01)


async def receive(api: httpx.AsyncClient, sender: str, text: str, path: str = INBOUND) -> Any:
    response = await api.post(path, json={"from": sender, "text": text})
    assert response.status_code == 201, response.text
    return response.json()


async def chats(api: httpx.AsyncClient, path: str = CHATS, **params: Any) -> Any:
    response = await api.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_chats_are_listed_newest_activity_first_with_last_message_and_unread(
    any_server: RunningServer, any_api: httpx.AsyncClient
) -> None:
    await wait_working(any_server)
    await receive(any_api, ANA, "oi 1")
    ana_last = await receive(any_api, ANA, "oi 2")
    await receive(any_api, BRUNO, "olá")
    sent = await any_api.post(SEND, json={"to": CARLA, "text": "bom dia"})
    assert sent.status_code == 202, sent.text

    page = await chats(any_api)
    assert [c["id"] for c in page["data"]] == [f"{n}@c.us" for n in (CARLA, BRUNO, ANA)]
    by_id = {c["id"]: c for c in page["data"]}
    ana = by_id[f"{ANA}@c.us"]
    assert ana["unread_count"] == 2
    assert ana["last_message"]["id"] == ana_last["id"]
    assert ana["last_message"]["text"] == "oi 2"
    assert ana["phone"] == ANA
    assert ana["read_up_to"] is None
    assert by_id[f"{CARLA}@c.us"]["unread_count"] == 0  # its message went out
    assert by_id[f"{CARLA}@c.us"]["last_message"]["direction"] == "out"
    assert page["next_cursor"] is None

    first = await chats(any_api, limit=2)
    assert [c["id"] for c in first["data"]] == [f"{CARLA}@c.us", f"{BRUNO}@c.us"]
    rest = await chats(any_api, limit=2, cursor=first["next_cursor"])
    assert [c["id"] for c in rest["data"]] == [f"{ANA}@c.us"]
    assert rest["next_cursor"] is None
    unread = await chats(any_api, unread="true")
    assert {c["id"] for c in unread["data"]} == {f"{ANA}@c.us", f"{BRUNO}@c.us"}


async def test_a_read_mark_moves_forward_and_counts_what_came_after(
    any_server: RunningServer, any_api: httpx.AsyncClient
) -> None:
    await wait_working(any_server)
    first = await receive(any_api, ANA, "1")
    await receive(any_api, ANA, "2")
    third = await receive(any_api, ANA, "3")

    partly = await any_api.post(f"{CHATS}/{ANA}/read", json={"message_id": first["id"]})
    assert partly.status_code == 200, partly.text
    assert partly.json()["unread_count"] == 2
    assert partly.json()["read_up_to"] == first["id"]
    assert partly.json()["receipts"] == "sent"

    whole = await any_api.post(f"{CHATS}/{ANA}@c.us/read")
    assert whole.json()["unread_count"] == 0
    assert whole.json()["read_up_to"] == third["id"]
    assert whole.json()["read_at"] is not None
    engine = any_server.services.sessions.runner("default", "default").engine  # type: ignore[union-attr]
    assert list(engine.read_chats)[-1] == f"{ANA}@c.us"  # type: ignore[attr-defined]

    back = await any_api.post(f"{CHATS}/{ANA}/read", json={"message_id": first["id"]})
    assert back.json()["read_up_to"] == third["id"]  # never backwards
    assert back.json()["unread_count"] == 0

    await receive(any_api, ANA, "4")
    one = await any_api.get(f"{CHATS}/{ANA}")
    assert one.status_code == 200
    assert one.json()["unread_count"] == 1
    assert one.json()["last_message"]["text"] == "4"


async def test_read_refusals_are_4xx(any_server: RunningServer, any_api: httpx.AsyncClient) -> None:
    await wait_working(any_server)
    other = await receive(any_api, BRUNO, "x")
    await receive(any_api, ANA, "y")
    no_chat = await any_api.post(f"{CHATS}/5511933334444/read")
    assert no_chat.status_code == 404
    assert no_chat.json()["error"] == "chat_not_found"
    wrong = await any_api.post(f"{CHATS}/{ANA}/read", json={"message_id": other["id"]})
    assert wrong.status_code == 404
    assert wrong.json()["error"] == "message_not_found"
    for bad in ("abc", "12@lid", "5511911110001@g.us"):
        response = await any_api.get(f"{CHATS}/{bad}")
        assert response.status_code in (404, 422), (bad, response.text)
    assert (
        await any_api.get(f"{CHATS}/{ANA}/messages", params={"cursor": "x.y"})
    ).status_code == 422
    assert (await any_api.get(CHATS, params={"limit": 0})).status_code == 422
    assert (await any_api.get("/api/v1/sessions/nope/chats")).status_code == 404
    unknown = await any_api.post(f"{CHATS}/{ANA}/read", json={"message_id": "msg_x", "more": 1})
    assert unknown.status_code == 422


async def test_a_chats_messages_are_its_history_page_by_page(
    any_server: RunningServer, any_api: httpx.AsyncClient
) -> None:
    await wait_working(any_server)
    texts = ["a", "b", "c"]
    for text in texts:
        await receive(any_api, ANA, text)
    await receive(any_api, BRUNO, "not this chat")
    first = (await any_api.get(f"{CHATS}/{ANA}/messages", params={"limit": 2})).json()
    assert [m["text"] for m in first["data"]] == ["c", "b"]
    rest = await any_api.get(
        f"{CHATS}/{ANA}/messages", params={"limit": 2, "cursor": first["next_cursor"]}
    )
    assert [m["text"] for m in rest.json()["data"]] == ["a"]
    outbound = await any_api.get(f"{CHATS}/{ANA}/messages", params={"direction": "out"})
    assert outbound.json()["data"] == []


async def test_a_lid_is_sent_to_and_received_from_with_both_ids(
    any_server: RunningServer, any_api: httpx.AsyncClient
) -> None:
    created = await any_api.post("/api/v1/sessions", json={"name": "lids", "config": BOOK})
    assert created.status_code == 201, created.text
    await working(any_server, "lids")
    async with EventWatcher(any_server.services.bus) as watcher:
        sent = await any_api.post(
            "/api/v1/sessions/lids/messages", json={"to": f" {LID} ", "text": "to a lid"}
        )
        assert sent.status_code == 202, sent.text
        await watcher.wait_for(message_status(sent.json()["id"], "sent"))
    assert sent.json()["to"] == LID
    assert sent.json()["chat_id"] == LID
    engine = any_server.services.sessions.runner("default", "lids").engine  # type: ignore[union-attr]
    assert engine.recent_sends[-1].to == LID  # type: ignore[attr-defined]

    got = await receive(any_api, LID, "from a lid", "/api/v1/sessions/lids/simulate/inbound")
    assert got["from"] == LID
    assert got["from_phone"] == "5511977776666"
    assert got["chat_id"] == LID
    stored = (await any_api.get(f"/api/v1/messages/{got['id']}")).json()
    assert stored["from_phone"] == "5511977776666"

    listed = await chats(any_api, "/api/v1/sessions/lids/chats")
    assert listed["data"][0]["id"] == LID
    assert listed["data"][0]["lid"] == LID
    assert listed["data"][0]["phone"] == "5511977776666"
    assert listed["data"][0]["unread_count"] == 1
    history = await any_api.get(f"/api/v1/sessions/lids/chats/{LID}/messages")
    assert [m["text"] for m in history.json()["data"]] == ["from a lid", "to a lid"]


async def test_phone_numbers_behave_as_before_next_to_lids(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    sent = await api.post(SEND, json={"to": "+55 (11) 91111-0001", "text": "x"})
    assert sent.json()["to"] == ANA
    assert sent.json()["chat_id"] == f"{ANA}@c.us"
    assert "from_phone" not in sent.json()
    for bad in ("12@lid", "abc@lid", "1234567890123456789012@lid", "5511911110001@lid@c.us"):
        refused = await api.post(SEND, json={"to": bad, "text": "x"})
        assert refused.status_code == 422, (bad, refused.text)
    pair = await api.post("/api/v1/sessions/default/pair", json={"phone": LID})
    assert pair.status_code == 422  # pairing takes a phone number only
