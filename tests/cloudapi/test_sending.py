"""Sending through a Cloud API session on a real server: Meta's JSON for templates and
interactive messages, files uploaded then sent by id, Meta's errors sorted by code, the strict
rate, and the session's write-only secrets and SSRF-checked base URL."""

from __future__ import annotations

import json
from typing import Any

import httpx
import sqlalchemy as sa

from tests.cloudapi.conftest import Meta, config_for, create_session
from tests.cloudapi.test_limiter import busiest_window
from tests.conftest import RunningServer
from tests.media.files import b64, png, sha
from tests.support.events import EventWatcher, message_status, status_is
from tests.support.fake_graph import FakeGraph
from zapgate.db import tables
from zapgate.engines.cloudapi.engine import CloudApiEngine

PEER = "5511988887777"
SEND = "/api/v1/sessions/meta/messages"


async def test_the_token_and_app_secret_are_never_shown_and_kept_on_update(
    api: httpx.AsyncClient, meta: Meta
) -> None:
    shown = (await api.get("/api/v1/sessions/meta")).json()
    config = shown["config"]
    assert config["access_token"] == config["app_secret"] == "********"
    assert config["phone_number_id"] == meta.fake.phone_number_id
    assert meta.fake.access_token not in str(shown)
    assert meta.fake.app_secret not in str(shown)
    assert shown["me"]["id"] == "5511955550100"
    assert shown["me"]["name"] == "Zapgate Test"
    assert shown["capabilities"][-2:] == ["template", "interactive"]
    # sent back as shown, or left out: kept; the session still works after a restart
    changed = {**config, "rate_per_second": 500}
    del changed["app_secret"]
    patched = await api.patch("/api/v1/sessions/meta", json={"config": changed})
    assert patched.status_code == 200, patched.text
    restarted = await api.post("/api/v1/sessions/meta/restart")
    assert restarted.status_code == 200, restarted.text


async def test_the_stored_secrets_survive_an_update_that_shows_them_masked(
    server: RunningServer, api: httpx.AsyncClient, meta: Meta
) -> None:
    config = (await api.get("/api/v1/sessions/meta")).json()["config"]
    await api.patch("/api/v1/sessions/meta", json={"config": {**config, "pair_burst": 5}})
    stored = await server.services.sessions.get("default", "meta")
    assert stored.config["access_token"] == meta.fake.access_token
    assert stored.config["app_secret"] == meta.fake.app_secret
    assert stored.config["pair_burst"] == 5


async def test_a_base_url_on_an_internal_address_is_refused_unless_allowlisted(
    api: httpx.AsyncClient, graph: FakeGraph
) -> None:
    for url in ("http://169.254.169.254", "http://10.0.0.7:8080", "http://localhost:9"):
        answer = await api.post(
            "/api/v1/sessions",
            json={"name": "ssrf", "engine": "cloudapi", "config": config_for(graph, base_url=url)},
        )
        assert answer.status_code == 422, (url, answer.text)
        assert "base_url" in answer.text
    missing = await api.post(
        "/api/v1/sessions", json={"name": "bad", "engine": "cloudapi", "config": {}}
    )
    assert missing.status_code == 422
    assert "phone_number_id" in missing.text


async def test_a_bad_token_fails_the_session_with_metas_error(
    server: RunningServer, api: httpx.AsyncClient, graph: FakeGraph
) -> None:
    async with EventWatcher(server.services.bus) as watcher:
        created = await api.post(
            "/api/v1/sessions",
            json={
                "name": "badtoken",
                "engine": "cloudapi",
                "config": config_for(graph, access_token="EAAG-revoked"),
            },
        )
        assert created.status_code == 201
        failed = await watcher.wait_for(status_is("badtoken", "FAILED"))
    assert "190" in failed.payload["reason"]
    assert "EAAG-revoked" not in str(failed.payload)
    assert not any(status_is("badtoken", "WORKING")(e) for e in watcher.seen)


async def send_and_wait(
    server: RunningServer, api: httpx.AsyncClient, body: dict[str, Any], status: str = "sent"
) -> dict[str, Any]:
    async with EventWatcher(server.services.bus) as watcher:
        answer = await api.post(SEND, json=body)
        assert answer.status_code == 202, answer.text
        event = await watcher.wait_for(message_status(answer.json()["id"], status))
    return dict(event.payload)


