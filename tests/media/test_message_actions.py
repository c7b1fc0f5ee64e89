"""Acting on what was sent, on a real server: edit a text, delete a message for everyone (its
file too, unless shared), cancel a queued one, presence, polls and their votes, incoming calls
rejected and answered as the session's config says, and edits and deletions by the other side."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import RunningServer
from tests.media.files import PDF, b64, png
from tests.support.events import EventWatcher, message_status, of_type
from tests.support.tenants import tenant_key
from tests.test_messages_api import wait_working
from zapgate.engines.base import Capability
from zapgate.engines.registry import EngineSpec
from zapgate.engines.simulator import SimulatorEngine

SEND = "/api/v1/sessions/default/messages"
SIMULATE = "/api/v1/sessions/default/simulate"
ECHO = "5511900000000"  # the simulator's echo contact: votes for a poll's first option
TO = "5511999999999"


def engine_of(server: RunningServer, session: str = "default") -> Any:
    return server.services.sessions._running[("default", session)].runner.engine


async def sent(server: RunningServer, api: httpx.AsyncClient, body: dict[str, Any]) -> Any:
    """Send ``body`` and return the message once the engine took it."""
    async with EventWatcher(server.services.bus) as watcher:
        response = await api.post(SEND, json=body)
        assert response.status_code == 202, response.text
        message = response.json()
        event = await watcher.wait_for(message_status(message["id"], "sent"))
    return event.payload


def store_has(server: RunningServer, sha256: str) -> bool:
    return any((server.services.settings.data_dir / "media").rglob(sha256))


async def test_a_sent_text_is_edited_on_the_phone_and_here(
    any_server: RunningServer, any_api: httpx.AsyncClient
) -> None:
    await wait_working(any_server)
    first = await sent(any_server, any_api, {"to": TO, "text": "Olá, mundo"})
    async with EventWatcher(any_server.services.bus) as watcher:
        edited = await any_api.patch(f"/api/v1/messages/{first['id']}", json={"text": "Olá!"})
        assert edited.status_code == 200, edited.text
        event = await watcher.wait_for(of_type("message.edited"))
    body = edited.json()
    assert (body["text"], body["id"]) == ("Olá!", first["id"])
    assert body["edited_at"] is not None
    assert event.payload["text"] == "Olá!"
    assert event.payload["edited_at"] == body["edited_at"]
    action = ("edit", f"{TO}@c.us", first["engine_message_id"], "Olá!")
    assert action in engine_of(any_server).actions
    assert (await any_api.get(f"/api/v1/messages/{first['id']}")).json()["text"] == "Olá!"
    place = await sent(
        any_server, any_api, {"to": TO, "type": "location", "latitude": 1, "longitude": 2}
    )
    for message_id, status, error in [
        (place["id"], 409, "message_not_editable"),
        ("msg_nope", 404, "message_not_found"),
    ]:
        refused = await any_api.patch(f"/api/v1/messages/{message_id}", json={"text": "x"})
        assert (refused.status_code, refused.json()["error"]) == (status, error), refused.text
    inbound = await any_api.post(f"{SIMULATE}/inbound", json={"from": TO, "text": "oi"})
    theirs = await any_api.patch(f"/api/v1/messages/{inbound.json()['id']}", json={"text": "x"})
    assert theirs.status_code == 409
    for bad in ({}, {"text": ""}, {"text": "x", "other": 1}):
        answer = await any_api.patch(f"/api/v1/messages/{first['id']}", json=bad)
        assert answer.status_code == 422, bad


async def test_a_revoked_message_loses_its_text_and_its_file_unless_shared(
    any_server: RunningServer, any_api: httpx.AsyncClient
) -> None:
    await wait_working(any_server)
    alone, shared = png(41), png(42)
    own = await sent(
        any_server,
        any_api,
        {"to": TO, "type": "image", "media": {"base64": b64(alone)}, "caption": "só"},
    )
    twice = [
        await sent(
            any_server, any_api, {"to": TO, "type": "image", "media": {"base64": b64(shared)}}
        )
        for _ in range(2)
    ]
    assert store_has(any_server, own["media"]["sha256"])
    async with EventWatcher(any_server.services.bus) as watcher:
        deleted = await any_api.delete(f"/api/v1/messages/{own['id']}")
        assert deleted.status_code == 200, deleted.text
        event = await watcher.wait_for(of_type("message.revoked"))
    body = deleted.json()
    assert (body["status"], body["text"], body.get("media")) == ("revoked", None, None)
    assert body["revoked_at"] is not None
    assert event.payload["id"] == own["id"]
    assert event.payload["status"] == "revoked"
    assert ("revoke", f"{TO}@c.us", own["engine_message_id"]) in engine_of(any_server).actions
    assert (await any_api.get(f"/api/v1/media/{own['media']['id']}")).status_code == 404
    assert not store_has(any_server, own["media"]["sha256"])
    stored = (await any_api.get(f"/api/v1/messages/{own['id']}")).json()
    assert (stored["status"], stored["text"]) == ("revoked", None)

    assert (await any_api.delete(f"/api/v1/messages/{twice[0]['id']}")).status_code == 200
    kept = await any_api.get(f"/api/v1/media/{twice[1]['media']['id']}")
    assert (kept.status_code, kept.content) == (200, shared)
    again = await any_api.delete(f"/api/v1/messages/{own['id']}")
    assert (again.status_code, again.json()["error"]) == (409, "message_not_revocable")
    edit_revoked = await any_api.patch(f"/api/v1/messages/{own['id']}", json={"text": "x"})
    assert edit_revoked.status_code == 409
    assert (await any_api.delete("/api/v1/messages/msg_nope")).status_code == 404


async def test_a_queued_message_is_cancelled_and_never_sent(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    created = await api.post("/api/v1/sessions", json={"name": "idle", "start": False})
    assert created.status_code == 201, created.text
    queued = await api.post(
        "/api/v1/sessions/idle/messages",
        json={"to": TO, "type": "document", "media": {"base64": b64(PDF + b"idle")}},
    )
    assert queued.status_code == 202, queued.text
    message = queued.json()
    async with EventWatcher(server.services.bus) as watcher:
        cancelled = await api.delete(f"/api/v1/messages/{message['id']}")
        assert cancelled.status_code == 200, cancelled.text
        event = await watcher.wait_for(message_status(message["id"], "cancelled"))
    assert event.type == "message.status"
    assert (cancelled.json()["status"], cancelled.json().get("media")) == ("cancelled", None)
    assert not store_has(server, message["media"]["sha256"])
    async with EventWatcher(server.services.bus) as watcher:
        started = await api.post("/api/v1/sessions/idle/start")
        assert started.status_code == 200
        await watcher.wait_for(
            lambda e: e.session == "idle" and e.payload.get("status") == "WORKING"
        )
    later = await api.post("/api/v1/sessions/idle/messages", json={"to": TO, "text": "after"})
    async with EventWatcher(server.services.bus) as watcher:
        await watcher.wait_for(message_status(later.json()["id"], "sent"))
    assert engine_of(server, "idle").sends == 1  # the cancelled one never went
    stored = (await api.get(f"/api/v1/messages/{message['id']}")).json()
    assert stored["status"] == "cancelled"


async def test_another_tenants_message_cannot_be_edited_or_deleted(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    mine = await sent(server, api, {"to": TO, "text": "mine"})
    key = await tenant_key(server.services, "acme")
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as other:
        path = f"/api/v1/messages/{mine['id']}"
        assert (await other.patch(path, json={"text": "theirs"})).status_code == 404
        assert (await other.delete(path)).status_code == 404
    assert (await api.get(f"/api/v1/messages/{mine['id']}")).json()["text"] == "mine"


async def test_presence_is_shown_in_a_chat(server: RunningServer, api: httpx.AsyncClient) -> None:
    await wait_working(server)
    for chat, state in [(TO, "typing"), ("+55 (11) 98888-7777", "recording")]:
        shown = await api.post(
            f"/api/v1/sessions/default/chats/{chat}/presence", json={"state": state}
        )
        assert shown.status_code == 204, shown.text
    group = "120363043968066561@g.us"
    paused = await api.post(
        f"/api/v1/sessions/default/chats/{group}/presence", json={"state": "paused"}
    )
    assert paused.status_code == 204, paused.text
    presences = engine_of(server).presences
    assert presences[f"{TO}@c.us"] == "typing"
    assert presences["5511988887777@c.us"] == "recording"
    assert presences[group] == "paused"
    for chat, body in [(TO, {"state": "dancing"}), ("nope", {"state": "typing"})]:
        refused = await api.post(f"/api/v1/sessions/default/chats/{chat}/presence", json=body)
        assert refused.status_code == 422, refused.text
    missing = await api.post(
        f"/api/v1/sessions/ghost/chats/{TO}/presence", json={"state": "typing"}
    )
    assert missing.status_code == 404


async def test_an_engine_without_an_action_says_so_and_a_stopped_one_is_409(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    server.services.sessions.engines.register(
        "texts-only",
        EngineSpec(
            factory=lambda: SimulatorEngine.__new__(SimulatorEngine),
            capabilities=frozenset({Capability.TEXT}),
        ),
    )
    made = await api.post(
        "/api/v1/sessions", json={"name": "plain", "engine": "texts-only", "start": False}
    )
    assert made.status_code == 201, made.text
    refused = await api.post(
        f"/api/v1/sessions/plain/chats/{TO}/presence", json={"state": "typing"}
    )
    assert (refused.status_code, refused.json()["error"]) == (422, "unsupported")
    assert "texts-only" in refused.json()["detail"]
    stopped = await api.post("/api/v1/sessions", json={"name": "asleep", "start": False})
    assert stopped.status_code == 201
    idle = await api.post(f"/api/v1/sessions/asleep/chats/{TO}/presence", json={"state": "typing"})
    assert (idle.status_code, idle.json()["error"]) == (409, "session_not_running")


async def test_a_poll_is_sent_and_the_echo_contacts_vote_is_kept(
    any_server: RunningServer, any_api: httpx.AsyncClient
) -> None:
    await wait_working(any_server)
    poll = {"name": "Almoço?", "options": ["Pizza", "Sushi", "Feijoada"], "selectable_count": 1}
    async with EventWatcher(any_server.services.bus) as watcher:
        response = await any_api.post(SEND, json={"to": ECHO, "type": "poll", "poll": poll})
        assert response.status_code == 202, response.text
        vote = await watcher.wait_for(of_type("message.poll_vote"))
    message = response.json()
    assert (message["type"], message["poll"]) == ("poll", poll)
    assert vote.payload["message_id"] == message["id"]
    assert vote.payload["voter"] == ECHO
    assert vote.payload["selected"] == ["Pizza"]
    assert vote.payload["chat_id"] == f"{ECHO}@c.us"
    sent_poll = engine_of(any_server).recent_sends[-1]
    assert sent_poll.poll.options == ("Pizza", "Sushi", "Feijoada")
    stored = (await any_api.get(f"/api/v1/messages/{message['id']}")).json()
    assert stored["poll"]["votes"][ECHO]["selected"] == ["Pizza"]
    assert stored["poll"]["name"] == "Almoço?"
    bad_polls: list[dict[str, Any]] = [
        {"name": "x", "options": ["only"]},
        {"name": "x", "options": ["a", "a"]},
        {"name": "x", "options": [str(n) for n in range(13)]},
        {"name": "x", "options": ["a", "b"], "selectable_count": 13},
        {"name": "", "options": ["a", "b"]},
    ]
    for bad in bad_polls:
        refused = await any_api.post(SEND, json={"to": TO, "type": "poll", "poll": bad})
        assert refused.status_code == 422, bad


async def test_calls_are_rejected_and_answered_when_configured_and_only_reported_if_not(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    caller = "5511977776666"
    policy = {"calls": {"reject": True, "reply": "Não atendo ligações, escreva aqui."}}
    configured = await api.patch("/api/v1/sessions/default", json={"config": policy})
    assert configured.status_code == 200, configured.text
    async with EventWatcher(server.services.bus) as watcher:
        rang = await api.post(f"{SIMULATE}/call", json={"from": caller, "video": True})
        assert rang.status_code == 202, rang.text
        call = await watcher.wait_for(of_type("call.received"))
        reply_id = call.payload["reply_message_id"]
        await watcher.wait_for(message_status(reply_id, "sent"))
    assert rang.json() == {"id": call.payload["id"], "from": caller, "video": True}
    assert call.payload["rejected"] is True
    assert (call.payload["from"], call.payload["video"], call.payload["error"]) == (
        caller,
        True,
        None,
    )
    assert ("reject_call", call.payload["id"]) in engine_of(server).actions
    reply = (await api.get(f"/api/v1/messages/{reply_id}")).json()
    assert (reply["to"], reply["text"]) == (caller, "Não atendo ligações, escreva aqui.")

    assert (await api.patch("/api/v1/sessions/default", json={"config": {}})).status_code == 200
    async with EventWatcher(server.services.bus) as watcher:
        rang = await api.post(f"{SIMULATE}/call", json={"from": caller})
        assert rang.status_code == 202, rang.text
        call = await watcher.wait_for(of_type("call.received"))
    assert (call.payload["rejected"], call.payload["reply_message_id"]) == (False, None)
    assert ("reject_call", call.payload["id"]) not in engine_of(server).actions
    for bad in ({"reject": "yes"}, {"reply": ""}, {"hangup": True}, "no"):
        refused = await api.patch("/api/v1/sessions/default", json={"config": {"calls": bad}})
        assert refused.status_code == 422, bad
        assert refused.json()["detail"][0]["loc"][:3] == ["body", "config", "calls"]


async def test_the_simulator_calls_now_and_then_when_configured(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    config = {"call_mean_seconds": 1, "caller": "5511955554444", "calls": {"reject": True}}
    made = await api.post("/api/v1/sessions", json={"name": "ringing", "config": config})
    assert made.status_code == 201, made.text
    async with EventWatcher(server.services.bus) as watcher:
        call = await watcher.wait_for(of_type("call.received", "ringing"), timeout=15)
    assert call.payload["from"] == "5511955554444"
    assert call.payload["rejected"] is True


async def test_the_other_side_edits_and_deletes_what_it_sent(
    any_server: RunningServer, any_api: httpx.AsyncClient
) -> None:
    await wait_working(any_server)
    text = await any_api.post(f"{SIMULATE}/inbound", json={"from": TO, "text": "oi"})
    document = await any_api.post(
        f"{SIMULATE}/inbound",
        json={"from": TO, "type": "document", "media": {"base64": b64(PDF + b"theirs")}},
    )
    assert document.status_code == 201, document.text
    async with EventWatcher(any_server.services.bus) as watcher:
        edited = await any_api.post(
            f"{SIMULATE}/edit", json={"message_id": text.json()["id"], "text": "oi, tudo bem?"}
        )
        assert edited.status_code == 200, edited.text
        event = await watcher.wait_for(of_type("message.edited"))
    assert (edited.json()["text"], event.payload["text"]) == ("oi, tudo bem?", "oi, tudo bem?")
    assert edited.json()["edited_at"] is not None
    media = document.json()["media"]
    async with EventWatcher(any_server.services.bus) as watcher:
        revoked = await any_api.post(
            f"{SIMULATE}/revoke", json={"message_id": document.json()["id"]}
        )
        assert revoked.status_code == 200, revoked.text
        event = await watcher.wait_for(of_type("message.revoked"))
    assert (revoked.json()["status"], revoked.json().get("media")) == ("revoked", None)
    assert event.payload["id"] == document.json()["id"]
    assert not store_has(any_server, media["sha256"])
    unknown = await any_api.post(f"{SIMULATE}/edit", json={"message_id": "msg_nope", "text": "x"})
    assert unknown.status_code == 404


async def test_webhooks_can_subscribe_to_the_new_events(api: httpx.AsyncClient) -> None:
    events = ["message.edited", "message.revoked", "message.poll_vote", "call.received"]
    made = await api.post(
        "/api/v1/webhooks", json={"url": "https://example.com/hook", "events": events}
    )
    assert made.status_code == 201, made.text
    assert made.json()["events"] == events
