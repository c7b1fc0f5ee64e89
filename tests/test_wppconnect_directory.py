"""Contacts, numbers, LIDs, groups and read receipts on the WPPConnect engine, through the REST
API: the real library in real Chromium against the fake WhatsApp Web page."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer
from tests.support.events import EventWatcher, message_status
from tests.test_wppconnect import (  # the WPPConnect API tests' fixtures, defined once
    paired,
    server_settings,  # noqa: F401
    wppconnect_runtime,  # noqa: F401
)

pytestmark = pytest.mark.chromium
S = "/api/v1/sessions/book"
ME = "5511999999999"  # the fake page's own number
ANA, ANA_LID = "5511977776666", "123456789012345@lid"
BIA = "5511955554444"
CARLA = "5511933332222"
NOBODY = "5511900010000"
PICTURE = "https://pps.whatsapp.net/v/ana.jpg"


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


async def test_contacts_numbers_lids_pictures_and_read_receipts(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    engine = await paired(server, api, "book")
    await engine.fake(
        "addContact", {"id": f"{ANA}@c.us", "name": "Ana", "lid": ANA_LID, "picture": PICTURE}
    )
    await engine.fake("addContact", {"id": f"{BIA}@c.us", "name": "Bia"})
    await engine.fake("addContact", {"id": f"{CARLA}@c.us", "pushname": "C", "isMyContact": False})
    await engine.fake("setNumberExists", f"{NOBODY}@c.us", False)

    listed = await ok(await api.get(f"{S}/contacts"))
    assert listed["data"] == [
        {"id": ANA, "chat_id": f"{ANA}@c.us", "number": ANA, "lid": ANA_LID, "name": "Ana"},
        {"id": BIA, "chat_id": f"{BIA}@c.us", "number": BIA, "lid": None, "name": "Bia"},
    ], "only the address book, each with the LID WhatsApp Web paired it with"
    by_lid = await ok(await api.get(f"{S}/contacts/{ANA_LID}"))
    assert (by_lid["number"], by_lid["lid"], by_lid["name"]) == (ANA, ANA_LID, "Ana")
    exists = await ok(await api.get(f"{S}/contacts/+55 (11) 97777-6666/exists"))
    assert (exists["exists"], exists["chat_id"], exists["lid"]) == (True, f"{ANA}@c.us", ANA_LID)
    missing = await ok(await api.get(f"{S}/contacts/{NOBODY}/exists"))
    assert (missing["exists"], missing["chat_id"]) == (False, None)
    assert (await api.get(f"{S}/contacts/999999999999@lid")).status_code == 404
    assert (await ok(await api.get(f"{S}/contacts/999999999999@lid/exists")))["exists"] is False

    assert await ok(await api.get(f"{S}/contacts/{ANA_LID}/picture")) == {"url": PICTURE}
    assert await ok(await api.get(f"{S}/contacts/{BIA}/picture")) == {"url": None}
    assert (await api.get(f"{S}/contacts/{NOBODY}/picture")).status_code == 404

    async with EventWatcher(server.services.bus) as watcher:
        await engine.fake("receive", {"from": ANA_LID, "body": "oi, de um LID"})
        received = await watcher.wait_for(
            lambda e: e.type == "message.received" and e.session == "book", 15
        )
    got = (await api.get(f"/api/v1/messages/{received.payload['id']}")).json()
    assert (got["from"], got["from_phone"], got["chat_id"]) == (ANA_LID, ANA, ANA_LID)

    async with EventWatcher(server.services.bus) as watcher:
        sent = await api.post(f"{S}/messages", json={"to": ANA_LID, "text": "para o LID"})
        assert sent.status_code == 202, sent.text
        await watcher.wait_for(message_status(sent.json()["id"], "sent"), 15)
    assert (await engine.fake("sent"))[-1]["to"] == ANA_LID

    read = await ok(await api.post(f"{S}/chats/{ANA_LID}/read"))
    assert (read["receipts"], read["unread_count"]) == ("sent", 0)
    assert await engine.fake("reads") == [ANA_LID]
    await api.post(f"{S}/stop")


async def test_groups_are_created_changed_listed_and_left(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    engine = await paired(server, api, "book")
    await engine.fake("setLid", f"{ANA}@c.us", ANA_LID)
    await engine.fake("setNumberExists", f"{NOBODY}@c.us", False)
    made = await ok(
        await api.post(f"{S}/groups", json={"name": "Vendas", "participants": [ANA, BIA]}), 201
    )
    group = made["id"]
    me = {"id": f"{ME}@c.us", "admin": True, "owner": True}
    assert (made["name"], made["owner"]) == ("Vendas", f"{ME}@c.us")
    assert made["participants"] == [
        me,
        {"id": f"{ANA}@c.us", "admin": False, "owner": False},
        {"id": f"{BIA}@c.us", "admin": False, "owner": False},
    ]
    added = await ok(
        await api.post(
            f"{S}/groups/{group}/participants/add", json={"participants": [CARLA, ANA_LID]}
        )
    )
    assert [p["id"] for p in added["participants"]] == [
        f"{ME}@c.us",
        f"{ANA}@c.us",
        f"{BIA}@c.us",
        f"{CARLA}@c.us",
    ], "Ana's LID is Ana, already in"
    refused = await api.post(
        f"{S}/groups/{group}/participants/add", json={"participants": [NOBODY]}
    )
    assert (refused.status_code, refused.json()["error"]) == (422, "not_on_whatsapp")
    removed = await ok(
        await api.post(
            f"{S}/groups/{group}/participants/remove", json={"participants": [BIA, NOBODY]}
        )
    )
    assert [p["id"] for p in removed["participants"]] == [
        f"{ME}@c.us",
        f"{ANA}@c.us",
        f"{CARLA}@c.us",
    ]
    itself = await api.post(f"{S}/groups/{group}/participants/remove", json={"participants": [ME]})
    assert itself.status_code == 409
    page = {g["id"]: g for g in await engine.fake("groups")}
    assert [p["id"] for p in page[group]["participants"]] == [
        p["id"] for p in removed["participants"]
    ]

    theirs = await engine.fake(
        "addGroup", {"subject": "Deles", "participants": [f"{BIA}@c.us"], "admin": False}
    )
    listed = await ok(await api.get(f"{S}/groups"))
    assert [g["id"] for g in listed["data"]] == [group, theirs]
    not_admin = await api.post(
        f"{S}/groups/{theirs}/participants/add", json={"participants": [ANA]}
    )
    assert not_admin.status_code == 409, not_admin.text
    short = group.removesuffix("@g.us")
    assert (await ok(await api.get(f"{S}/groups/{short}/participants")))["data"] == removed[
        "participants"
    ]

    assert await ok(await api.post(f"{S}/groups/{group}/leave"), 204) is None
    gone = await api.get(f"{S}/groups/{group}")
    assert (gone.status_code, gone.json()["error"]) == (404, "group_not_found")
    assert [g["id"] for g in (await ok(await api.get(f"{S}/groups")))["data"]] == [theirs]
    assert (await api.post(f"{S}/groups/{group}/leave")).status_code == 404
    unknown = await api.get(f"{S}/groups/123456789012@g.us")
    assert unknown.status_code == 404, unknown.text
    await api.post(f"{S}/stop")
