"""The fake Cloud API itself: it takes what Meta takes and refuses what Meta refuses."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import free_port
from tests.support.fake_graph import FakeGraph, running
from tests.support.receiver import Receiver

TO = "5511988887777"
WAMID = "wamid.HBgNNTUxMTk4ODg4Nzc3NxUCABIYFDNBMDg2RTVCRjBCRDMzNjQ2QzUwAA=="
LINK = "https://example.com/files/a.jpg"


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    async with running() as fake:
        yield fake


@pytest.fixture
async def http(graph: FakeGraph) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {graph.access_token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        yield session


async def send(
    http: aiohttp.ClientSession, graph: FakeGraph, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    url = f"{graph.url}/{graph.version}/{graph.phone_number_id}/messages"
    async with http.post(url, json=body) as response:
        return response.status, await response.json()


def message(kind: str, content: Any, **extra: Any) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "to": TO, "type": kind, kind: content, **extra}


BUTTONS = {
    "type": "button",
    "header": {"type": "image", "image": {"link": LINK}},
    "body": {"text": "Confirma?"},
    "footer": {"text": "zapgate"},
    "action": {
        "buttons": [
            {"type": "reply", "reply": {"id": "yes", "title": "Sim"}},
            {"type": "reply", "reply": {"id": "no", "title": "Não"}},
        ]
    },
}
LIST = {
    "type": "list",
    "header": {"type": "text", "text": "Cardápio"},
    "body": {"text": "Escolha"},
    "action": {
        "button": "Ver opções",
        "sections": [
            {"title": "Pizzas", "rows": [{"id": "p1", "title": "Mussarela", "description": "M"}]},
            {"title": "Bebidas", "rows": [{"id": "b1", "title": "Suco"}]},
        ],
    },
}
ORDER_UPDATE = {
    "name": "order_update",
    "language": {"code": "pt_BR"},
    "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "Ana"}] * 2},
        {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": []},
    ],
}
VALID = {
    "text": message("text", {"body": "oi", "preview_url": False}),
    "reply": message(
        "text",
        {"body": "oi"},
        to="+" + TO,
        recipient_type="individual",
        context={"message_id": WAMID},
        biz_opaque_callback_data="ticket-1",
    ),
    "image": message("image", {"link": LINK, "caption": "foto"}),
    "video": message("video", {"link": LINK}),
    "audio": message("audio", {"link": LINK}),
    "document": message("document", {"link": LINK, "filename": "a.pdf", "caption": "c"}),
    "sticker": message("sticker", {"link": LINK}),
    "location": message("location", {"latitude": -23.5, "longitude": -46.6, "name": "SP"}),
    "contacts": message(
        "contacts",
        [{"name": {"formatted_name": "Ana B", "first_name": "Ana"}, "phones": [{"phone": "+1"}]}],
    ),
    "reaction": message("reaction", {"message_id": WAMID, "emoji": "👍"}),
    "unreact": message("reaction", {"message_id": WAMID, "emoji": ""}),
    "buttons": message("interactive", BUTTONS),
    "list": message("interactive", LIST),
    "hello_world": message("template", {"name": "hello_world", "language": {"code": "en_US"}}),
    "order_update": message("template", ORDER_UPDATE),
}


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


MALFORMED = {
    "product": _with(VALID["text"], messaging_product="sms"),
    "short to": _with(VALID["text"], to="12345"),
    "unknown type": message("poll", {"q": 1}),
    "empty body": message("text", {"body": ""}),
    "long body": message("text", {"body": "x" * 4097}),
    "two objects": _with(VALID["text"], image={"link": LINK}),
    "unknown key": _with(VALID["text"], priority="high"),
    "id and link": message("image", {"link": LINK, "id": "123"}),
    "unknown media id": message("image", {"id": "123"}),
    "audio caption": message("audio", {"link": LINK, "caption": "no"}),
    "image filename": message("image", {"link": LINK, "filename": "a.jpg"}),
    "ftp link": message("document", {"link": "ftp://example.com/a"}),
    "four buttons": message(
        "interactive",
        _with(
            BUTTONS,
            action={
                "buttons": [
                    {"type": "reply", "reply": {"id": f"{i}", "title": f"{i}"}} for i in range(4)
                ]
            },
        ),
    ),
    "long title": message(
        "interactive",
        _with(
            BUTTONS,
            action={"buttons": [{"type": "reply", "reply": {"id": "a", "title": "x" * 21}}]},
        ),
    ),
    "untitled section": message(
        "interactive",
        _with(
            LIST,
            action={"button": "Ver", "sections": [{"rows": [{"id": "a", "title": "A"}]}] * 2},
        ),
    ),
    "eleven rows": message(
        "interactive",
        _with(
            LIST,
            action={
                "button": "Ver",
                "sections": [{"rows": [{"id": f"r{i}", "title": "R"} for i in range(11)]}],
            },
        ),
    ),
    "list image header": message(
        "interactive", _with(LIST, header={"type": "image", "image": {"link": LINK}})
    ),
    "string latitude": message("location", {"latitude": "-23.5", "longitude": -46.6}),
    "only formatted name": message("contacts", [{"name": {"formatted_name": "Ana"}}]),
    "empty contacts": message("contacts", []),
    "bad reaction id": message("reaction", {"message_id": "abc", "emoji": "👍"}),
    "template case": message("template", {"name": "Hello", "language": {"code": "en_US"}}),
    "button without index": message(
        "template",
        _with(ORDER_UPDATE, components=[{"type": "button", "sub_type": "quick_reply"}]),
    ),
    "text param without text": message(
        "template",
        _with(ORDER_UPDATE, components=[{"type": "body", "parameters": [{"type": "text"}]}]),
    ),
    "read without id": {"messaging_product": "whatsapp", "status": "read"},
}


@pytest.mark.parametrize("name", VALID)
async def test_accepts_each_message_type(
    graph: FakeGraph, http: aiohttp.ClientSession, name: str
) -> None:
    status, answer = await send(http, graph, VALID[name])
    assert status == 200, answer
    assert graph.problems == []
    wamid = answer["messages"][0]["id"]
    assert wamid.startswith("wamid.HBgN")
    assert answer["contacts"] == [{"input": VALID[name]["to"], "wa_id": TO}]
    assert ("message_status" in answer["messages"][0]) == (name in ("hello_world", "order_update"))
    assert [sent.wamid for sent in graph.sends] == [wamid]


@pytest.mark.parametrize("name", MALFORMED)
async def test_refuses_malformed_sends(
    graph: FakeGraph, http: aiohttp.ClientSession, name: str
) -> None:
    status, answer = await send(http, graph, MALFORMED[name])
    assert status == 400
    assert answer["error"]["code"] == 100
    assert answer["error"]["message"] == "(#100) Invalid parameter"
    assert len(graph.problems) == 1
    assert graph.sends == []


async def test_statuses_arrive_signed_and_in_order(
    graph: FakeGraph, http: aiohttp.ClientSession
) -> None:
    got: list[tuple[bytes, dict[str, str]]] = []

    async def record(body: bytes, headers: dict[str, str]) -> int:
        got.append((body, headers))
        return 200

    graph.callback = record
    _, answer = await send(http, graph, VALID["reply"])
    await graph.drain()
    statuses = []
    for body, headers in got:
        assert headers["X-Hub-Signature-256"] == graph.sign(body)
        expected = hmac.new(b"fake-app-secret", body, hashlib.sha256).hexdigest()
        assert headers["X-Hub-Signature-256"] == f"sha256={expected}"
        envelope = json.loads(body)
        assert envelope["object"] == "whatsapp_business_account"
        change = envelope["entry"][0]["changes"][0]
        assert change["field"] == "messages"
        assert change["value"]["metadata"]["display_phone_number"] == "5511955550100"
        statuses.append(change["value"]["statuses"][0])
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    assert {s["id"] for s in statuses} == {answer["messages"][0]["id"]}
    assert {s["recipient_id"] for s in statuses} == {TO}
    assert {s["biz_opaque_callback_data"] for s in statuses} == {"ticket-1"}
    assert [("pricing" in s, "conversation" in s) for s in statuses] == [
        (True, False),
        (True, False),
        (False, False),
    ]


async def test_mark_as_read(graph: FakeGraph, http: aiohttp.ClientSession) -> None:
    body = {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": WAMID,
        "typing_indicator": {"type": "text"},
    }
    assert await send(http, graph, body) == (200, {"success": True})
    assert [(sent.payload, sent.wamid) for sent in graph.sends] == [(body, "")]


async def test_template_errors_are_legit(graph: FakeGraph, http: aiohttp.ClientSession) -> None:
    unknown = message("template", {"name": "nope", "language": {"code": "pt_BR"}})
    status, answer = await send(http, graph, unknown)
    assert answer["error"]["code"] == 132001
    short = _with(ORDER_UPDATE, components=[{"type": "body", "parameters": []}])
    status, answer = await send(http, graph, message("template", short))
    assert (status, answer["error"]["code"]) == (400, 132000)
    assert graph.problems == []
    assert graph.sends == []


async def test_injected_failures_then_success(
    graph: FakeGraph, http: aiohttp.ClientSession
) -> None:
    graph.fail_sends(131026, count=2, details="Receiver is incapable of receiving this message")
    for _ in range(2):
        status, answer = await send(http, graph, VALID["text"])
        assert status == 400
        error = answer["error"]
        assert error["message"] == "(#131026) Message undeliverable"
        assert error["type"] == "OAuthException"
        assert error["error_data"]["messaging_product"] == "whatsapp"
        assert error["error_data"]["details"].startswith("Receiver is incapable")
        assert error["fbtrace_id"]
    assert (await send(http, graph, VALID["text"]))[0] == 200
    assert graph.problems == []


async def test_outage_and_bad_tokens(graph: FakeGraph, http: aiohttp.ClientSession) -> None:
    url = f"{graph.url}/{graph.version}/{graph.phone_number_id}"
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        async with aiohttp.ClientSession(headers=headers) as anonymous, anonymous.get(url) as r:
            assert r.status == 401
            assert (await r.json())["error"]["code"] == 190
    graph.outage = True
    status, answer = await send(http, graph, VALID["text"])
    assert status == 500
    assert answer["error"]["code"] == 2
    assert answer["error"]["is_transient"] is True
    assert graph.problems == []
    assert graph.requests == 3


async def test_phone_number_and_wrong_version(
    graph: FakeGraph, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{graph.url}/{graph.version}/{graph.phone_number_id}") as response:
        phone = await response.json()
    assert phone["verified_name"] == "Zapgate Test"
    assert phone["id"] == graph.phone_number_id
    assert phone["platform_type"] == "CLOUD_API"
    url = f"{graph.url}/{graph.version}/{graph.phone_number_id}?fields=verified_name"
    async with http.get(url) as response:
        assert await response.json() == {"verified_name": "Zapgate Test", "id": "106540352242922"}
    async with http.get(f"{graph.url}/{graph.version}/999") as response:
        assert (await response.json())["error"]["code"] == 100
    assert graph.problems == []
    async with http.get(f"{graph.url}/v19.0/{graph.phone_number_id}") as response:
        assert response.status == 400
    assert len(graph.problems) == 1


async def test_media_round_trip(graph: FakeGraph, http: aiohttp.ClientSession) -> None:
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    form = aiohttp.FormData()
    form.add_field("messaging_product", "whatsapp")
    form.add_field("type", "image/png")
    form.add_field("file", data, filename="pic.png", content_type="image/png")
    url = f"{graph.url}/{graph.version}/{graph.phone_number_id}/media"
    async with http.post(url, data=form) as response:
        media_id = (await response.json())["id"]
    assert media_id.isdigit()
    assert graph.uploads[media_id].filename == "pic.png"
    inbound = graph.add_media(b"%PDF-1.4 hello", "application/pdf", "a.pdf")
    for mid, body, mime in ((media_id, data, "image/png"), (inbound, b"%PDF-1.4 hello", None)):
        async with http.get(f"{graph.url}/{graph.version}/{mid}") as response:
            info = await response.json()
        assert info["sha256"] == hashlib.sha256(body).hexdigest()
        assert info["file_size"] == len(body)
        async with http.get(info["url"]) as response:
            assert await response.read() == body
            assert response.content_type == (mime or "application/pdf")
        async with aiohttp.ClientSession() as anonymous, anonymous.get(info["url"]) as response:
            assert response.status == 401
    status, _ = await send(http, graph, message("image", {"id": media_id}))
    assert status == 200
    no_file = aiohttp.FormData({"messaging_product": "whatsapp", "type": "image/png"})
    async with http.post(url, data=no_file) as response:
        assert response.status == 400
    assert len(graph.problems) == 1


async def test_deliver_posts_signed_inbound(graph: FakeGraph) -> None:
    receiver = Receiver(port=free_port())
    await receiver.start()
    try:
        graph.post_to(receiver.url)
        value = graph.inbound_value(
            {"from": TO, "type": "text", "text": {"body": "olá https://x.y/z"}}
        )
        assert await graph.deliver(value) == 200
        assert await graph.deliver(value, signature="sha256=00") == 200
    finally:
        await receiver.stop()
    first, second = receiver.requests
    assert b"\\/" in first.body
    assert b"\\u00e1" in first.body
    assert first.headers["x-hub-signature-256"] == graph.sign(first.body)
    assert first.headers["content-type"] == "application/json"
    assert second.headers["x-hub-signature-256"] == "sha256=00"
    change = first.json["entry"][0]["changes"][0]["value"]
    assert change["contacts"] == [{"profile": {"name": "Cliente"}, "wa_id": TO}]
    assert change["messages"][0]["text"]["body"] == "olá https://x.y/z"
    assert change["messages"][0]["id"].startswith("wamid.")
    assert graph.sign(b"x", "other") != graph.sign(b"x")