async def test_a_template_goes_out_as_metas_template_object(
    server: RunningServer, api: httpx.AsyncClient, meta: Meta
) -> None:
    template = {
        "name": "order_update",
        "language": {"code": "pt_BR"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "#123"}],
            }
        ],
    }
    sent = await send_and_wait(server, api, {"to": PEER, "type": "template", "template": template})
    assert sent["type"] == "template"
    assert sent["template"] == template
    payload = meta.fake.sends[-1].payload
    assert payload["type"] == "template"
    assert payload["template"] == template
    assert payload["to"] == PEER
    # an unknown template: Meta's 132001 is permanent, the message fails saying so
    failed = await send_and_wait(
        server,
        api,
        {"to": PEER, "type": "template", "template": {**template, "name": "no_such_one"}},
        "failed",
    )
    assert "132001" in failed["error"]


async def test_reply_buttons_and_lists_go_out_as_metas_interactive_objects(
    server: RunningServer, api: httpx.AsyncClient, meta: Meta
) -> None:
    buttons = {
        "type": "button",
        "body": {"text": "Confirma o pedido?"},
        "footer": {"text": "zapgate"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "yes", "title": "Sim"}},
                {"type": "reply", "reply": {"id": "no", "title": "Não"}},
            ]
        },
    }
    sent = await send_and_wait(
        server, api, {"to": PEER, "type": "interactive", "interactive": buttons}
    )
    assert sent["text"] == "Confirma o pedido?"
    assert meta.fake.sends[-1].payload["interactive"] == buttons
    menu = {
        "type": "list",
        "header": {"type": "text", "text": "Cardápio"},
        "body": {"text": "Escolha"},
        "action": {
            "button": "Ver opções",
            "sections": [
                {"title": "Pizzas", "rows": [{"id": "p1", "title": "Margherita"}]},
                {
                    "title": "Bebidas",
                    "rows": [{"id": "b1", "title": "Suco", "description": "500 ml"}],
                },
            ],
        },
    }
    await send_and_wait(server, api, {"to": PEER, "type": "interactive", "interactive": menu})
    assert meta.fake.sends[-1].payload["interactive"] == menu
    too_many = {**buttons, "action": {"buttons": buttons["action"]["buttons"] * 2}}  # type: ignore[operator]
    refused = await api.post(
        SEND, json={"to": PEER, "type": "interactive", "interactive": too_many}
    )
    assert refused.status_code == 422
    same_ids = {**buttons, "action": {"buttons": [buttons["action"]["buttons"][0]] * 2}}  # type: ignore[index]
    refused = await api.post(
        SEND, json={"to": PEER, "type": "interactive", "interactive": same_ids}
    )
    assert refused.status_code == 422
    assert refused.json()["error"] == "invalid_interactive"
    assert "distinct" in refused.json()["detail"]


async def test_an_engine_without_templates_refuses_them(api: httpx.AsyncClient) -> None:
    created = await api.post(
        "/api/v1/sessions",
        json={"name": "textonly", "config": {"types": ["text", "image"]}, "start": False},
    )
    assert created.status_code == 201, created.text
    template = {"name": "hello_world", "language": {"code": "en_US"}}
    answer = await api.post(
        "/api/v1/sessions/textonly/messages",
        json={"to": PEER, "type": "template", "template": template},
    )
    assert answer.status_code == 422
    assert answer.json()["error"] == "unsupported_message_type"


async def test_a_file_is_uploaded_once_and_sent_by_its_media_id(
    server: RunningServer, api: httpx.AsyncClient, meta: Meta
) -> None:
    image = png(3)
    body = {"to": PEER, "type": "image", "media": {"base64": b64(image)}, "caption": "um"}
    await send_and_wait(server, api, body)
    await send_and_wait(server, api, {**body, "caption": "dois"})
    first, second = (sent.payload for sent in meta.fake.sends[-2:])
    assert first["image"]["id"] == second["image"]["id"]
    assert [first["image"]["caption"], second["image"]["caption"]] == ["um", "dois"]
    assert len(meta.fake.uploads) == 1
    upload = meta.fake.uploads[first["image"]["id"]]
    assert (sha(upload.data), upload.mime_type) == (sha(image), "image/png")


