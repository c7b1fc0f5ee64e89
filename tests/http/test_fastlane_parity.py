"""The send fast lane answers exactly what the framework routes answer, limits included."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ADMIN_KEY, RunningServer, make_settings, serve
from tests.support.events import EventWatcher, status_is
from zapgate.engines.base import SessionStatus
from zapgate.services import build_services

NUMBER = "5511999999999"
V1 = "/api/v1/sessions/default/messages"
LEGACY = "/whatsapp/send"
BEARER = {"Authorization": f"Bearer {ADMIN_KEY}"}
REQUESTS: list[tuple[str, dict[str, str], Any]] = [
    (V1, BEARER, {"to": NUMBER, "text": "hello"}),
    (LEGACY, BEARER, {"number": NUMBER, "message": "hello"}),
    (LEGACY, BEARER, {"number": int(NUMBER), "message": "a number as a number"}),
    (V1, {"X-Api-Key": ADMIN_KEY}, {"to": NUMBER, "text": "x-api-key"}),
    (V1, BEARER, {"to": "abc", "text": "bad number"}),
    (V1, BEARER, {"to": NUMBER}),
    (V1, BEARER, {"to": NUMBER, "text": "x", "extra": 1}),
    ("/api/v1/sessions/nope/messages", BEARER, {"to": NUMBER, "text": "x"}),
    (V1, {}, {"to": NUMBER, "text": "no key"}),
    (V1, {"Authorization": "Bearer zg_wrong0000000_" + "x" * 32}, {"to": NUMBER, "text": "x"}),
    (V1, BEARER, {"to": NUMBER, "text": "a\u0000b"}),
    (V1, BEARER, {"to": NUMBER, "text": "quota"}),  # the outbox holds 4: this is the 5th queued
    (V1, BEARER, {"to": NUMBER, "text": "over the rate"}),
]
VOLATILE = {"id", "timestamp", "updated_at", "message", "engine_message_id"}


def shape(response: httpx.Response) -> tuple[Any, ...]:
    body = response.json()
    if isinstance(body, dict):
        stable = {k: v for k, v in body.items() if k not in VOLATILE}
    else:
        stable = body
    headers = {
        name: response.headers.get(name)
        for name in ("ratelimit", "ratelimit-policy", "retry-after", "www-authenticate")
    }
    return response.status_code, seconds_blurred(stable), seconds_blurred(headers)


def seconds_blurred(value: Any) -> Any:
    """The same, but how many seconds to wait (it moves on between the two runs)."""
    text = re.sub(r"(retry after |t=)\d+", r"\1N", json.dumps(value))
    return json.loads(re.sub(r'"retry-after": "\d+"', '"retry-after": "N"', text))


INBOUND = "/api/v1/sessions/default/simulate/inbound"
INBOUND_REQUESTS: list[tuple[str, dict[str, str], Any]] = [
    (INBOUND, BEARER, {"from": NUMBER, "text": "oi"}),
    (INBOUND, {"X-Api-Key": ADMIN_KEY}, {"from": NUMBER, "text": "x-api-key"}),
    (INBOUND, BEARER, {"from": "abc", "text": "bad number"}),
    (INBOUND, BEARER, {"from": NUMBER}),
    (INBOUND, BEARER, {"from": NUMBER, "text": ""}),
    (INBOUND, BEARER, {"from": NUMBER, "text": "x", "extra": 1}),
    ("/api/v1/sessions/nope/simulate/inbound", BEARER, {"from": NUMBER, "text": "x"}),
    (INBOUND, {}, {"from": NUMBER, "text": "no key"}),
]


async def answers(
    tmp_path: Path,
    fast_lane: bool,
    requests: list[tuple[str, dict[str, str], Any]] = REQUESTS,
    **settings_changes: Any,
) -> list[tuple[Any, ...]]:
    settings = make_settings(
        tmp_path,
        **{
            "rate_limit_per_key": 0.001,
            "rate_limit_burst": 10,  # every request above but the 401s takes a token
            "max_queued_per_session": 4,
            "simulator_pairing_seconds": 3600,  # the default session never pairs: sends stay queued
            **settings_changes,
        },
    )
    async with (
        serve(build_services(settings), fast_lane=fast_lane) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        if settings.simulator_pairing_seconds == 0:
            await until_working(server)
        return [
            shape(await client.post(path, headers=headers, json=body))
            for path, headers, body in requests
        ]


async def until_working(server: RunningServer) -> None:
    """Wait for the default session to pair (instantly, but after start-up).

    Awaited in the process, not polled over HTTP: each poll took a rate-limit token, and a
    loaded machine polled more often in one run than in the other (``r=`` differed).
    """
    async with EventWatcher(server.services.bus) as watcher:
        current = await server.services.sessions.get("default", "default")
        if current.status is not SessionStatus.WORKING:
            await watcher.wait_for(status_is("default", "WORKING"))


async def test_simulated_inbound_gets_the_same_answers_from_the_fast_lane(tmp_path: Path) -> None:
    changes = {"simulator_pairing_seconds": 0, "rate_limit_burst": 100}
    fast = await answers(tmp_path / "fast", True, INBOUND_REQUESTS, **changes)
    slow = await answers(tmp_path / "slow", False, INBOUND_REQUESTS, **changes)
    for request, with_lane, without in zip(INBOUND_REQUESTS, fast, slow, strict=True):
        assert with_lane == without, request
    assert [answer[0] for answer in fast] == [201, 201, 422, 422, 422, 422, 404, 401]
    assert fast[0][1]["direction"] == "in"
    assert fast[0][1]["text"] == "oi"


async def test_the_fast_lane_and_the_routes_answer_alike(tmp_path: Path) -> None:
    fast = await answers(tmp_path / "fast", fast_lane=True)
    slow = await answers(tmp_path / "slow", fast_lane=False)
    for request, with_lane, without in zip(REQUESTS, fast, slow, strict=True):
        assert with_lane == without, request
    statuses = [answer[0] for answer in fast]
    assert statuses == [202, 200, 200, 202, 422, 422, 422, 404, 401, 401, 422, 429, 429]
    assert fast[-2][1]["error"] == "quota_exceeded"
    assert fast[-1][1]["error"] == "rate_limited"
