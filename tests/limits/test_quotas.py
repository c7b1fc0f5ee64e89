"""Count quotas: sessions and queued messages per tenant/session, open streams per key.

Over a quota: 429 ``quota_exceeded`` naming the limit, and nothing half-done.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import AUTH, RunningServer, make_settings, serve
from zapgate.services import build_services

NUMBER = "5511999999999"


@asynccontextmanager
async def limited(tmp_path: Path, **limits: Any) -> AsyncIterator[tuple[RunningServer, Any]]:
    services = build_services(make_settings(tmp_path, **limits))
    async with (
        serve(services) as server,
        httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=10) as api,
    ):
        yield server, api


def assert_quota(response: httpx.Response, setting: str) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["error"] == "quota_exceeded"
    assert setting in body["detail"]


async def test_the_session_quota_counts_the_default_session(tmp_path: Path) -> None:
    async with limited(tmp_path, max_sessions_per_tenant=2) as (_server, api):
        created = await api.post("/api/v1/sessions", json={"name": "second", "start": False})
        assert created.status_code == 201
        refused = await api.post("/api/v1/sessions", json={"name": "third", "start": False})
        assert_quota(refused, "ZAPGATE_MAX_SESSIONS_PER_TENANT")
        names = [s["name"] for s in (await api.get("/api/v1/sessions")).json()]
        assert sorted(names) == ["default", "second"]


async def test_concurrent_creates_never_exceed_the_session_quota(tmp_path: Path) -> None:
    async with limited(tmp_path, max_sessions_per_tenant=4) as (_server, api):
        answers = await asyncio.gather(
            *(
                api.post("/api/v1/sessions", json={"name": f"s{index}", "start": False})
                for index in range(12)
            )
        )
        assert sorted(a.status_code for a in answers) == [201] * 3 + [429] * 9
        assert len((await api.get("/api/v1/sessions")).json()) == 4


async def test_a_tenants_own_limit_replaces_the_default(tmp_path: Path) -> None:
    async with limited(tmp_path, max_sessions_per_tenant=1) as (server, api):
        assert (await api.post("/api/v1/sessions", json={"name": "a"})).status_code == 429
        await server.services.limits.set_overrides("default", {"sessions": 3})
        assert (await api.post("/api/v1/sessions", json={"name": "a"})).status_code == 201
        await server.services.limits.set_overrides("default", {"sessions": None})
        assert (await api.post("/api/v1/sessions", json={"name": "b"})).status_code == 429


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/api/v1/sessions/phone/messages", {"to": NUMBER, "text": "hi"}, {}),
        ("/api/v1/sessions/phone/messages", {"to": NUMBER, "text": "hi"}, {"Origin": "x"}),
    ],
    ids=["fast-lane", "framework"],
)
async def test_the_outbox_of_a_session_is_bounded(
    tmp_path: Path, path: str, body: dict[str, str], headers: dict[str, str]
) -> None:
    async with limited(tmp_path, max_queued_per_session=3) as (server, api):
        create = {"name": "phone", "config": {"pairing": "manual"}}
        assert (await api.post("/api/v1/sessions", json=create)).status_code == 201
        for _ in range(3):  # the phone is not paired yet: everything stays queued
            assert (await api.post(path, json=body, headers=headers)).status_code == 202
        refused = await api.post(path, json=body, headers=headers)
        assert_quota(refused, "ZAPGATE_MAX_QUEUED_PER_SESSION")
        history = (await api.get("/api/v1/sessions/phone/messages")).json()["data"]
        assert len(history) == 3
        other = await api.post(
            "/api/v1/sessions/default/messages", json={"to": NUMBER, "text": "elsewhere"}
        )
        assert other.status_code == 202, "another session's outbox is not affected"
        assert server.services.messages.depth.queued("default", "phone") == 3


async def test_sent_messages_free_the_outbox(tmp_path: Path) -> None:
    async with limited(tmp_path, max_queued_per_session=2) as (server, api):
        create = {"name": "phone", "config": {"pairing": "manual"}}
        assert (await api.post("/api/v1/sessions", json=create)).status_code == 201
        sent = []
        for _ in range(2):
            answer = await api.post(
                "/api/v1/sessions/phone/messages", json={"to": NUMBER, "text": "x"}
            )
            sent.append(answer.json()["id"])
        assert (
            await api.post("/api/v1/sessions/phone/messages", json={"to": NUMBER, "text": "x"})
        ).status_code == 429
        await wait_for_qr(api, "phone")
        assert (await api.post("/api/v1/sessions/phone/simulate/scan")).status_code == 204
        async with asyncio.timeout(10):
            while server.services.messages.depth.queued("default", "phone") != 0:
                await asyncio.sleep(0.02)
        again = await api.post("/api/v1/sessions/phone/messages", json={"to": NUMBER, "text": "y"})
        assert again.status_code == 202


async def test_a_deleted_and_recreated_session_starts_with_an_empty_count(tmp_path: Path) -> None:
    async with limited(tmp_path, max_queued_per_session=1) as (_server, api):
        create = {"name": "phone", "config": {"pairing": "manual"}}
        assert (await api.post("/api/v1/sessions", json=create)).status_code == 201
        message = {"to": NUMBER, "text": "x"}
        assert (await api.post("/api/v1/sessions/phone/messages", json=message)).status_code == 202
        assert (await api.delete("/api/v1/sessions/phone")).status_code == 204
        assert (await api.post("/api/v1/sessions", json=create)).status_code == 201
        assert (await api.post("/api/v1/sessions/phone/messages", json=message)).status_code == 202


async def wait_for_qr(api: httpx.AsyncClient, session: str) -> None:
    async with asyncio.timeout(10):
        while (await api.get(f"/api/v1/sessions/{session}/qr")).status_code != 200:
            await asyncio.sleep(0.02)


async def test_streams_per_key_count_sse_and_long_polls(tmp_path: Path) -> None:
    async with limited(tmp_path, max_streams_per_key=2) as (server, api):
        sse = {"Accept": "text/event-stream"}
        async with (
            api.stream("GET", "/api/v1/events", headers=sse) as first,
            api.stream("GET", "/api/v1/events", headers=sse) as second,
        ):
            assert first.status_code == second.status_code == 200
            refused = await api.get("/api/v1/events", headers=sse)
            assert_quota(refused, "ZAPGATE_MAX_STREAMS_PER_KEY")
            long_poll = await api.get("/api/v1/events", params={"after": 10**6, "wait": 5})
            assert_quota(long_poll, "ZAPGATE_MAX_STREAMS_PER_KEY")
            plain = await api.get("/api/v1/events", params={"after": 0})
            assert plain.status_code == 200, "a read without waiting is not a stream"
        await slots_free_within(server, seconds=5)
        assert (await api.get("/api/v1/events", params={"after": 10**6, "wait": 0.1})).is_success


async def test_a_long_poll_whose_client_left_frees_its_slot(tmp_path: Path) -> None:
    async with limited(tmp_path, max_streams_per_key=1) as (server, api):
        assert (await api.get("/api/v1/sessions")).is_success  # the key is known from now on
        waiting = asyncio.create_task(
            api.get("/api/v1/events", params={"after": 10**6, "wait": 60})
        )
        async with asyncio.timeout(5):
            while server.services.limits.streams.open(admin_key_id(server)) == 0:
                await asyncio.sleep(0.01)
        waiting.cancel()  # the client goes away mid-wait
        await asyncio.gather(waiting, return_exceptions=True)
        await slots_free_within(server, seconds=5)


def admin_key_id(server: RunningServer) -> str:
    cached = server.services.auth.cached(AUTH["Authorization"][7:])
    assert cached is not None
    return cached.key_id


async def slots_free_within(server: RunningServer, seconds: float) -> None:
    """The contract: a slot is free again within 5 s of the client going away."""
    async with asyncio.timeout(seconds):
        while server.services.limits.streams.open(admin_key_id(server)):
            await asyncio.sleep(0.02)


async def test_the_webhook_quota_counts_inactive_subscriptions_too(tmp_path: Path) -> None:
    async with limited(tmp_path, max_webhooks_per_tenant=2) as (_server, api):
        url = "https://example.com/hook"
        first = await api.post("/api/v1/webhooks", json={"url": url, "active": False})
        assert first.status_code == 201
        assert (await api.post("/api/v1/webhooks", json={"url": url})).status_code == 201
        refused = await api.post("/api/v1/webhooks", json={"url": url})
        assert_quota(refused, "ZAPGATE_MAX_WEBHOOKS_PER_TENANT")
        assert len((await api.get("/api/v1/webhooks")).json()) == 2
        assert (await api.delete(f"/api/v1/webhooks/{first.json()['id']}")).status_code == 204
        assert (await api.post("/api/v1/webhooks", json={"url": url})).status_code == 201