async def test_metas_errors_are_sorted_by_code_not_by_http_status(
    server: RunningServer, api: httpx.AsyncClient, meta: Meta
) -> None:
    fake = meta.fake
    fake.fail_sends(131047)  # outside the 24-hour window: permanent
    failed = await send_and_wait(server, api, {"to": PEER, "text": "late"}, "failed")
    assert "131047" in failed["error"]
    assert "template" in failed["error"]
    assert failed["attempts"] == 1
    fake.fail_sends(131000, http_status=400)  # "something went wrong": worth a retry
    retried = await send_and_wait(server, api, {"to": PEER, "text": "again"})
    assert retried["attempts"] == 2
    fake.fail_sends(130429)  # too fast: retried, and the number slows down
    engine = server.services.sessions.runner("default", "meta").engine  # type: ignore[union-attr]
    assert isinstance(engine, CloudApiEngine)
    assert engine.limiter is not None
    before = engine.limiter.limit
    await send_and_wait(server, api, {"to": "5511911112222", "text": "slower"})
    assert engine.limiter.limit == before // 2


async def test_an_expired_token_fails_the_session_and_keeps_its_messages_queued(
    server: RunningServer, api: httpx.AsyncClient, meta: Meta
) -> None:
    meta.fake.fail_sends(190, http_status=401, count=1)
    meta.fake.access_token = "EAAG-rotated"  # the session's token no longer works
    async with EventWatcher(server.services.bus) as watcher:
        answer = await api.post(SEND, json={"to": PEER, "text": "waits"})
        message_id = answer.json()["id"]
        await watcher.wait_for(status_is("meta", "FAILED"))
    stored = (await api.get(f"/api/v1/messages/{message_id}")).json()
    assert stored["status"] == "queued"
    # the operator puts the new token in: the message goes
    async with EventWatcher(server.services.bus) as watcher:
        patched = await api.patch(
            "/api/v1/sessions/meta", json={"config": meta.config(access_token="EAAG-rotated")}
        )
        assert patched.status_code == 200
        assert (await api.post("/api/v1/sessions/meta/restart")).status_code == 200
        await watcher.wait_for(message_status(message_id, "sent"), timeout=10)


async def test_the_rate_per_second_is_never_exceeded_at_meta(
    server: RunningServer, api: httpx.AsyncClient, graph: FakeGraph
) -> None:
    await create_session(server, api, graph, name="paced", rate_per_second=20)
    graph.auto_status = False
    async with EventWatcher(server.services.bus) as watcher:
        ids = []
        for n in range(70):
            answer = await api.post(
                "/api/v1/sessions/paced/messages", json={"to": f"55119{n:08d}", "text": str(n)}
            )
            ids.append(answer.json()["id"])
        for message_id in ids:
            await watcher.wait_for(message_status(message_id, "sent"), timeout=15)
    arrivals = [sent.at for sent in graph.sends]
    assert len(arrivals) == 70
    assert busiest_window(arrivals) <= 20
    assert arrivals[-1] - arrivals[0] >= 3 * 1.0  # 70 at 20 a second: no burst


