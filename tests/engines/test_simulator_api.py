"""The simulator's config through the real API: bounded timings and RE2-only rules, or 422."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

OUT_OF_BOUNDS = [
    ({"heartbeat_seconds": 1e-9}, ["heartbeat_seconds"]),
    ({"qr_refresh_seconds": 0.001}, ["qr_refresh_seconds"]),
    ({"qr_attempts": 1000}, ["qr_attempts"]),
    ({"pairing_seconds": 86_400}, ["pairing_seconds"]),
    ({"disconnect_mean_seconds": 0.001}, ["disconnect_mean_seconds"]),
    (
        {"reconnect_latency": {"kind": "fixed", "seconds": 86_400}},
        ["reconnect_latency", "fixed", "seconds"],
    ),
    (
        {"send_latency": {"kind": "uniform", "min": 0, "max": 86_400}},
        ["send_latency", "uniform", "max"],
    ),
    (
        {"delivered_latency": {"kind": "exponential", "mean": 86_400}},
        ["delivered_latency", "exponential", "mean"],
    ),
    (
        {"read_latency": {"kind": "normal", "mean": 86_400, "stddev": 0}},
        ["read_latency", "normal", "mean"],
    ),
    ({"rules": [{"match": "x", "reply": "y", "after_ms": 86_400_000}]}, ["rules", 0, "after_ms"]),
    ({"rules": [{"match": "[a-z]{60}", "reply": "y"}] * 100}, ["rules"]),
]

UNSUPPORTED = [
    (r"(a)\1", r"\1"),
    (r"(?P<word>a+)(?P=word)", "(?P"),
    ("price(?= now)", "(?="),
    ("(?<!no )price", "(?<"),
]


def single_error(response: httpx.Response) -> dict[str, Any]:
    """The one item of a 422's detail."""
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_input"
    (item,) = body["detail"]
    return dict(item)


async def session_names(api: httpx.AsyncClient) -> list[str]:
    return [s["name"] for s in (await api.get("/api/v1/sessions")).json()]


async def create_or_patch(
    api: httpx.AsyncClient, method: str, config: dict[str, Any]
) -> httpx.Response:
    """POST a new session ``x`` with ``config``, or PATCH ``default`` to it."""
    if method == "POST":
        return await api.post("/api/v1/sessions", json={"name": "x", "config": config})
    return await api.patch("/api/v1/sessions/default", json={"config": config})


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize(("config", "loc"), OUT_OF_BOUNDS)
async def test_a_timing_or_count_out_of_bounds_is_422(
    api: httpx.AsyncClient, method: str, config: dict[str, Any], loc: list[Any]
) -> None:
    error = single_error(await create_or_patch(api, method, config))

    assert error["loc"] == ["body", "config", *loc]
    assert await session_names(api) == ["default"]
    assert (await api.get("/api/v1/sessions/default")).json()["config"] == {}


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize(("pattern", "problem"), UNSUPPORTED)
async def test_a_pattern_re2_cannot_run_is_422(
    api: httpx.AsyncClient, method: str, pattern: str, problem: str
) -> None:
    config = {"rules": [{"match": pattern, "reply": "y"}]}
    error = single_error(await create_or_patch(api, method, config))

    assert error["loc"] == ["body", "config", "rules", 0, "match"]
    assert "RE2" in error["msg"]
    assert problem in error["msg"]
    assert await session_names(api) == ["default"]


async def test_the_bounds_themselves_are_accepted(api: httpx.AsyncClient) -> None:
    config = {
        "heartbeat_seconds": 1,
        "qr_refresh_seconds": 1,
        "qr_attempts": 100,
        "pairing_seconds": 600,
        "disconnect_mean_seconds": 1,
        "reconnect_latency": {"kind": "normal", "mean": 3600, "stddev": 3600},
        "rules": [{"match": r"^pre[cç]o\b", "reply": "R$ 10", "after_ms": 3_600_000}] * 100,
    }
    created = await api.post(
        "/api/v1/sessions", json={"name": "edge", "config": config, "start": False}
    )
    assert created.status_code == 201, created.text
    patched = await api.patch("/api/v1/sessions/default", json={"config": config})
    assert patched.status_code == 200, patched.text
    assert patched.json()["config"] == config
