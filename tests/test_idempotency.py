"""Idempotency-Key on the routes that create something (IETF draft semantics)."""

from __future__ import annotations

import asyncio

import httpx
import sqlalchemy as sa

from tests.conftest import RunningServer
from tests.support.events import EventWatcher, message_status
from tests.support.tenants import tenant_key
from zapgate.db.tables import messages

SEND = "/api/v1/sessions/default/messages"


async def count_messages(server: RunningServer) -> int:
    async with server.services.database.connect() as connection:
        return int(await connection.scalar(sa.select(sa.func.count()).select_from(messages)) or 0)


async def test_twenty_concurrent_identical_requests_make_one_message(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    key = {"Idempotency-Key": "order-1234"}
    body = {"to": "5511999999999", "text": "one only"}
    async with EventWatcher(server.services.bus) as watcher:
        responses = await asyncio.gather(
            *(api.post(SEND, json=body, headers=key) for _ in range(20))
        )
        statuses = sorted(r.status_code for r in responses)
        assert set(statuses) <= {202, 409}
        created = [r for r in responses if r.status_code == 202]
        assert len({r.json()["id"] for r in created}) == 1
        message_id = created[0].json()["id"]
        for conflict in (r for r in responses if r.status_code == 409):
            assert conflict.json()["error"] == "idempotency_key_in_progress"
        await watcher.wait_for(message_status(message_id, "read"))
        sent_events = [e for e in watcher.seen if message_status(message_id, "sent")(e)]
    assert len(sent_events) == 1, "the engine was asked more than once"
    assert await count_messages(server) == 1
    again = await api.post(SEND, json=body, headers=key)
    assert again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == message_id
    assert again.json()["status"] == "queued", "the replay is the stored answer"
    reordered = await api.post(SEND, json={"text": "one only", "to": "5511999999999"}, headers=key)
    assert reordered.json()["id"] == message_id
    assert (await api.get(f"/api/v1/messages/{message_id}")).json()["attempts"] == 1


async def test_same_key_with_another_body_is_422(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    key = {"Idempotency-Key": "k-2"}
    first = await api.post(SEND, json={"to": "5511999999999", "text": "a"}, headers=key)
    assert first.status_code == 202
    other = await api.post(SEND, json={"to": "5511999999999", "text": "b"}, headers=key)
    assert other.status_code == 422
    assert other.json()["error"] == "idempotency_key_mismatch"
    other_route = await api.post(
        "/whatsapp/send", json={"number": "5511999999999", "message": "a"}, headers=key
    )
    assert other_route.status_code == 422
    assert await count_messages(server) == 1


async def test_keys_are_scoped_per_tenant(server: RunningServer, api: httpx.AsyncClient) -> None:
    other_key = await tenant_key(server.services, "acme", "acme")
    await server.services.sessions.create("acme", "default", "simulator", {}, {}, start=True)
    key = {"Idempotency-Key": "shared-key"}
    mine = await api.post(SEND, json={"to": "5511999999999", "text": "x"}, headers=key)
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {other_key}", **key}
    ) as acme:
        theirs = await acme.post(SEND, json={"to": "5511999999999", "text": "x"})
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["id"] != theirs.json()["id"]


async def test_original_route_and_session_creation_honour_keys(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    key = {"Idempotency-Key": "legacy-1"}
    body = {"number": "5511999999999", "message": "Olá"}
    first = await api.post("/whatsapp/send", json=body, headers=key)
    second = await api.post("/whatsapp/send", json=body, headers=key)
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    session_key = {"Idempotency-Key": "create-sales"}
    made = await api.post("/api/v1/sessions", json={"name": "sales"}, headers=session_key)
    remade = await api.post("/api/v1/sessions", json={"name": "sales"}, headers=session_key)
    assert made.status_code == remade.status_code == 201
    assert remade.headers["idempotent-replayed"] == "true"
    plain = await api.post("/api/v1/sessions", json={"name": "sales"})
    assert plain.status_code == 409, "without the key the duplicate is refused"


async def test_a_bad_key_is_refused(api: httpx.AsyncClient) -> None:
    response = await api.post(
        SEND, json={"to": "5511999999999", "text": "x"}, headers={"Idempotency-Key": "a b"}
    )
    assert response.status_code == 422
    long_key = await api.post(
        SEND, json={"to": "5511999999999", "text": "x"}, headers={"Idempotency-Key": "k" * 300}
    )
    assert long_key.status_code == 422


async def test_an_expired_key_can_be_used_again(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    from zapgate.db.tables import idempotency_keys

    key = {"Idempotency-Key": "reused-after-expiry"}
    first = await api.post(SEND, json={"to": "5511999999999", "text": "a"}, headers=key)
    async with server.services.database.begin() as connection:
        await connection.execute(sa.update(idempotency_keys).values(expires_at=1))
    second = await api.post(SEND, json={"to": "5511999999999", "text": "b"}, headers=key)
    assert second.status_code == 202, second.text
    assert second.json()["id"] != first.json()["id"]


async def test_a_webhook_secret_is_never_kept_in_the_stored_answer(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    key = {"Idempotency-Key": "hook-1"}
    body = {"url": "https://example.com/hook"}
    created = await api.post("/api/v1/webhooks", json=body, headers=key)
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    replayed = await api.post("/api/v1/webhooks", json=body, headers=key)
    assert replayed.status_code == 201
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json()["id"] == created.json()["id"]
    assert replayed.json()["secret"] is None, "a replay does not hand out the secret again"
    async with server.services.database.connect() as connection:
        stored = (await connection.execute(sa.text("SELECT * FROM idempotency_keys"))).all()
    assert stored
    assert secret.removeprefix("whsec_") not in repr(stored)
