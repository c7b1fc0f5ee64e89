"""Contacts, numbers, LIDs and groups through the API, on the simulator (its address book and
in-memory groups), and engines that cannot: 422 ``unsupported`` naming the engine."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.conftest import RunningServer
from tests.support.engines import InstantEngine
from tests.test_messages_api import wait_working
from zapgate.engines.base import SessionStatus
from zapgate.engines.registry import EngineSpec
from zapgate.engines.simulator_directory import derived_lid

S = "/api/v1/sessions/book"
ANA, ANA_LID = "5511977776666", "123456789012345@lid"
BIA = "5511955554444"
NOBODY = "5511900010000"  # ends in 0000: not on WhatsApp (simulator rule)
PICTURE = "https://pps.example/ana.jpg"
BOOK = {
    "contacts": [
        {"number": ANA, "name": "Ana", "lid": ANA_LID, "picture": PICTURE},
        {"number": "+55 11 95555-4444", "name": "Bia"},
    ]
}


async def book_session(server: RunningServer, api: httpx.AsyncClient) -> None:
    created = await api.post("/api/v1/sessions", json={"name": "book", "config": BOOK})
    assert created.status_code == 201, created.text
    await working(server, "book")


async def working(server: RunningServer, name: str) -> None:
    """Once the session's engine is WORKING (not only some session's status event)."""
    await wait_working(server)
    async with asyncio.timeout(10):
        while True:
            runner = server.services.sessions.runner("default", name)
            if runner is not None and runner.status is SessionStatus.WORKING:
                return
            await asyncio.sleep(0.01)


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


async def test_contacts_numbers_lids_and_pictures(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await book_session(server, api)
    listed = await ok(await api.get(f"{S}/contacts"))
    assert listed["data"] == [
        {"id": ANA, "chat_id": f"{ANA}@c.us", "number": ANA, "lid": ANA_LID, "name": "Ana"},
        {
            "id": BIA,
            "chat_id": f"{BIA}@c.us",
            "number": BIA,
            "lid": derived_lid(BIA),
            "name": "Bia",
        },
    ]
    by_lid = await ok(await api.get(f"{S}/contacts/{ANA_LID}"))
    assert by_lid == {
        "id": ANA,
        "chat_id": f"{ANA}@c.us",
        "number": ANA,
        "lid": ANA_LID,
        "name": "Ana",
    }
    by_number = await ok(await api.get(f"{S}/contacts/+55 (11) 97777-6666"))
    assert by_number["lid"] == ANA_LID

    stranger = "5511922223333"
    exists = await ok(await api.get(f"{S}/contacts/{stranger}/exists"))
    assert exists == {
        "id": stranger,
        "exists": True,
        "chat_id": f"{stranger}@c.us",
        "number": stranger,
        "lid": derived_lid(stranger),
    }
    back = await ok(await api.get(f"{S}/contacts/{derived_lid(stranger)}"))
    assert back["number"] == stranger  # a LID it handed out resolves back
    missing = await ok(await api.get(f"{S}/contacts/{NOBODY}/exists"))
    assert missing["exists"] is False
    assert missing["chat_id"] is None
    unknown_lid = await ok(await api.get(f"{S}/contacts/999999999999@lid/exists"))
    assert unknown_lid["exists"] is False
    not_found = await api.get(f"{S}/contacts/999999999999@lid")
    assert not_found.status_code == 404
    assert not_found.json()["error"] == "contact_not_found"
    assert (await api.get(f"{S}/contacts/{NOBODY}")).status_code == 404

    assert await ok(await api.get(f"{S}/contacts/{ANA_LID}/picture")) == {"url": PICTURE}
    assert await ok(await api.get(f"{S}/contacts/{BIA}/picture")) == {"url": None}
    assert (await api.get(f"{S}/contacts/{NOBODY}/picture")).status_code == 404
    for bad in ("abc", "12@lid", "55119@c.us"):
        assert (await api.get(f"{S}/contacts/{bad}")).status_code == 422, bad


async def test_groups_are_created_changed_listed_and_left(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await book_session(server, api)
    made = await ok(
        await api.post(f"{S}/groups", json={"name": "Vendas", "participants": [ANA, ANA_LID]}),
        201,
    )
    group = made["id"]
    assert group.endswith("@g.us")
    assert made["name"] == "Vendas"
    owner = {"id": "5511000000000@c.us", "admin": True, "owner": True}
    assert made["participants"] == [
        owner,
        {"id": f"{ANA}@c.us", "admin": False, "owner": False},
        {"id": ANA_LID, "admin": False, "owner": False},
    ]
    added = await ok(
        await api.post(f"{S}/groups/{group}/participants/add", json={"participants": [BIA, ANA]})
    )
    assert [p["id"] for p in added["participants"]][-1] == f"{BIA}@c.us"
    assert len(added["participants"]) == 4
    refused = await api.post(
        f"{S}/groups/{group}/participants/add", json={"participants": [NOBODY]}
    )
    assert refused.status_code == 422
    assert refused.json()["error"] == "not_on_whatsapp"
    assert NOBODY in refused.json()["detail"]

    removed = await ok(
        await api.post(
            f"{S}/groups/{group}/participants/remove", json={"participants": [ANA_LID, NOBODY]}
        )
    )
    assert [p["id"] for p in removed["participants"]] == [owner["id"], f"{ANA}@c.us", f"{BIA}@c.us"]
    itself = await api.post(
        f"{S}/groups/{group}/participants/remove", json={"participants": ["5511000000000"]}
    )
    assert itself.status_code == 409

    short_id = group.removesuffix("@g.us")
    participants = await ok(await api.get(f"{S}/groups/{short_id}/participants"))
    assert participants["data"] == removed["participants"]
    assert (await ok(await api.get(f"{S}/groups/{group}")))["name"] == "Vendas"
    assert [g["id"] for g in (await ok(await api.get(f"{S}/groups")))["data"]] == [group]

    assert await ok(await api.post(f"{S}/groups/{group}/leave"), 204) is None
    gone = await api.get(f"{S}/groups/{group}")
    assert gone.status_code == 404
    assert gone.json()["error"] == "group_not_found"
    assert (await ok(await api.get(f"{S}/groups")))["data"] == []
    assert (await api.post(f"{S}/groups/{group}/leave")).status_code == 404


async def test_bad_group_input_is_4xx(server: RunningServer, api: httpx.AsyncClient) -> None:
    await book_session(server, api)
    bodies: list[Any] = [
        {"name": "", "participants": [ANA]},
        {"name": "x", "participants": []},
        {"name": "x", "participants": ["abc"]},
        {"name": "x"},
        {"name": "x", "participants": [ANA], "extra": 1},
        [],
    ]
    for body in bodies:
        response = await api.post(f"{S}/groups", json=body)
        assert response.status_code == 422, (body, response.text)
    assert (await api.get(f"{S}/groups/not-a-group")).status_code == 422
    assert (await api.get(f"{S}/groups/123456789012@g.us")).status_code == 404


async def test_engines_without_the_capability_answer_unsupported(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    server.services.sessions.engines.register(
        "instant", EngineSpec(InstantEngine, InstantEngine.capabilities)
    )
    created = await api.post("/api/v1/sessions", json={"name": "plain", "engine": "instant"})
    assert created.status_code == 201, created.text
    await working(server, "plain")
    for path in ("contacts", f"contacts/{ANA}", f"contacts/{ANA}/exists", "groups"):
        response = await api.get(f"/api/v1/sessions/plain/{path}")
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"] == "unsupported"
        assert "'instant'" in response.json()["detail"]
    made = await api.post(
        "/api/v1/sessions/plain/groups", json={"name": "x", "participants": [ANA]}
    )
    assert made.status_code == 422

    sent = await api.post("/api/v1/sessions/plain/messages", json={"to": ANA, "text": "hi"})
    assert sent.status_code == 202
    read = await api.post(f"/api/v1/sessions/plain/chats/{ANA}/read")
    assert read.status_code == 200, read.text
    assert read.json()["receipts"] == "unsupported"  # the mark is stored all the same


async def test_a_stopped_session_is_not_running(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await book_session(server, api)
    assert (await api.post(f"{S}/stop")).status_code == 200
    response = await api.get(f"{S}/contacts")
    assert response.status_code == 409
    assert response.json()["error"] == "session_not_running"
