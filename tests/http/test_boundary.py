"""Input that could be stored but not read back is refused at the boundary, on both backends.

Before: metadata nested 300 deep or a lone surrogate was stored, then every list answered 500;
a NUL character gave 500/503 on PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer

NUMBER = "5511999999999"


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"a": value}
    return value


def assert_invalid(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_input"


async def lists_still_work(api: httpx.AsyncClient) -> None:
    for path in ("/api/v1/sessions", "/api/v1/webhooks", "/api/v1/events?after=0"):
        assert (await api.get(path)).status_code == 200, path
    assert (await api.get("/api/v1/sessions/default/messages")).status_code == 200


RAW_BODIES = {
    "deep metadata": ("/api/v1/sessions", '{"name": "deep", "metadata": %s}'),
    "surrogate in metadata": ("/api/v1/sessions", '{"name": "s", "metadata": {"k": "\\ud800"}}'),
    "surrogate in a key": ("/api/v1/sessions", '{"name": "s", "metadata": {"\\udfff": 1}}'),
    "surrogate in events": (
        "/api/v1/webhooks",
        '{"url": "https://example.com/h", "events": ["\\ud800"]}',
    ),
    "NUL in text": ("/api/v1/sessions/default/messages", '{"to": "%s", "text": "a\\u0000b"}'),
    "NUL in legacy text": ("/whatsapp/send", '{"number": "%s", "message": "\\u0000"}'),
    "NUL in metadata": ("/api/v1/sessions", '{"name": "n", "metadata": {"k": "\\u0000"}}'),
    "NUL in a session name": ("/api/v1/sessions", '{"name": "a\\u0000"}'),
    "huge integer": ("/api/v1/sessions", '{"name": "i", "metadata": {"n": 1%s}}'),
    "NaN": ("/api/v1/sessions", '{"name": "f", "metadata": {"n": NaN}}'),
    "infinity": ("/api/v1/sessions", '{"name": "f", "metadata": {"n": 1e999}}'),
    "not UTF-8": ("/api/v1/sessions", None),
    "malformed": ("/api/v1/sessions", '{"name": '),
}


def body_of(case: str) -> bytes:
    _path, template = RAW_BODIES[case]
    if template is None:
        return b'{"name": "\xff\xfe"}'
    if case == "deep metadata":
        return (template % json.dumps(nested(300))).encode()
    if case == "huge integer":
        return (template % ("0" * 30)).encode()
    if "%s" in template:
        return (template % NUMBER).encode()
    return template.encode()


@pytest.mark.parametrize("case", list(RAW_BODIES))
async def test_unstorable_bodies_are_422_and_store_nothing(
    any_server: RunningServer, any_api: httpx.AsyncClient, case: str
) -> None:
    path = RAW_BODIES[case][0]
    before = (await any_api.get("/api/v1/sessions/default/messages")).json()["data"]
    response = await any_api.post(
        path, content=body_of(case), headers={"content-type": "application/json"}
    )
    assert_invalid(response)
    await lists_still_work(any_api)
    after = (await any_api.get("/api/v1/sessions/default/messages")).json()["data"]
    assert after == before
    assert [s["name"] for s in (await any_api.get("/api/v1/sessions")).json()] == ["default"]
    assert (await any_api.get("/api/v1/webhooks")).json() == []


async def test_moderate_nesting_is_fine(any_api: httpx.AsyncClient) -> None:
    created = await any_api.post("/api/v1/sessions", json={"name": "ok", "metadata": nested(20)})
    assert created.status_code == 201
    assert created.json()["metadata"] == nested(20)
    await lists_still_work(any_api)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/messages/msg_%00",
        "/api/v1/webhooks/wh_%00",
        "/api/v1/sessions/default/messages?cursor=a%00b",
        "/api/v1/sessions/default/messages?chat=%00",
        "/whatsapp/messages?before=%00",
        "/api/v1/events?session=x%00",
    ],
)
async def test_nul_in_paths_and_queries_is_422(any_api: httpx.AsyncClient, path: str) -> None:
    assert_invalid(await any_api.get(path))


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({"after": str(2**63)}, {}),
        ({"after": "9" * 40}, {}),
        ({}, {"Accept": "text/event-stream", "Last-Event-ID": str(2**63)}),
        ({}, {"Accept": "text/event-stream", "Last-Event-ID": "9" * 40}),
    ],
)
async def test_out_of_range_sequence_numbers_are_4xx(
    any_api: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str]
) -> None:
    response = await any_api.get("/api/v1/events", params=params, headers=headers)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"] == "invalid_input"
