"""Meta's callback URL on a real server: the verify handshake, signatures checked before
anything is read (a known-answer vector), repeats and out-of-order statuses, failures."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.cloudapi.conftest import VERIFY, Meta, create_session
from tests.conftest import RunningServer
from tests.media.files import png, sha
from tests.support.events import EventWatcher, message_status, of_type
from tests.support.fake_graph import FakeGraph
from zapgate.engines.cloudapi.callbacks import BadSignature, signature_of, verify

PEER = "5511988887777"


def test_the_signature_matches_known_answers() -> None:
    # RFC 2104 HMAC-SHA256 vectors, computed independently (openssl dgst -sha256 -hmac)
    fox = b"The quick brown fox jumps over the lazy dog"
    assert signature_of(fox, "key") == (
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    expected = "sha256=71881a2a233cb4ce25474fff0755785b23a36062127f8a88b80ccd30273f5fb9"
    assert signature_of(body, "zapgate-kat-secret") == expected
    verify(body, expected, "zapgate-kat-secret")
    verify(body, expected.upper().replace("SHA256=", "sha256="), "zapgate-kat-secret")
    for wrong in (None, "", expected[:-1] + "0", expected.removeprefix("sha256="), "sha1=x"):
        with pytest.raises(BadSignature):
            verify(body, wrong, "zapgate-kat-secret")
    with pytest.raises(BadSignature):
        verify(body + b" ", expected, "zapgate-kat-secret")


async def test_the_verify_handshake_echoes_the_challenge_only_for_the_right_token(
    server: RunningServer, meta: Meta
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as anonymous:  # no API key: Meta has none
        params = {
            "hub.mode": "subscribe",
            "hub.verify_token": VERIFY,
            "hub.challenge": "1158201444",
        }
        ok = await anonymous.get(meta.callback_path, params=params)
        assert (ok.status_code, ok.text) == (200, "1158201444")
        assert ok.headers["content-type"].startswith("text/plain")
        wrong = await anonymous.get(meta.callback_path, params={**params, "hub.verify_token": "x"})
        assert wrong.status_code == 403
        assert wrong.json()["error"] == "forbidden"
        assert "1158201444" not in wrong.text
        mode = await anonymous.get(meta.callback_path, params={**params, "hub.mode": "unsubscribe"})
        assert mode.status_code == 403
        other = await anonymous.get("/api/v1/cloudapi/default/nosuchsession/webhook", params=params)
        assert other.status_code == 403  # the same answer: no telling which sessions exist


async def test_a_callback_without_the_right_signature_is_refused_and_nothing_is_stored(
    server: RunningServer, api: httpx.AsyncClient, meta: Meta
) -> None:
    fake = meta.fake
    value = fake.inbound_value({"from": PEER, "type": "text", "text": {"body": "forged"}})
    body = fake.envelope(value)
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        for headers in (
            {},
            {"X-Hub-Signature-256": "sha256=" + "0" * 64},
            {"X-Hub-Signature-256": fake.sign(body, "another-secret")},
            {"X-Hub-Signature-256": fake.sign(body + b"\n")},
        ):
            answer = await anonymous.post(
                meta.callback_path,
                content=body,
                headers={"content-type": "application/json", **headers},
            )
            assert answer.status_code == 401, answer.text
            assert answer.json()["error"] == "unauthorized"
        unsigned_junk = await anonymous.post(meta.callback_path, content=b"not json")
        assert unsigned_junk.status_code == 401  # the signature comes before reading the body
    history = await api.get(f"/api/v1/sessions/{meta.session}/messages")
    assert history.json()["data"] == []
    assert await fake.deliver(value) == 200
    history = await api.get(f"/api/v1/sessions/{meta.session}/messages")
    assert [m["text"] for m in history.json()["data"]] == ["forged"]


async def test_a_repeated_callback_stores_the_message_once(
    server: RunningServer, api: httpx.AsyncClient, meta: Meta
) -> None:
    fake = meta.fake
    value = fake.inbound_value(
        {"from": PEER, "type": "text", "text": {"body": "Oi!"}, "new_field": {"x": 1}}
    )
    async with EventWatcher(server.services.bus) as watcher:
        for _ in range(3):  # Meta retries when it did not see the 200 in time
            assert await fake.deliver(value) == 200
        received = await watcher.wait_for(of_type("message.received", meta.session))
    history = (await api.get(f"/api/v1/sessions/{meta.session}/messages")).json()
    assert len(history["data"]) == 1
    message = history["data"][0]
    assert (message["from"], message["text"], message["type"]) == (PEER, "Oi!", "text")
    assert message["engine_message_id"] == value["messages"][0]["id"]
    assert message["raw"]["new_field"] == {"x": 1}  # unknown fields are kept
    assert message["raw"]["profile_name"] == "Cliente"
    assert len([e for e in watcher.seen if e.type == "message.received"]) == 1
    assert received.payload["id"] == message["id"]


async def test_statuses_arrive_in_order_and_a_late_delivered_never_undoes_read(
    server: RunningServer, api: httpx.AsyncClient, meta: Meta
) -> None:
    fake = meta.fake
    fake.auto_status = False
    async with EventWatcher(server.services.bus) as watcher:
        sent = await api.post(
            "/api/v1/sessions/meta/messages", json={"to": PEER, "text": "status order"}
        )
        message_id = sent.json()["id"]
        await watcher.wait_for(message_status(message_id, "sent"))
        wamid = fake.sends[-1].wamid
        assert await fake.deliver(fake.status_value(wamid, "read", PEER)) == 200
        await watcher.wait_for(message_status(message_id, "read"))
        assert await fake.deliver(fake.status_value(wamid, "delivered", PEER)) == 200
        assert await fake.deliver(fake.status_value(wamid, "sent", PEER)) == 200
    stored = (await api.get(f"/api/v1/messages/{message_id}")).json()
    assert stored["status"] == "read"
    moves = [e.payload["status"] for e in watcher.seen if e.payload.get("id") == message_id]
    assert moves == ["queued", "sent", "read"]


async def test_auto_statuses_move_a_message_to_read_through_the_callback_url(
    server: RunningServer, api: httpx.AsyncClient, meta: Meta
) -> None:
    async with EventWatcher(server.services.bus) as watcher:
        sent = await api.post("/api/v1/sessions/meta/messages", json={"to": PEER, "text": "hello"})
        message_id = sent.json()["id"]
        await watcher.wait_for(message_status(message_id, "read"))
    moves = [e.payload["status"] for e in watcher.seen if e.payload.get("id") == message_id]
    assert moves == ["queued", "sent", "delivered", "read"]
    assert meta.fake.callback_errors == []


async def test_a_failed_status_fails_the_message_with_metas_reason(
    server: RunningServer, api: httpx.AsyncClient, meta: Meta
) -> None:
    fake = meta.fake
    fake.auto_status = False
    async with EventWatcher(server.services.bus) as watcher:
        sent = await api.post("/api/v1/sessions/meta/messages", json={"to": PEER, "text": "x"})
        message_id = sent.json()["id"]
        await watcher.wait_for(message_status(message_id, "sent"))
        errors = [
            {
                "code": 131026,
                "title": "Message undeliverable",
                "message": "Message undeliverable",
                "error_data": {"details": "Message Undeliverable."},
            }
        ]
        failed = fake.status_value(fake.sends[-1].wamid, "failed", PEER, errors)
        assert await fake.deliver(failed) == 200
        event = await watcher.wait_for(message_status(message_id, "failed"))
    assert "131026" in event.payload["error"]
    assert "not on WhatsApp" in event.payload["error"]


async def test_a_received_image_is_downloaded_with_the_token_and_stored(
    server: RunningServer, api: httpx.AsyncClient, meta: Meta
) -> None:
    fake = meta.fake
    image = png(7)
    media_id = fake.add_media(image, "image/png")
    value = fake.inbound_value(
        {
            "from": PEER,
            "type": "image",
            "image": {
                "id": media_id,
                "mime_type": "image/png",
                "sha256": sha(image),
                "caption": "foto",
            },
        }
    )
    async with EventWatcher(server.services.bus) as watcher:
        assert await fake.deliver(value) == 200
        received = await watcher.wait_for(of_type("message.received", meta.session))
    media = received.payload["media"]
    assert (received.payload["type"], received.payload["text"]) == ("image", "foto")
    assert media["sha256"] == sha(image)
    got = await api.get(f"/api/v1/media/{media['id']}")
    assert got.content == image


async def test_a_change_about_another_number_of_the_tenant_goes_to_its_session(
    server: RunningServer, api: httpx.AsyncClient, meta: Meta
) -> None:
    other = FakeGraph(phone_number_id="200000000000002", app_secret=meta.fake.app_secret)
    await other.start()
    try:
        await create_session(server, api, other, name="second")
        value = other.inbound_value({"from": PEER, "type": "text", "text": {"body": "to 2"}})
        body = other.envelope(value)
        async with httpx.AsyncClient(base_url=server.url) as anonymous:
            answer = await anonymous.post(  # the app's one URL: the first session's
                meta.callback_path,
                content=body,
                headers={"X-Hub-Signature-256": other.sign(body)},
            )
        assert answer.status_code == 200, answer.text
        assert answer.json()["messages"] == 1
        second = (await api.get("/api/v1/sessions/second/messages")).json()
        assert [m["text"] for m in second["data"]] == ["to 2"]
        first = (await api.get(f"/api/v1/sessions/{meta.session}/messages")).json()
        assert first["data"] == []
        stray = other.envelope(
            {**value, "metadata": {"phone_number_id": "999", "display_phone_number": "1"}}
        )
        async with httpx.AsyncClient(base_url=server.url) as anonymous:
            answer = await anonymous.post(
                meta.callback_path,
                content=stray,
                headers={"X-Hub-Signature-256": other.sign(stray)},
            )
        assert answer.json()["other_numbers"] == ["999"]
    finally:
        await other.stop()


async def test_a_signed_body_that_is_not_json_is_refused_with_422(
    server: RunningServer, meta: Meta
) -> None:
    body = b"{not json"
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        answer = await anonymous.post(
            meta.callback_path, content=body, headers={"X-Hub-Signature-256": meta.fake.sign(body)}
        )
    assert answer.status_code == 422
    assert json.loads(answer.text)["error"] == "invalid_input"


async def test_marking_a_chat_read_sends_metas_read_receipt_for_its_newest_message(
    server: RunningServer, api: httpx.AsyncClient, meta: Meta
) -> None:
    fake = meta.fake
    first = fake.inbound_value({"from": PEER, "type": "text", "text": {"body": "um"}})
    second = fake.inbound_value({"from": PEER, "type": "text", "text": {"body": "dois"}})
    assert await fake.deliver(first) == 200
    assert await fake.deliver(second) == 200
    answer = await api.post(f"/api/v1/sessions/meta/chats/{PEER}/read")
    assert answer.status_code == 200, answer.text
    assert answer.json()["receipts"] == "sent"
    assert answer.json()["unread_count"] == 0
    receipt = fake.sends[-1].payload
    assert receipt == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": second["messages"][0]["id"],
    }


async def test_a_session_with_a_call_policy_still_takes_callbacks(
    server: RunningServer, api: httpx.AsyncClient, graph: FakeGraph
) -> None:
    meta = await create_session(server, api, graph, name="calls", calls={"reject": True})
    value = graph.inbound_value({"from": PEER, "type": "text", "text": {"body": "oi"}})
    assert await graph.deliver(value) == 200
    history = (await api.get("/api/v1/sessions/calls/messages")).json()["data"]
    assert [m["text"] for m in history] == ["oi"]
    assert meta.session == "calls"


async def test_a_failed_status_that_outruns_the_send_fails_the_message_once_it_is_sent(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    messages = server.services.messages
    created = await api.post(
        "/api/v1/sessions", json={"name": "early", "engine": "simulator", "start": False}
    )
    assert created.status_code == 201, created.text
    queued = await messages.accept("default", "early", "", PEER, "race")
    # Meta's `failed` callback comes in before the send's own answer was recorded
    assert await messages.record_undelivered("default", "early", "wamid.EARLY", "131026") is None
    async with EventWatcher(server.services.bus) as watcher:
        await messages.record_sent(queued, "wamid.EARLY")
        failed = await watcher.wait_for(message_status(queued.id, "failed"))
    assert failed.payload["error"] == "131026"
    moves = [e.payload["status"] for e in watcher.seen if e.payload.get("id") == queued.id]
    assert moves == ["sent", "failed"]
