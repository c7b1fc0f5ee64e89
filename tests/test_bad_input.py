"""Bad input gets a clear 4xx JSON error and stores nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import AUTH, RunningServer
from zapgate.app import send_body_limit
from zapgate.db.tables import messages

SEND = "/api/v1/sessions/default/messages"
LEGACY = "/whatsapp/send"


async def count_messages(server: RunningServer) -> int:
    async with server.services.database.connect() as connection:
        return int(await connection.scalar(sa.select(sa.func.count()).select_from(messages)) or 0)


def assert_error(response: httpx.Response, status: int, error: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "detail"}
    if error is not None:
        assert body["error"] == error


JSON_CASES: list[tuple[str, str, Any, int, str]] = [
    ("missing text", SEND, {"to": "5511999999999"}, 422, "invalid_input"),
    ("missing to", SEND, {"text": "x"}, 422, "invalid_input"),
    ("text is a number", SEND, {"to": "5511999999999", "text": 5}, 422, "invalid_input"),
    ("to is a list", SEND, {"to": ["5511999999999"], "text": "x"}, 422, "invalid_input"),
    ("empty text", SEND, {"to": "5511999999999", "text": ""}, 422, "invalid_input"),
    ("unknown field", SEND, {"to": "5511999999999", "text": "x", "oops": 1}, 422, "invalid_input"),
    ("body is a list", SEND, [1, 2], 422, "invalid_input"),
    ("letters", SEND, {"to": "abc", "text": "x"}, 422, "invalid_phone_number"),
    ("too short", SEND, {"to": "12345", "text": "x"}, 422, "invalid_phone_number"),
    ("too long", SEND, {"to": "1" * 16, "text": "x"}, 422, "invalid_phone_number"),
    ("leading zero", SEND, {"to": "011999999999", "text": "x"}, 422, "invalid_phone_number"),
    ("arabic digits", SEND, {"to": "٥٥١١٩٩٩٩٩٩٩٩٩", "text": "x"}, 422, "invalid_phone_number"),
    ("legacy missing message", LEGACY, {"number": "5511999999999"}, 422, "invalid_input"),
    ("legacy bad number", LEGACY, {"number": "x", "message": "y"}, 422, "invalid_phone_number"),
    ("legacy number bool", LEGACY, {"number": True, "message": "y"}, 422, "invalid_input"),
    ("legacy message null", LEGACY, {"number": "5511999999999", "message": None}, 422, None),
    (
        "unknown session",
        "/api/v1/sessions/nope/messages",
        {"to": "5511999999999", "text": "x"},
        404,
        "session_not_found",
    ),
    (
        "bad session name",
        "/api/v1/sessions/a%20b/messages",
        {"to": "5511999999999", "text": "x"},
        422,
        "invalid_input",
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [case[1:] for case in JSON_CASES],
    ids=[case[0] for case in JSON_CASES],
)
async def test_bad_json_bodies(
    server: RunningServer, api: httpx.AsyncClient, path: str, body: Any, status: int, error: str
) -> None:
    before = await count_messages(server)
    assert_error(await api.post(path, json=body), status, error)
    assert await count_messages(server) == before


@pytest.mark.parametrize("path", [SEND, LEGACY])
@pytest.mark.parametrize(
    "raw", [b"{", b'{"to": "5511999999999", "text": "x"', b"\xff\xfe", b"", b"null"]
)
async def test_malformed_json(
    server: RunningServer, api: httpx.AsyncClient, path: str, raw: bytes
) -> None:
    response = await api.post(path, content=raw, headers={"content-type": "application/json"})
    assert_error(response, 422, "invalid_input")
    assert await count_messages(server) == 0


@pytest.mark.parametrize("path", [SEND, LEGACY])
async def test_ten_megabyte_body_is_refused(
    server: RunningServer, api: httpx.AsyncClient, path: str
) -> None:
    limit = send_body_limit(server.services.settings) if path == SEND else 10 * 1024 * 1024
    text = "x" * limit  # a send may carry a file, so its limit is larger than others'
    response = await api.post(path, json={"to": "5511999999999", "number": "1", "text": text})
    assert_error(response, 413, "payload_too_large")
    assert await count_messages(server) == 0


async def test_streamed_body_without_length_is_limited(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    for path, limit in ((LEGACY, 1_048_576), (SEND, send_body_limit(server.services.settings))):

        async def chunks(limit: int = limit):  # type: ignore[no-untyped-def]
            for _ in range(limit // 100_000 + 1):
                yield b"x" * 100_000

        headers = {"content-type": "application/json"}
        response = await api.post(path, content=chunks(), headers=headers)
        assert_error(response, 413, "payload_too_large")
    assert await count_messages(server) == 0


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/sessions/default/messages", {"limit": 100000}),
        ("/api/v1/sessions/default/messages", {"limit": 0}),
        ("/api/v1/sessions/default/messages", {"limit": "many"}),
        ("/api/v1/sessions/default/messages", {"since": "yesterday"}),
        ("/api/v1/sessions/default/messages", {"direction": "sideways"}),
        ("/api/v1/sessions/default/messages", {"chat": "not-a-number"}),
        ("/whatsapp/messages", {"limit": 100000}),
        ("/api/v1/events", {"limit": 100000}),
        ("/api/v1/events", {"after": -1}),
        ("/api/v1/events", {"wait": 3600}),
    ],
)
async def test_bad_query_parameters(
    api: httpx.AsyncClient, path: str, params: dict[str, Any]
) -> None:
    response = await api.get(path, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["error"] in {"invalid_input", "invalid_phone_number"}


async def test_unknown_things_are_404(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/api/v1/sessions/nope"), 404, "session_not_found")
    assert_error(await api.get("/api/v1/sessions/nope/messages"), 404, "session_not_found")
    assert_error(await api.get("/api/v1/messages/msg_nope"), 404, "message_not_found")
    assert_error(await api.get("/no/such/route"), 404, "not_found")
    assert_error(await api.delete("/whatsapp/send"), 405, "method_not_allowed")


async def test_inbound_to_unknown_session_and_bad_sender(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/v1/sessions/nope/simulate/inbound", json={"from": "5511988887777", "text": "x"}
    )
    assert_error(response, 404, "session_not_found")
    response = await api.post(
        "/api/v1/sessions/default/simulate/inbound", json={"from": "x", "text": "x"}
    )
    assert_error(response, 422, "invalid_phone_number")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer " + AUTH["Authorization"][7:] + "x"},
        {"Authorization": "Basic " + AUTH["Authorization"][7:]},
        {"X-Api-Key": "wrong"},
    ],
    ids=["none", "wrong", "longer", "basic", "wrong-header"],
)
async def test_requests_without_a_valid_key_are_401(
    server: RunningServer, headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
        for method, path in [
            ("GET", "/api/v1/sessions"),
            ("POST", SEND),
            ("POST", LEGACY),
            ("GET", "/whatsapp/messages"),
            ("GET", "/api/v1/events"),
        ]:
            response = await client.request(method, path, json={"to": "5511999999999", "text": "x"})
            assert_error(response, 401, "unauthorized")
            assert response.headers["www-authenticate"] == "Bearer"
    assert await count_messages(server) == 0


async def test_x_api_key_header_and_open_health(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        key = AUTH["Authorization"][7:]
        response = await client.get("/api/v1/sessions", headers={"X-Api-Key": key})
        assert response.status_code == 200
        assert (await client.get("/health")).json()["status"] == "ok"
        assert (await client.get("/ready")).json() == {"status": "ready"}


async def test_openapi_declares_routes_and_errors(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    send = spec["paths"]["/api/v1/sessions/{session}/messages"]["post"]
    assert {"202", "401", "404", "413", "422"} <= set(send["responses"])
    for path in [
        "/whatsapp/send",
        "/whatsapp/messages",
        "/api/v1/events",
        "/api/v1/messages/{message_id}",
        "/api/v1/sessions",
        "/api/v1/sessions/{session}",
        "/api/v1/sessions/{session}/simulate/inbound",
        "/health",
        "/ready",
    ]:
        assert path in spec["paths"], path
    docs = await api.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
