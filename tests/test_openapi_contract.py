"""The published schema itself: real success bodies, declared errors, links that resolve, and
request schemas that say what the routes do (nullability, event types, phone numbers, ranges)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_tenant_matrix import eventually
from zapgate.errors import InvalidPhoneNumber
from zapgate.events.model import EventType
from zapgate.messages.schemas import PHONE_PATTERN
from zapgate.phone import normalize_number

Spec = dict[str, Any]
AUTHENTICATED = {"401", "422", "429"}
MAX_SEQ = 2**63 - 1
BINARY = {"type": "string", "format": "binary"}


@pytest.fixture
async def spec(api: httpx.AsyncClient) -> Spec:
    response = await api.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def operations(spec: Spec) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]


def resolve(spec: Spec, schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


async def test_every_success_body_has_its_real_schema(spec: Spec) -> None:
    for method, path, operation in operations(spec):
        successes = {k: v for k, v in operation["responses"].items() if k.startswith("2")}
        assert len(successes) == 1, (method, path, successes)
        status, response = next(iter(successes.items()))
        if status == "204":
            assert "content" not in response, (method, path)
            continue
        if path.startswith("/api/v1/media/") and method == "GET":  # a file, of its own type
            assert response["content"] == {"*/*": {"schema": BINARY}}, (method, path)
            continue
        if path in ("/", "/dashboard"):  # the dashboard's page
            assert list(response["content"]) == ["text/html"]
            continue
        if path == "/dashboard/assets/{name}":  # its scripts, style sheet and images
            assert set(response["content"]) >= {"text/javascript", "text/css"}
            continue
        if path == "/metrics":  # Prometheus text
            assert list(response["content"]) == ["text/plain"]
            continue
        if path.startswith("/api/v1/cloudapi/") and method == "GET":  # Meta's handshake
            assert response["content"] == {"text/plain": {"schema": {"type": "string"}}}
            continue
        if path.startswith("/api/v1/sms/"):  # empty TwiML for the SMS provider
            assert response["content"] == {"text/xml": {"schema": {"type": "string"}}}
            continue
        schema = response["content"]["application/json"]["schema"]
        assert schema not in ({"type": "string"}, {}), (method, path, schema)


async def test_every_authenticated_route_declares_401_422_429_with_error_bodies(
    spec: Spec,
) -> None:
    error_body = {"$ref": "#/components/schemas/ErrorBody"}
    for method, path, operation in operations(spec):
        responses = operation["responses"]
        if operation.get("security"):
            assert set(responses) >= AUTHENTICATED, (method, path, sorted(responses))
            assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
            assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(
                responses["429"]["headers"]
            )
        for status, response in responses.items():
            if status[0] in "45":
                assert response["content"]["application/json"]["schema"] == error_body, (
                    method,
                    path,
                    status,
                )
    assert {path for _, path, op in operations(spec) if not op.get("security")} == {
        "/health",
        "/ready",
        "/api/v1/media/{media_id}/content",  # a signed link: its signature is the credential
        "/api/v1/cloudapi/{tenant}/{session}/webhook",  # Meta's: verify token, app secret
        "/api/v1/sms/{tenant}/{session}/webhook",  # the SMS provider's: X-Twilio-Signature
        "/api/v1/telegram/{tenant}/{session}/webhook",  # Telegram's: its secret token
        "/api/v1/chatwoot/{tenant}/{session}/webhook",  # Chatwoot's: the URL's token
        "/metrics",  # its own token, or the operator's keys
        "/",  # the dashboard's page and files (every call the page makes needs a key)
        "/dashboard",
        "/dashboard/assets/{name}",
    }


async def test_other_content_types_are_declared(spec: Spec) -> None:
    qr = spec["paths"]["/api/v1/sessions/{session}/qr"]["get"]["responses"]["200"]["content"]
    assert qr["image/png"]["schema"] == {"type": "string", "format": "binary"}
    assert "$ref" in qr["application/json"]["schema"]
    events = spec["paths"]["/api/v1/events"]["get"]["responses"]["200"]["content"]
    assert set(events) == {"application/json", "text/event-stream"}
    legacy = spec["paths"]["/whatsapp/messages"]["get"]["responses"]["200"]
    items = legacy["content"]["application/json"]["schema"]["items"]
    assert "body" in resolve(spec, items)["properties"]
    assert "Link" in legacy["headers"]


async def test_links_name_real_operations_and_parameters(spec: Spec) -> None:
    by_id = {op["operationId"]: op for _, _, op in operations(spec)}
    seen = set()
    for _method, _path, operation in operations(spec):
        for response in operation["responses"].values():
            for link in response.get("links", {}).values():
                target = by_id[link["operationId"]]
                names = {p["name"] for p in target.get("parameters", [])}
                assert set(link["parameters"]) <= names, link
                seen.add(link["operationId"])
    assert {"get_session", "send_message", "get_message", "get_webhook", "replay"} <= seen


async def test_parameters_are_never_null_and_sequence_numbers_fit_64_bits(spec: Spec) -> None:
    for method, path, operation in operations(spec):
        for parameter in operation.get("parameters", []):
            assert "null" not in str(parameter["schema"]), (method, path, parameter)
    events = {p["name"]: p["schema"] for p in spec["paths"]["/api/v1/events"]["get"]["parameters"]}
    assert events["after"]["maximum"] == MAX_SEQ
    assert events["Last-Event-ID"]["maximum"] == MAX_SEQ


@pytest.mark.parametrize(
    ("params", "headers", "status"),
    [
        ({"after": MAX_SEQ + 1}, {}, 422),
        ({"after": MAX_SEQ}, {}, 200),
        ({}, {"Last-Event-ID": str(MAX_SEQ + 1), "Accept": "text/event-stream"}, 422),
        ({}, {"Last-Event-ID": "1e3"}, 422),
    ],
    ids=["after-2**63", "after-max", "last-event-id-2**63", "last-event-id-float"],
)
async def test_event_cursors_beyond_64_bits_are_422(
    api: httpx.AsyncClient, params: dict[str, Any], headers: dict[str, str], status: int
) -> None:
    response = await api.get("/api/v1/events", params=params, headers=headers)
    assert response.status_code == status, response.text
    if status == 422:
        assert response.json()["error"] == "invalid_input"


async def test_webhook_event_types_are_the_log_s_types(spec: Spec) -> None:
    schema = spec["components"]["schemas"]["CreateWebhook"]["properties"]["events"]
    declared = set(schema["items"]["enum"])
    emitted = {value for name, value in vars(EventType).items() if name.isupper()}
    assert declared == emitted


@pytest.mark.parametrize("events", [["*"], ["message.recieved"], ["message.received", ""]])
async def test_unknown_event_types_are_refused_with_the_valid_ones(
    api: httpx.AsyncClient, events: list[str]
) -> None:
    created = await api.post("/api/v1/webhooks", json={"url": "https://example.com/a"})
    assert created.status_code == 201
    for response in (
        await api.post("/api/v1/webhooks", json={"url": "https://example.com/b", "events": events}),
        await api.patch(f"/api/v1/webhooks/{created.json()['id']}", json={"events": events}),
    ):
        assert response.status_code == 422, response.text
        problem = response.json()["detail"][0]
        assert problem["loc"][:2] == ["body", "events"]
        assert "'message.received'" in problem["msg"]
        assert "'webhook.disabled'" in problem["msg"]
    listed = (await api.get("/api/v1/webhooks")).json()
    assert [w["url"] for w in listed] == ["https://example.com/a"]
    everything = await api.patch(f"/api/v1/webhooks/{created.json()['id']}", json={"events": []})
    assert everything.status_code == 200
    assert everything.json()["events"] == []


async def test_patch_bodies_take_null_exactly_when_their_schema_says_so(
    spec: Spec, api: httpx.AsyncClient
) -> None:
    webhook = (await api.post("/api/v1/webhooks", json={"url": "https://example.com/n"})).json()
    message = await api.post(
        "/api/v1/sessions/default/messages", json={"to": "5511999999999", "text": "n"}
    )
    sink = await api.post(
        "/api/v1/sinks", json={"type": "redis", "url": "redis://sinks.example.com:6379/0"}
    )
    targets = {
        "session": "default",
        "sink_id": sink.json()["id"],
        "webhook_id": webhook["id"],
        "tenant": "default",
        "message_id": message.json()["id"],
    }
    checked = 0
    for method, path, operation in operations(spec):
        if method != "PATCH":
            continue
        url = re.sub(r"\{(\w+)\}", lambda m: targets[m.group(1)], path)
        body = resolve(spec, operation["requestBody"]["content"]["application/json"]["schema"])
        fields = set(body["properties"])
        before = {k: v for k, v in (await api.get(url)).json().items() if k in fields}
        for name, schema in body["properties"].items():
            nullable = {"type": "null"} in schema.get("anyOf", [])
            response = await api.patch(url, json={name: None})
            assert response.status_code == (200 if nullable else 422), (path, name, response.text)
            checked += 1
        after = {k: v for k, v in (await api.get(url)).json().items() if k in fields}
        assert after == before, "null must leave a PATCHed resource unchanged"
    assert checked >= 7


UNPARSABLE = [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"text": "\xff"}',
    b'{"to": ' + b"1" * 5000 + b"}",
]


@pytest.mark.parametrize("raw", UNPARSABLE, ids=["too-deep", "not-utf-8", "huge-number"])
async def test_unparsable_bodies_are_422_on_every_route_with_a_body(
    spec: Spec, api: httpx.AsyncClient, raw: bytes
) -> None:
    for method, path, operation in operations(spec):
        if "requestBody" not in operation:
            continue
        url = path.replace("{session}", "default").replace("{webhook_id}", "wh_x")
        response = await api.request(
            method, url, content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, (method, path, response.text)
        assert response.json()["error"] == "invalid_input"
        assert "422" in operation["responses"]


async def test_405_allows_every_method_of_the_path(api: httpx.AsyncClient) -> None:
    response = await api.put("/api/v1/sessions")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, POST"
    assert response.json()["error"] == "method_not_allowed"


async def test_the_qr_is_json_or_the_png_the_schema_says(api: httpx.AsyncClient) -> None:
    created = await api.post(
        "/api/v1/sessions", json={"name": "qr", "config": {"pairing": "manual"}}
    )
    assert created.status_code == 201, created.text

    async def showing() -> httpx.Response | None:
        response = await api.get("/api/v1/sessions/qr/qr", headers={"Accept": "image/png"})
        return response if response.status_code == 200 else None

    png = await eventually(showing, "no QR to scan")
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    as_json = (await api.get("/api/v1/sessions/qr/qr")).json()
    assert set(as_json) == {"qr", "image"}
    assert as_json["image"].startswith("data:image/png")


def accepted(number: str) -> bool:
    try:
        normalize_number(number)
    except InvalidPhoneNumber:
        return False
    return True


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.from_regex(PHONE_PATTERN))
def test_every_number_the_schema_allows_is_accepted(number: str) -> None:
    assert accepted(number), number


PHONE_ALPHABET = list("0123456789+ ()-./@cus\t\nx")


@settings(max_examples=1000, deadline=None, derandomize=True, database=None)
@given(st.lists(st.sampled_from(PHONE_ALPHABET), max_size=24).map("".join))
def test_every_ascii_number_accepted_matches_the_schema(number: str) -> None:
    if accepted(number):
        assert re.match(PHONE_PATTERN, number), number