async def test_the_simulator_takes_both_and_its_echo_contact_taps_the_first_button(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    echo = "5511900000000"  # the simulator's echo contact
    buttons = {
        "type": "button",
        "body": {"text": "Pizza?"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Sim"}}]},
    }
    template = {"name": "hello_world", "language": {"code": "en_US"}}
    async with EventWatcher(server.services.bus) as watcher:
        for body in (
            {"to": echo, "type": "interactive", "interactive": buttons},
            {"to": echo, "type": "template", "template": template},
        ):
            sent = await api.post("/api/v1/sessions/default/messages", json=body)
            assert sent.status_code == 202, sent.text
            await watcher.wait_for(message_status(sent.json()["id"], "sent"))
        tap = await watcher.wait_for(
            lambda e: e.type == "message.received" and e.payload["text"] == "Sim"
        )
        answer = await watcher.wait_for(
            lambda e: e.type == "message.received" and e.payload["text"] == "hello_world"
        )
    reply = tap.payload["raw"]["interactive"]
    assert reply == {"type": "button_reply", "button_reply": {"id": "yes", "title": "Sim"}}
    assert (tap.payload["type"], answer.payload["type"]) == ("text", "text")


async def test_the_token_and_app_secret_are_sealed_at_rest(
    server: RunningServer, meta: Meta
) -> None:
    async with server.services.database.connect() as connection:
        stored = (
            await connection.execute(
                sa.select(tables.sessions.c.config).where(tables.sessions.c.name == "meta")
            )
        ).scalar_one()
    for key, plain in (
        ("access_token", meta.fake.access_token),
        ("app_secret", meta.fake.app_secret),
    ):
        assert stored[key].startswith("sealed:v1:")
        assert plain not in stored[key]
    assert stored["verify_token"] == "my-verify-token"  # not a secret of Meta's: kept as given
    assert meta.fake.access_token not in json.dumps(stored)
    session = await server.services.sessions.get("default", "meta")
    assert session.config["access_token"] == meta.fake.access_token  # opened when read


async def test_a_new_base_url_needs_the_secrets_again(
    api: httpx.AsyncClient, meta: Meta, graph: FakeGraph
) -> None:
    shown = (await api.get("/api/v1/sessions/meta")).json()["config"]
    elsewhere = {**shown, "base_url": "https://graph.example.com"}  # the secrets masked
    refused = await api.patch("/api/v1/sessions/meta", json={"config": elsewhere})
    assert refused.status_code == 422
    assert "access_token" in refused.text
    given = {**elsewhere, "access_token": "EAAG-new", "app_secret": "s3cr3t"}
    assert (await api.patch("/api/v1/sessions/meta", json={"config": given})).status_code == 200
    forged = {**shown, "access_token": "sealed:v1:gAAAAAB-not-yours"}
    refused = await api.patch("/api/v1/sessions/meta", json={"config": forged})
    assert refused.status_code == 422
    assert "sealed" in refused.text


async def test_a_sealed_value_opens_only_for_the_session_it_was_sealed_for(
    server: RunningServer, api: httpx.AsyncClient, meta: Meta
) -> None:
    created = await api.post(
        "/api/v1/sessions",
        json={
            "name": "other",
            "engine": "cloudapi",
            "config": meta.config(access_token="EAAG-other"),
            "start": False,
        },
    )
    assert created.status_code == 201, created.text
    sessions = tables.sessions
    async with server.services.database.begin() as connection:
        stolen = (
            await connection.execute(sa.select(sessions.c.config).where(sessions.c.name == "meta"))
        ).scalar_one()
        other = (
            await connection.execute(sa.select(sessions.c.config).where(sessions.c.name == "other"))
        ).scalar_one()
        await connection.execute(
            sa.update(sessions)
            .where(sessions.c.name == "other")
            .values(config={**other, "access_token": stolen["access_token"]})
        )
    opened = (await server.services.sessions.get("default", "other")).config["access_token"]
    assert opened == stolen["access_token"]  # left sealed: never meta's token
    assert opened != meta.fake.access_token


async def test_metas_error_never_shows_the_token_it_quotes(
    server: RunningServer, api: httpx.AsyncClient, meta: Meta
) -> None:
    token = meta.fake.access_token
    meta.fake.fail_sends(190, http_status=401, message=f"Malformed access token {token}")
    async with EventWatcher(server.services.bus) as watcher:
        await api.post(SEND, json={"to": PEER, "text": "x"})
        failed = await watcher.wait_for(status_is("meta", "FAILED"))
    assert "Malformed access token ********" in failed.payload["reason"]
    assert token not in json.dumps(failed.payload)


async def test_a_lid_is_never_sent_to_as_a_phone_number(
    server: RunningServer, api: httpx.AsyncClient, meta: Meta
) -> None:
    failed = await send_and_wait(
        server, api, {"to": "123456789012345@lid", "text": "who?"}, "failed"
    )
    assert "phone numbers only" in failed["error"]
    assert all(sent.payload.get("to") != "123456789012345" for sent in meta.fake.sends)
