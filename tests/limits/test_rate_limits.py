"""Requests per second per key (token bucket) and failed authentications per client address."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import AUTH
from tests.limits.test_quotas import limited
from tests.support.tenants import tenant_key

NUMBER = "5511999999999"


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"] == "rate_limited"
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["ratelimit-policy"].startswith('"')
    assert ";r=0;" in response.headers["ratelimit"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/sessions", None),
        ("POST", "/whatsapp/send", {"number": NUMBER, "message": "hi"}),
        ("POST", "/api/v1/sessions/default/messages", {"to": NUMBER, "text": "hi"}),
    ],
    ids=["route", "legacy-fast-lane", "v1-fast-lane"],
)
async def test_a_key_over_its_rate_gets_429_with_headers(
    tmp_path: Path, method: str, path: str, body: dict[str, str] | None
) -> None:
    async with limited(tmp_path, rate_limit_per_key=0.01, rate_limit_burst=3) as (server, api):
        other_key = await tenant_key(server.services, "other", "neighbour")
        for remaining in (2, 1, 0):
            answer = await api.request(method, path, json=body)
            assert answer.is_success, answer.text
            assert answer.headers["ratelimit"] == f'"default";r={remaining};t=0'
            assert answer.headers["ratelimit-policy"] == '"default";q=3;w=300'
        assert_rate_limited(await api.request(method, path, json=body))
        other = await api.get("/api/v1/sessions", headers={"Authorization": f"Bearer {other_key}"})
        assert other.status_code == 200, "another key (and tenant) is not slowed down"


async def test_refused_requests_do_nothing(tmp_path: Path) -> None:
    async with limited(tmp_path, rate_limit_per_key=0.01, rate_limit_burst=1) as (_server, api):
        message = {"to": NUMBER, "text": "once"}
        assert (await api.post("/api/v1/sessions/default/messages", json=message)).is_success
        assert_rate_limited(await api.post("/api/v1/sessions/default/messages", json=message))
        assert_rate_limited(await api.post("/api/v1/sessions", json={"name": "x"}))


async def test_zero_means_unlimited(tmp_path: Path) -> None:
    async with limited(tmp_path, rate_limit_per_key=0) as (_server, api):
        for _ in range(30):
            answer = await api.get("/api/v1/sessions")
            assert answer.status_code == 200
            assert "ratelimit" not in answer.headers


async def test_failed_authentications_are_limited_per_address(tmp_path: Path) -> None:
    async with limited(tmp_path, auth_failures_per_minute=3) as (server, api):
        assert (await api.get("/api/v1/sessions")).status_code == 200  # a verified key
        fresh_key = await server.services.auth.create_key("default", "never used yet")
        async with httpx.AsyncClient(base_url=server.url) as client:
            for attempt in range(3):
                wrong = {"Authorization": f"Bearer zg_wrong{attempt}_" + "x" * 32}
                assert (await client.get("/api/v1/sessions", headers=wrong)).status_code == 401
            wrong = {"Authorization": "Bearer zg_wrong9_" + "x" * 32}
            assert_rate_limited(await client.get("/api/v1/sessions", headers=wrong))
            assert_rate_limited(
                await client.post(
                    "/whatsapp/send", headers=wrong, json={"number": NUMBER, "message": "x"}
                )
            )
            fresh = {"Authorization": f"Bearer {fresh_key}"}
            assert_rate_limited(await client.get("/api/v1/sessions", headers=fresh))
            known = await client.get("/api/v1/sessions", headers=AUTH)
            assert known.status_code == 200, "a key verified before still works"
            assert_rate_limited(await client.get("/api/v1/sessions"))  # nor without a key
            assert (await client.get("/health")).status_code == 200, "open routes stay open"


async def test_requests_without_a_key_count_as_failed_authentications(tmp_path: Path) -> None:
    async with (
        limited(tmp_path, auth_failures_per_minute=3) as (server, _api),
        httpx.AsyncClient(base_url=server.url) as anonymous,
    ):
        for _ in range(3):
            assert (await anonymous.get("/api/v1/sessions")).status_code == 401
        assert_rate_limited(await anonymous.get("/api/v1/webhooks"))
        assert (await anonymous.get("/openapi.json")).status_code == 200
