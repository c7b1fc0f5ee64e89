"""Acting on messages with the WPPConnect engine, through the REST API: edits, deletions for
everyone, presence, polls and their votes, calls; and what the other side edits and deletes. The
real library in real Chromium against the fake WhatsApp Web page."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer
from tests.support.events import EventWatcher, message_status, of_type, status_is
from tests.test_wppconnect import (  # the WPPConnect API tests' fixtures, defined once
    engine_of,
    paired,
    server_settings,  # noqa: F401
    wppconnect_runtime,  # noqa: F401
)
from zapgate.engines.wppconnect.engine import WppConnectEngine

pytestmark = pytest.mark.chromium
PEER = "5511988887777"
MESSAGES = "/api/v1/messages"


async def sent(server: RunningServer, api: httpx.AsyncClient, body: dict[str, Any]) -> Any:
    """Send ``body`` from session ``phone``; the message once WhatsApp Web took it."""
    async with EventWatcher(server.services.bus) as watcher:
        response = await api.post("/api/v1/sessions/phone/messages", json=body)
        assert response.status_code == 202, response.text
        event = await watcher.wait_for(message_status(response.json()["id"], "sent"), 15)
    return event.payload


async def received(server: RunningServer, engine: WppConnectEngine, params: dict[str, Any]) -> Any:
    async with EventWatcher(server.services.bus) as watcher:
        await engine.fake("receive", params)
        event = await watcher.wait_for(of_type("message.received", "phone"), 15)
    return event.payload


async def test_edit_revoke_presence_and_a_poll_with_its_votes(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    engine = await paired(server, api, "phone")
    text = await sent(server, api, {"to": PEER, "text": "Olá, mundo"})
    async with EventWatcher(server.services.bus) as watcher:
        edited = await api.patch(f"{MESSAGES}/{text['id']}", json={"text": "Olá!"})
        assert edited.status_code == 200, edited.text
        await watcher.wait_for(of_type("message.edited", "phone"), 15)
        other = await sent(server, api, {"to": PEER, "text": "after"})
        assert other["text"] == "after"
        edits = [e for e in watcher.seen if e.type == "message.edited"]
    assert len(edits) == 1, "WhatsApp Web's echo of our own edit is not reported again"
    page = {m["id"]: m for m in await engine.fake("sent")}
    assert page[text["engine_message_id"]]["body"] == "Olá!"

    async with EventWatcher(server.services.bus) as watcher:
        deleted = await api.delete(f"{MESSAGES}/{text['id']}")
        assert deleted.status_code == 200, deleted.text
        await watcher.wait_for(of_type("message.revoked", "phone"), 15)
    revokes = [m for m in await engine.fake("sent") if m["type"] == "revoke"]
    assert [m["msgId"] for m in revokes] == [text["engine_message_id"]]
    again = await api.delete(f"{MESSAGES}/{text['id']}")
    assert again.status_code == 409

    for state in ("typing", "recording", "paused"):
        shown = await api.post(
            f"/api/v1/sessions/phone/chats/{PEER}/presence", json={"state": state}
        )
        assert shown.status_code == 204, shown.text
    assert await engine.fake("presences") == [
        {"chat": f"{PEER}@c.us", "state": state} for state in ("typing", "recording", "paused")
    ]
    never = await api.post(
        "/api/v1/sessions/phone/chats/5511933334444/presence", json={"state": "typing"}
    )
    assert never.status_code == 409, "WhatsApp Web has no chat with them"

    poll = {"name": "Almoço?", "options": ["Pizza", "Sushi", "Feijoada"], "selectable_count": 2}
    made = await sent(server, api, {"to": PEER, "type": "poll", "poll": poll})
    page_poll = (await engine.fake("sent"))[-1]
    assert (page_poll["type"], page_poll["pollName"], page_poll["pollOptions"]) == (
        "poll_creation",
        "Almoço?",
        ["Pizza", "Sushi", "Feijoada"],
    )
    assert page_poll["selectableCount"] == 2
    async with EventWatcher(server.services.bus) as watcher:
        await engine.fake("vote", page_poll["id"], f"{PEER}@c.us", ["Sushi", "Feijoada"])
        vote = await watcher.wait_for(of_type("message.poll_vote", "phone"), 15)
    assert vote.payload["message_id"] == made["id"]
    assert (vote.payload["voter"], vote.payload["selected"]) == (PEER, ["Sushi", "Feijoada"])
    stored = (await api.get(f"{MESSAGES}/{made['id']}")).json()
    assert stored["poll"]["votes"][PEER]["selected"] == ["Sushi", "Feijoada"]
    await api.post("/api/v1/sessions/phone/stop")


async def test_the_other_side_edits_deletes_sends_a_poll_and_calls(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    engine = await paired(server, api, "phone")
    text = await received(server, engine, {"from": f"{PEER}@c.us", "body": "oi"})
    async with EventWatcher(server.services.bus) as watcher:
        await engine.fake("edit", text["engine_message_id"], "oi, tudo bem?")
        edit = await watcher.wait_for(of_type("message.edited", "phone"), 15)
    assert (edit.payload["id"], edit.payload["text"]) == (text["id"], "oi, tudo bem?")
    async with EventWatcher(server.services.bus) as watcher:
        await engine.fake("revoke", text["engine_message_id"])
        revoke = await watcher.wait_for(of_type("message.revoked", "phone"), 15)
    assert revoke.payload["id"] == text["id"]
    assert (await api.get(f"{MESSAGES}/{text['id']}")).json()["text"] is None

    poll = {"name": "Quando?", "options": ["Hoje", "Amanhã"], "selectableCount": 1}
    theirs = await received(
        server, engine, {"from": f"{PEER}@c.us", "type": "poll_creation", "poll": poll}
    )
    assert theirs["type"] == "poll"
    assert theirs["poll"] == {
        "name": "Quando?",
        "options": ["Hoje", "Amanhã"],
        "selectable_count": 1,
    }

    await api.post("/api/v1/sessions/phone/stop")


async def test_a_call_is_rejected_and_answered_as_configured(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    config = {"calls": {"reject": True, "reply": "Não atendo ligações."}}
    async with EventWatcher(server.services.bus) as watcher:
        created = await api.post(
            "/api/v1/sessions", json={"name": "calls", "engine": "wppconnect", "config": config}
        )
        assert created.status_code == 201, created.text
        await watcher.wait_for(lambda e: e.type == "session.qr" and e.session == "calls", 30)
        engine = engine_of(server, "calls")
        await engine.fake("scan")
        await watcher.wait_for(status_is("calls", "WORKING"), 30)
    async with EventWatcher(server.services.bus) as watcher:
        call_id = await engine.fake("call", {"from": f"{PEER}@c.us", "isVideo": True})
        call = await watcher.wait_for(of_type("call.received", "calls"), 15)
        await watcher.wait_for(message_status(call.payload["reply_message_id"], "sent"), 15)
    assert call.payload["id"] == call_id
    assert (call.payload["from"], call.payload["video"], call.payload["rejected"]) == (
        PEER,
        True,
        True,
    )
    assert call.payload["error"] is None
    assert await engine.fake("rejectedCalls") == [call_id]
    reply = (await engine.fake("sent"))[-1]
    assert (reply["to"], reply["body"]) == (f"{PEER}@c.us", "Não atendo ligações.")
    await api.post("/api/v1/sessions/calls/stop")
