"""The SMS callback URL on a real server: sends through the API reach the fake Twilio and its
signed status callbacks move the message; inbound SMS are recorded once; forged or unsigned
callbacks are refused with 403 before anything is stored."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import AUTH, RunningServer, make_settings, serve
from tests.sms.conftest import PEER, Sms, create_session
from tests.support.events import EventWatcher, message_status, of_type
from tests.support.fake_twilio import FakeTwilio
from zapgate.services import build_services

SEND = "/api/v1/sessions/sms-br/messages"


async def history(api: httpx.AsyncClient, session: str = "sms-br") -> list[dict]:  # type: ignore[type-arg]
    answer = await api.get(f"/api/v1/sessions/{session}/messages")
    assert answer.status_code == 200, answer.text
    data: list[dict] = answer.json()["data"]  # type: ignore[type-arg]
    return data


async def test_a_sent_text_moves_to_delivered_through_signed_status_callbacks(
    server: RunningServer, api: httpx.AsyncClient, sms: Sms
) -> None:
    async with EventWatcher(server.services.bus) as watcher:
        sent = await api.post(SEND, json={"to": PEER, "text": "Seu código: 1234"})
        assert sent.status_code == 202, sent.text
        message_id = sent.json()["id"]
        await watcher.wait_for(message_status(message_id, "delivered"))
    await sms.fake.drain()
    request = sms.fake.sends[-1]
    assert request.params["To"] == PEER
    assert request.params["StatusCallback"] == sms.callback_url
    assert request.callbacks == ["queued", "sent", "delivered"]
    assert sms.fake.callback_errors == []
    assert {status for _, status in sms.fake.callback_answers} == {200}
    moves = [e.payload["status"] for e in watcher.seen if e.payload.get("id") == message_id]
    assert moves == ["queued", "sent", "delivered"]
    stored = (await api.get(f"/api/v1/messages/{message_id}")).json()
    assert stored["engine_message_id"] == request.sid
    assert stored["to"] == PEER


async def test_an_undelivered_status_fails_the_message_with_twilios_code(
    server: RunningServer, api: httpx.AsyncClient, sms: Sms
) -> None:
    sms.fake.unreachable.add(PEER)
    async with EventWatcher(server.services.bus) as watcher:
        sent = await api.post(SEND, json={"to": PEER, "text": "are you there?"})
        message_id = sent.json()["id"]
        failed = await watcher.wait_for(message_status(message_id, "failed"))
    assert "30003" in failed.payload["error"]
    assert "unreachable" in failed.payload["error"]
    stored = (await api.get(f"/api/v1/messages/{message_id}")).json()
    assert stored["status"] == "failed"


async def test_a_refused_send_fails_the_message_with_twilios_code(
    server: RunningServer, api: httpx.AsyncClient, sms: Sms
) -> None:
    sms.fake.unsubscribed.add(PEER)
    async with EventWatcher(server.services.bus) as watcher:
        sent = await api.post(SEND, json={"to": PEER, "text": "promo"})
        failed = await watcher.wait_for(message_status(sent.json()["id"], "failed"))
    assert "21610" in failed.payload["error"]


async def test_an_inbound_sms_is_recorded_once_however_often_it_comes(
    server: RunningServer, api: httpx.AsyncClient, sms: Sms
) -> None:
    params = sms.fake.inbound_params(PEER, "Oi! Quero o meu pedido")
    async with EventWatcher(server.services.bus) as watcher:
        for _ in range(3):  # Twilio retries when it did not see the answer in time
            assert await sms.fake.post(sms.callback_url, params) == 200
        received = await watcher.wait_for(of_type("message.received", sms.session))
    messages = await history(api)
    assert len(messages) == 1
    message = messages[0]
    assert (message["from"], message["text"], message["type"]) == (PEER, params["Body"], "text")
    assert message["engine_message_id"] == params["MessageSid"]
    assert message["raw"]["FromCity"] == "SAO PAULO"
    assert len([e for e in watcher.seen if e.type == "message.received"]) == 1
    assert received.payload["id"] == message["id"]


async def test_the_answer_is_empty_twiml(server: RunningServer, sms: Sms) -> None:
    params = sms.fake.inbound_params(PEER, "oi")
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        answer = await anonymous.post(
            sms.callback_path,
            data=params,
            headers={"X-Twilio-Signature": sms.fake.signature(sms.callback_url, params)},
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/xml")
    assert answer.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'


async def test_forged_callbacks_are_refused_and_nothing_is_stored(
    server: RunningServer, api: httpx.AsyncClient, sms: Sms
) -> None:
    fake = sms.fake
    params = fake.inbound_params(PEER, "forged")
    url = sms.callback_url
    forged = {**params, "Body": "changed after signing"}
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        for data, headers in (
            (params, {}),
            (params, {"X-Twilio-Signature": ""}),
            (params, {"X-Twilio-Signature": fake.signature(url, params, "another-token")}),
            (params, {"X-Twilio-Signature": fake.signature(url + "?x=1", params)}),
            (forged, {"X-Twilio-Signature": fake.signature(url, params)}),
        ):
            answer = await anonymous.post(sms.callback_path, data=data, headers=headers)
            assert answer.status_code == 403, answer.text
            assert answer.json()["error"] == "forbidden"
        junk = await anonymous.post(sms.callback_path, content=b"\xff\xfe not a form")
        assert junk.status_code == 403  # the signature comes before reading the body
        other = await anonymous.post(
            "/api/v1/sms/default/nosuchsession/webhook",
            data=params,
            headers={"X-Twilio-Signature": fake.signature(url, params)},
        )
        assert other.status_code == 403  # the same answer: no telling which sessions exist
    assert await history(api) == []
    assert await fake.post(url, params) == 200
    assert [m["text"] for m in await history(api)] == ["forged"]


async def test_a_forged_status_leaves_the_message_as_it_was(
    server: RunningServer, api: httpx.AsyncClient, sms: Sms
) -> None:
    fake = sms.fake
    fake.auto_status = False
    async with EventWatcher(server.services.bus) as watcher:
        sent = await api.post(SEND, json={"to": PEER, "text": "x"})
        message_id = sent.json()["id"]
        await watcher.wait_for(message_status(message_id, "sent"))
    failed = fake.status_params(fake.sends[-1], "failed", 30003)
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        for signature in ("", fake.signature(sms.callback_url, failed, "another-token")):
            answer = await anonymous.post(
                sms.callback_path, data=failed, headers={"X-Twilio-Signature": signature}
            )
            assert answer.status_code == 403
    assert (await api.get(f"/api/v1/messages/{message_id}")).json()["status"] == "sent"
    assert await fake.report(fake.sends[-1], "delivered") == 200
    assert (await api.get(f"/api/v1/messages/{message_id}")).json()["status"] == "delivered"


async def test_a_simulator_session_takes_no_sms_callbacks(
    server: RunningServer, api: httpx.AsyncClient, twilio: FakeTwilio
) -> None:
    created = await api.post("/api/v1/sessions", json={"name": "wa", "engine": "simulator"})
    assert created.status_code == 201, created.text
    url = f"{server.url}/api/v1/sms/default/wa/webhook"
    params = twilio.inbound_params(PEER, "x")
    assert await twilio.post(url, params) == 403


async def test_repeated_forgeries_from_one_address_are_throttled(
    tmp_path: Path, twilio: FakeTwilio
) -> None:
    settings = make_settings(tmp_path, webhook_allowlist="127.0.0.1", auth_failures_per_minute=3)
    async with (
        serve(build_services(settings)) as server,
        httpx.AsyncClient(base_url=server.url, headers=AUTH) as api,
    ):
        sms = await create_session(server, api, twilio)
        params = twilio.inbound_params(PEER, "x")
        statuses = []
        async with httpx.AsyncClient(base_url=server.url) as anonymous:
            for _ in range(5):
                answer = await anonymous.post(
                    sms.callback_path, data=params, headers={"X-Twilio-Signature": "AAAA"}
                )
                statuses.append(answer.status_code)
        assert statuses == [403, 403, 403, 429, 429]
        assert await history(api) == []


async def test_the_auth_token_is_never_shown_and_a_new_api_base_needs_it_again(
    api: httpx.AsyncClient, sms: Sms
) -> None:
    shown = (await api.get("/api/v1/sessions/sms-br")).json()
    assert shown["config"]["auth_token"] == "********"
    assert sms.fake.auth_token not in str(shown)
    assert shown["channel"] == "sms"
    assert shown["capabilities"] == ["text"]
    assert shown["me"]["id"] == sms.fake.number
    moved = {**shown["config"], "api_base": "https://api.example.com"}
    del moved["auth_token"]
    answer = await api.patch("/api/v1/sessions/sms-br", json={"config": moved})
    assert answer.status_code == 422, answer.text


async def test_an_api_base_on_an_internal_address_is_refused(
    api: httpx.AsyncClient, twilio: FakeTwilio
) -> None:
    for url in ("http://169.254.169.254", "http://10.0.0.7:8080", "http://localhost:9"):
        config = {
            "account_sid": twilio.account_sid,
            "auth_token": "t",
            "from": twilio.number,
            "api_base": url,
        }
        answer = await api.post(
            "/api/v1/sessions", json={"name": "ssrf", "engine": "sms", "config": config}
        )
        assert answer.status_code == 422, (url, answer.text)
        assert "api_base" in answer.text


async def test_two_sessions_keep_their_callbacks_apart(
    server: RunningServer, api: httpx.AsyncClient, sms: Sms
) -> None:
    other = FakeTwilio(number="+15005550007", auth_token="second-account-token-xyz")
    await other.start()
    try:
        second = await create_session(server, api, other, name="sms-us")
        params = other.inbound_params(PEER, "to the second")
        # signed for the second session's URL, posted to the first's: refused
        signature = other.signature(second.callback_url, params)
        async with httpx.AsyncClient(base_url=server.url) as anonymous:
            answer = await anonymous.post(
                sms.callback_path, data=params, headers={"X-Twilio-Signature": signature}
            )
        assert answer.status_code == 403
        assert await other.post(second.callback_url, params) == 200
        assert [m["text"] for m in await history(api, "sms-us")] == ["to the second"]
        assert await history(api) == []
    finally:
        await other.stop()
    assert other.problems == []
