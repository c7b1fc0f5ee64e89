"""The Chatwoot mirror against the strict fake Chatwoot: what arrives on WhatsApp becomes a
contact, a conversation and incoming messages; an agent's reply is sent on WhatsApp and its
statuses mirrored back; nothing zapgate posted comes back as a send (no echo loop); the
callback refuses a wrong token or signature."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import AUTH, RunningServer, make_settings, serve
from tests.media.files import b64, png
from tests.support.events import EventWatcher, Predicate
from tests.support.fake_chatwoot import FakeChatwoot, running, sign
from tests.test_webhooks import inbound, working
from zapgate.events.model import Event
from zapgate.services import build_services

PEER = "5511988887777"
PATH = "/api/v1/sessions/default/integrations/chatwoot"


@pytest.fixture
async def chatwoot() -> AsyncIterator[FakeChatwoot]:
    async with running() as fake:
        yield fake
    assert fake.problems == [], "zapgate sent what Chatwoot would misread"


async def mirror(
    api: httpx.AsyncClient, chatwoot: FakeChatwoot, secret: str | None = None
) -> dict[str, object]:
    body = {
        "base_url": chatwoot.url,
        "account_id": chatwoot.account_id,
        "inbox_id": chatwoot.inbox_id,
        "api_token": chatwoot.token,
    }
    if secret is not None:
        body["webhook_secret"] = secret
    put = await api.put(PATH, json=body)
    assert put.status_code == 200, put.text
    answer = dict(put.json())
    assert chatwoot.token not in put.text  # never shown back
    chatwoot.webhook_url = str(answer["callback_url"])
    chatwoot.webhook_secret = secret
    return answer


def queued_text(text: str) -> Predicate:
    def matches(event: Event) -> bool:
        payload = event.payload
        return event.type == "message.queued" and payload.get("text") == text

    return matches


def status_of(message_id: str, status: str) -> Predicate:
    def matches(event: Event) -> bool:
        payload = event.payload
        return (
            event.type == "message.status"
            and payload.get("id") == message_id
            and payload.get("status") == status
        )

    return matches


async def quiet(server: RunningServer, chatwoot: FakeChatwoot) -> None:
    """Chatwoot sent every webhook and zapgate tried every delivery (twice: one may cause
    the other)."""
    for _ in range(2):
        await chatwoot.drain()
        await server.services.dispatcher.until_quiet()


async def outbound(api: httpx.AsyncClient) -> list[dict[str, object]]:
    found = await api.get("/api/v1/sessions/default/messages", params={"direction": "out"})
    return list(found.json()["data"])


async def test_inbound_agent_reply_statuses_and_no_echo(
    server: RunningServer, api: httpx.AsyncClient, chatwoot: FakeChatwoot
) -> None:
    await working(server)
    answer = await mirror(api, chatwoot)
    assert str(answer["callback_url"]).startswith(
        f"{server.url}/api/v1/chatwoot/default/default/webhook?token="
    )
    first = await inbound(api, "Oi, tudo bem?")
    await inbound(api, "Quero um orçamento")
    stored = await chatwoot.wait_messages(2, timeout=10)
    assert [(m.content, m.message_type) for m in stored] == [
        ("Oi, tudo bem?", "incoming"),
        ("Quero um orçamento", "incoming"),
    ]
    assert stored[0].source_id == f"zapgate:{first}"
    assert len(chatwoot.contacts) == 1
    assert chatwoot.contacts[0].phone_number == f"+{PEER}"
    assert len(chatwoot.conversations) == 1
    conversation = chatwoot.conversations[0].id
    assert {m.conversation_id for m in stored} == {conversation}
    await quiet(server, chatwoot)  # Chatwoot echoed both to zapgate: ignored, nothing sent
    assert await outbound(api) == []

    async with EventWatcher(server.services.bus) as watcher:
        reply = await chatwoot.agent_reply(conversation, "Claro! Qual produto?")
        queued = await watcher.wait_for(queued_text("Claro! Qual produto?"), timeout=10)
        assert queued.payload["to"] == PEER
        await watcher.wait_for(status_of(str(queued.payload["id"]), "read"), timeout=10)
    again = await chatwoot.agent_reply(conversation, "Claro! Qual produto?")  # a new message
    await quiet(server, chatwoot)
    assert chatwoot.message(reply.id).status == "read"  # mirrored: sent, delivered, read
    sent = await outbound(api)
    assert [m["text"] for m in sent] == ["Claro! Qual produto?"] * 2
    assert chatwoot.message(again.id).status in ("sent", "delivered", "read")
    # the replies were not posted back to Chatwoot as new outgoing messages (no echo)
    assert [m.content for m in chatwoot.messages if m.via_api] == [
        "Oi, tudo bem?",
        "Quero um orçamento",
    ]
    assert all(d.status == 200 for d in chatwoot.deliveries), "Chatwoot would mark it failed"


async def test_a_repeated_callback_sends_once_and_api_sends_are_mirrored_as_outgoing(
    server: RunningServer, api: httpx.AsyncClient, chatwoot: FakeChatwoot
) -> None:
    await working(server)
    await mirror(api, chatwoot)
    await inbound(api, "Oi")
    await chatwoot.wait_messages(1, timeout=10)
    conversation = chatwoot.conversations[0].id
    reply = await chatwoot.agent_reply(conversation, "Bom dia!")
    await quiet(server, chatwoot)
    delivery = next(d for d in chatwoot.deliveries if d.payload.get("id") == reply.id)
    repeated = await chatwoot.webhook_post(str(chatwoot.webhook_url), delivery.body, {})
    assert repeated == 200
    await quiet(server, chatwoot)
    assert [m["text"] for m in await outbound(api)] == ["Bom dia!"]

    async with EventWatcher(server.services.bus) as watcher:
        sent = await api.post(
            "/api/v1/sessions/default/messages", json={"to": PEER, "text": "Promoção de hoje"}
        )
        assert sent.status_code == 202, sent.text
        await watcher.wait_for(status_of(sent.json()["id"], "read"), timeout=10)
    await quiet(server, chatwoot)
    mirrored = [m for m in chatwoot.messages if m.content == "Promoção de hoje"]
    assert len(mirrored) == 1
    assert mirrored[0].message_type == "outgoing"
    assert mirrored[0].source_id == f"zapgate:{sent.json()['id']}"
    assert mirrored[0].conversation_id == conversation
    assert len(await outbound(api)) == 2  # its echo was not sent again


async def test_the_callback_checks_its_token_and_the_signature(
    server: RunningServer, api: httpx.AsyncClient, chatwoot: FakeChatwoot
) -> None:
    await working(server)
    answer = await mirror(api, chatwoot, secret="inbox-secret-123")
    assert answer["signature_checked"] is True
    callback = str(answer["callback_url"])
    path, token = callback.removeprefix(server.url).split("?token=")
    body = b'{"event":"conversation_updated","id":1}'
    stamp = str(int(time.time()))
    good = {"X-Chatwoot-Signature": sign("inbox-secret-123", stamp, body)}
    good["X-Chatwoot-Timestamp"] = stamp
    bare = httpx.AsyncClient(base_url=server.url)  # no API key: the token is the credential
    async with bare:
        ok = await bare.post(path, params={"token": token}, content=body, headers=good)
        assert ok.status_code == 200, ok.text
        assert ok.json()["status"] == "ignored"
        wrong = await bare.post(path, params={"token": token + "x"}, content=body, headers=good)
        missing = await bare.post(path, content=body, headers=good)
        forged = {**good, "X-Chatwoot-Signature": sign("another", stamp, body)}
        unsigned_forgery = await bare.post(
            path, params={"token": token}, content=body, headers=forged
        )
        stale_stamp = str(int(time.time()) - 3600)
        stale = {
            "X-Chatwoot-Signature": sign("inbox-secret-123", stale_stamp, body),
            "X-Chatwoot-Timestamp": stale_stamp,
        }
        old = await bare.post(path, params={"token": token}, content=body, headers=stale)
        unsigned = await bare.post(path, params={"token": token}, content=body)  # token only
        other = await bare.post(
            "/api/v1/chatwoot/default/nosuch/webhook", params={"token": token}, content=body
        )
    for refused in (wrong, missing, unsigned_forgery, old, unsigned, other):
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"] == "unauthorized"


async def test_a_conversation_deleted_in_chatwoot_is_opened_again(
    server: RunningServer, api: httpx.AsyncClient, chatwoot: FakeChatwoot
) -> None:
    await working(server)
    await mirror(api, chatwoot)
    await inbound(api, "primeira")
    await chatwoot.wait_messages(1, timeout=10)
    gone = chatwoot.conversations[0].id
    chatwoot.delete_conversation(gone)
    await inbound(api, "segunda")
    stored = await chatwoot.wait_messages(1, timeout=10)
    assert [m.content for m in stored] == ["segunda"]
    assert stored[0].conversation_id != gone
    assert len(chatwoot.contacts) == 1  # the same contact


async def test_an_inbound_image_is_posted_with_its_file(
    server: RunningServer, api: httpx.AsyncClient, chatwoot: FakeChatwoot
) -> None:
    await working(server)
    await mirror(api, chatwoot)
    image = png(7)
    body = {"from": PEER, "type": "image", "media": {"base64": b64(image)}, "caption": "olha"}
    received = await api.post("/api/v1/sessions/default/simulate/inbound", json=body)
    assert received.status_code == 201, received.text
    stored = await chatwoot.wait_messages(1, timeout=10)
    assert stored[0].content == "olha"
    assert [a.data for a in stored[0].attachments] == [image]
    assert stored[0].attachments[0].content_type == "image/png"


async def test_a_reply_that_cannot_go_is_refused_so_chatwoot_marks_it_failed(
    tmp_path: Path, chatwoot: FakeChatwoot
) -> None:
    settings = make_settings(tmp_path, webhook_allowlist="127.0.0.1")  # no media allowlist
    async with (
        serve(build_services(settings)) as server,
        httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=10) as api,
    ):
        await working(server)
        await mirror(api, chatwoot)
        await inbound(api, "manda o boleto")
        await chatwoot.wait_messages(1, timeout=10)
        conversation = chatwoot.conversations[0].id
        attachment = ("boleto.pdf", "application/pdf", b"%PDF-1.4 boleto")
        reply = await chatwoot.agent_reply(conversation, "segue", attachment=attachment)
        await quiet(server, chatwoot)
        assert await outbound(api) == []
    failed = chatwoot.message(reply.id)
    assert failed.status == "failed"
    assert failed.external_error is not None
    assert failed.external_error.startswith("422")


async def test_a_mirror_moved_to_another_account_forgets_the_old_conversations(
    server: RunningServer, api: httpx.AsyncClient, chatwoot: FakeChatwoot
) -> None:
    await working(server)
    await mirror(api, chatwoot)
    await inbound(api, "antes")
    await chatwoot.wait_messages(1, timeout=10)
    async with running(account_id=9) as other:
        stranger = other.add_contact("Outra pessoa", "+5511900000000")
        taken = other._open_conversation(stranger, "src-stranger", "open")  # the old id, there
        assert taken.id == chatwoot.conversations[0].id
        await mirror(api, other)
        await inbound(api, "depois")
        stored = await other.wait_messages(1, timeout=10)
        assert stored[0].content == "depois"
        assert stored[0].conversation_id != taken.id, "posted into a stranger's conversation"
        async with EventWatcher(server.services.bus) as watcher:
            await other.agent_reply(taken.id, "para a outra pessoa")  # opened in Chatwoot
            await other.agent_reply(stored[0].conversation_id, "oi de novo")
            queued = await watcher.wait_for(queued_text("oi de novo"), timeout=10)
        assert queued.payload["to"] == PEER
        await quiet(server, other)
        assert other.problems == []
    sent = {m["text"]: m["to"] for m in await outbound(api)}
    assert sent == {"oi de novo": PEER, "para a outra pessoa": "5511900000000"}
    assert [m.content for m in chatwoot.messages] == ["antes"]


async def test_a_message_chatwoot_refuses_fails_at_once_and_the_next_goes(
    server: RunningServer, api: httpx.AsyncClient, chatwoot: FakeChatwoot
) -> None:
    await working(server)
    await mirror(api, chatwoot)
    chatwoot.fail_next(422, message="Phone number should be in e164 format")
    await inbound(api, "recusada")
    await quiet(server, chatwoot)
    await inbound(api, "aceita")
    stored = await chatwoot.wait_messages(1, timeout=10)
    assert [m.content for m in stored] == ["aceita"]
    page = (await api.get(f"{PATH}/deliveries")).json()["data"]
    refused = next(d for d in page if d["status"] == "failed")
    assert refused["attempts"] == 1  # no retry of what Chatwoot will refuse again
    assert refused["last_status_code"] == 422


async def test_an_agent_reply_with_files_sends_each_and_shows_the_first_ones_status(
    server: RunningServer, api: httpx.AsyncClient, chatwoot: FakeChatwoot
) -> None:
    await working(server)
    await mirror(api, chatwoot)
    await inbound(api, "manda as fotos e o boleto")
    await chatwoot.wait_messages(1, timeout=10)
    conversation = chatwoot.conversations[0].id
    files = [
        ("frente.png", "image/png", png(3)),
        ("boleto.pdf", "application/pdf", b"%PDF-1.4 boleto"),
    ]
    async with EventWatcher(server.services.bus) as watcher:
        reply = await chatwoot.agent_reply(conversation, "segue", files=files)
        for kind in ("image", "document"):
            queued = await watcher.wait_for(
                lambda e, kind=kind: e.type == "message.queued" and e.payload["type"] == kind, 10
            )
            await watcher.wait_for(status_of(str(queued.payload["id"]), "read"), timeout=10)
    await quiet(server, chatwoot)
    sent = sorted(await outbound(api), key=lambda m: str(m["id"]))
    assert [(m["type"], m["text"]) for m in sent] == [("image", "segue"), ("document", None)]
    assert chatwoot.message(reply.id).status == "read"
    # neither was posted back to Chatwoot as a new outgoing message (no echo)
    assert [m.content for m in chatwoot.messages if m.via_api] == ["manda as fotos e o boleto"]
    again = next(d for d in chatwoot.deliveries if d.payload.get("id") == reply.id)
    assert await chatwoot.webhook_post(str(chatwoot.webhook_url), again.body, {}) == 200
    await quiet(server, chatwoot)
    assert len(await outbound(api)) == 2  # a repeated call sends no file again


async def test_a_file_of_an_agent_reply_that_fails_shows_failed_in_chatwoot(
    server: RunningServer, api: httpx.AsyncClient, chatwoot: FakeChatwoot
) -> None:
    """The first part goes and is read, the second cannot (its file is gone from Chatwoot's
    storage): the agent's message shows failed, and the first part's statuses, which come
    after, do not hide it."""
    await working(server)
    await mirror(api, chatwoot)
    await inbound(api, "manda tudo")
    await chatwoot.wait_messages(1, timeout=10)
    conversation = chatwoot.conversations[0].id
    chatwoot.lost_files.add("sumiu.pdf")
    files = [("foto.png", "image/png", png(5)), ("sumiu.pdf", "application/pdf", b"%PDF-1.4")]
    async with EventWatcher(server.services.bus) as watcher:
        reply = await chatwoot.agent_reply(conversation, "segue", files=files)
        first = await watcher.wait_for(
            lambda e: e.type == "message.queued" and e.payload["type"] == "image", 10
        )
        await watcher.wait_for(status_of(str(first.payload["id"]), "read"), timeout=10)
    await quiet(server, chatwoot)
    assert [m["type"] for m in await outbound(api)] == ["image"]
    assert chatwoot.deliveries[-1].status == 422  # the callback: Chatwoot marks it failed
    shown = chatwoot.message(reply.id)
    assert shown.status == "failed"
    assert shown.external_error is not None
    assert shown.external_error.startswith("422")
