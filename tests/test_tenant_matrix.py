"""Every operation of /openapi.json, called as owner, other tenant, no key and bad key.

The owner makes real things (a session, a message, a webhook, a delivery); the other tenant
tries each operation on the owner's ids and must get 404 (or, for lists, its own empty world),
and must leave the owner's things as they were. Without a valid key every authenticated
operation answers 401 with ``WWW-Authenticate: Bearer``. The table below must name every
operation of the schema, so a route added later cannot skip this test.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, make_settings
from tests.media.files import b64, png
from tests.support.tenants import tenant_key
from zapgate.config import Settings

OWNER_SESSION = "matrix"
BAD_KEY = {"Authorization": "Bearer zg_nosuchkey00001_" + "x" * 32}
OPEN = {"/health", "/ready", "/", "/dashboard", "/dashboard/assets/{name}"}
SIGNED = {
    "/api/v1/media/{media_id}/content",
    # Meta's callbacks: the session's verify token and app secret are the credentials
    "/api/v1/cloudapi/{tenant}/{session}/webhook",
    # an SMS provider's callbacks: the session's auth token signs them (X-Twilio-Signature)
    "/api/v1/sms/{tenant}/{session}/webhook",
    # Telegram's webhook: the session's secret token (X-Telegram-Bot-Api-Secret-Token)
    "/api/v1/telegram/{tenant}/{session}/webhook",
    # Chatwoot's webhook: the integration's token in its callback URL
    "/api/v1/chatwoot/{tenant}/{session}/webhook",
}
"""Routes whose credential is a signed query (a link), not a key: without it, 422."""
NUMBER = "5511999999999"
CHATWOOT = {
    "base_url": "https://chatwoot.example.com",
    "account_id": 1,
    "inbox_id": 2,
    "api_token": "matrix-token",
}
BOT = {"url": "https://bot.example.com/hook"}


@dataclass(frozen=True)
class Row:
    """How one operation is called and what each caller gets."""

    owner: frozenset[int]
    body: Any = None
    other: frozenset[int] = frozenset({404})
    other_body: Any = None
    order: int = 0
    """Owner calls run by ascending order: state-changing ones (stop, delete) last."""


def row(*owner: int, body: Any = None, other: tuple[int, ...] = (404,), **extra: Any) -> Row:
    return Row(frozenset(owner), body, frozenset(other), **extra)


TABLE: dict[tuple[str, str], Row] = {
    ("GET", "/health"): row(200, other=(200,)),
    ("GET", "/ready"): row(200, other=(200,)),
    # the dashboard's page and files: no credentials (every call the page makes needs them)
    ("GET", "/"): row(200, other=(200,)),
    ("GET", "/dashboard"): row(200, other=(200,)),
    ("GET", "/dashboard/assets/{name}"): row(200, other=(200,)),
    # each tenant sees its own key and figures
    ("GET", "/api/v1/whoami"): row(200, other=(200,)),
    ("GET", "/api/v1/overview"): row(200, other=(200,)),
    # every tenant's figures: the operator's (the default tenant's admin), no other tenant's
    ("GET", "/metrics"): row(200, other=(403,)),
    # no verify token, no signature: refused whoever asks (tests/cloudapi has the right ones)
    ("GET", "/api/v1/cloudapi/{tenant}/{session}/webhook"): row(422, other=(422,)),
    ("POST", "/api/v1/cloudapi/{tenant}/{session}/webhook"): row(401, other=(401,)),
    # no X-Twilio-Signature (and no SMS session): refused whoever asks (tests/sms)
    ("POST", "/api/v1/sms/{tenant}/{session}/webhook"): row(403, other=(403,)),
    # no secret token (and no Telegram session): refused whoever asks (tests/telegram)
    ("POST", "/api/v1/telegram/{tenant}/{session}/webhook"): row(401, other=(401,)),
    ("GET", "/api/v1/sessions"): row(200, other=(200,)),
    ("POST", "/api/v1/sessions"): row(
        201,
        body={"name": "owner-made", "start": False},
        other=(201,),
        other_body={"name": "other-made", "start": False},
    ),
    ("GET", "/api/v1/sessions/{session}"): row(200),
    ("PATCH", "/api/v1/sessions/{session}"): row(200, body={"metadata": {"by": "owner"}}),
    ("DELETE", "/api/v1/sessions/{session}"): row(204, order=9),
    ("POST", "/api/v1/sessions/{session}/start"): row(200, 409, order=6),
    ("POST", "/api/v1/sessions/{session}/stop"): row(200, 409, order=5),
    ("POST", "/api/v1/sessions/{session}/restart"): row(200, order=7),
    ("POST", "/api/v1/sessions/{session}/logout"): row(200, order=8),
    ("GET", "/api/v1/sessions/{session}/qr"): row(200, 409),
    ("POST", "/api/v1/sessions/{session}/pair"): row(200, 409, 422, body={"phone": NUMBER}),
    ("GET", "/api/v1/sessions/{session}/me"): row(200, 409),
    ("POST", "/api/v1/sessions/{session}/simulate/scan"): row(204, 409),
    ("POST", "/api/v1/sessions/{session}/simulate/inbound"): row(
        201, body={"from": "5511988887777", "text": "hi"}
    ),
    ("POST", "/api/v1/sessions/{session}/messages"): row(202, body={"to": NUMBER, "text": "x"}),
    ("GET", "/api/v1/sessions/{session}/messages"): row(200),
    ("GET", "/api/v1/messages/{message_id}"): row(200),
    ("GET", "/api/v1/media/{media_id}"): row(200),
    ("POST", "/api/v1/media/{media_id}/url"): row(200, body={"expires_in": 60}),
    ("GET", "/api/v1/media/{media_id}/content"): row(422, other=(422,)),  # a link needs its query
    ("PATCH", "/api/v1/messages/{message_id}"): row(200, 409, body={"text": "edited"}),
    ("DELETE", "/api/v1/messages/{message_id}"): row(200, 409, order=8),
    ("POST", "/api/v1/sessions/{session}/chats/{chat}/presence"): row(
        204, body={"state": "typing"}
    ),
    ("POST", "/api/v1/sessions/{session}/simulate/call"): row(202, body={"from": NUMBER}),
    ("POST", "/api/v1/sessions/{session}/simulate/edit"): row(
        404, body={"message_id": "msg_nope", "text": "x"}
    ),
    ("POST", "/api/v1/sessions/{session}/simulate/revoke"): row(
        404, body={"message_id": "msg_nope"}
    ),
    ("GET", "/api/v1/sessions/{session}/chats"): row(200),
    ("GET", "/api/v1/sessions/{session}/chats/{chat}"): row(200),
    ("GET", "/api/v1/sessions/{session}/chats/{chat}/messages"): row(200),
    ("POST", "/api/v1/sessions/{session}/chats/{chat}/read"): row(200),
    ("GET", "/api/v1/sessions/{session}/contacts"): row(200),
    ("GET", "/api/v1/sessions/{session}/contacts/{contact}"): row(200),
    ("GET", "/api/v1/sessions/{session}/contacts/{contact}/exists"): row(200),
    ("GET", "/api/v1/sessions/{session}/contacts/{contact}/picture"): row(200),
    ("GET", "/api/v1/sessions/{session}/groups"): row(200),
    ("POST", "/api/v1/sessions/{session}/groups"): row(
        201, body={"name": "owner group", "participants": [NUMBER]}
    ),
    ("GET", "/api/v1/sessions/{session}/groups/{group}"): row(200),
    ("GET", "/api/v1/sessions/{session}/groups/{group}/participants"): row(200),
    ("POST", "/api/v1/sessions/{session}/groups/{group}/participants/add"): row(
        200, body={"participants": ["5511988887777"]}
    ),
    ("POST", "/api/v1/sessions/{session}/groups/{group}/participants/remove"): row(
        200, body={"participants": ["5511988887777"]}
    ),
    ("POST", "/api/v1/sessions/{session}/groups/{group}/leave"): row(204, order=4),
    ("GET", "/api/v1/events"): row(200, other=(200,)),
    ("POST", "/api/v1/webhooks"): row(
        201,
        body={"url": "https://example.com/owner"},
        other=(201,),
        other_body={"url": "https://example.com/other"},
    ),
    ("GET", "/api/v1/webhooks"): row(200, other=(200,)),
    ("GET", "/api/v1/webhooks/{webhook_id}"): row(200),
    ("PATCH", "/api/v1/webhooks/{webhook_id}"): row(200, body={"active": True}),
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): row(204, order=9),
    ("POST", "/api/v1/webhooks/{webhook_id}/rotate-secret"): row(200),
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): row(200),
    ("POST", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"): row(202),
    ("POST", "/api/v1/webhooks/{webhook_id}/replay"): row(
        202, body={"since": "2000-01-01T00:00:00Z"}
    ),
    ("POST", "/api/v1/sinks"): row(
        201,
        body={"type": "redis", "url": "redis://sinks.example.com:6379/0"},
        other=(201,),
        other_body={"type": "nats", "url": "nats://other.example.com:4222"},
    ),
    ("GET", "/api/v1/sinks"): row(200, other=(200,)),
    ("GET", "/api/v1/sinks/{sink_id}"): row(200),
    ("PATCH", "/api/v1/sinks/{sink_id}"): row(200, body={"active": True}),
    ("DELETE", "/api/v1/sinks/{sink_id}"): row(204, order=9),
    ("GET", "/api/v1/sinks/{sink_id}/deliveries"): row(200),
    # delivery_id is the webhook's: a sink does not retry another subscription's delivery
    ("POST", "/api/v1/sinks/{sink_id}/deliveries/{delivery_id}/retry"): row(404),
    ("POST", "/api/v1/sinks/{sink_id}/replay"): row(202, body={"after_seq": 0}),
    ("GET", "/api/v1/sessions/{session}/integrations/chatwoot"): row(200),
    ("PUT", "/api/v1/sessions/{session}/integrations/chatwoot"): row(200, body=CHATWOOT),
    ("DELETE", "/api/v1/sessions/{session}/integrations/chatwoot"): row(204, order=8),
    ("GET", "/api/v1/sessions/{session}/integrations/bot"): row(200),
    ("PUT", "/api/v1/sessions/{session}/integrations/bot"): row(200, body=BOT),
    ("DELETE", "/api/v1/sessions/{session}/integrations/bot"): row(204, order=8),
    ("GET", "/api/v1/sessions/{session}/integrations/bot/chats"): row(200),
    ("POST", "/api/v1/sessions/{session}/integrations/bot/chats/{chat}/pause"): row(200),
    ("POST", "/api/v1/sessions/{session}/integrations/bot/chats/{chat}/resume"): row(200),
    ("GET", "/api/v1/sessions/{session}/integrations/{kind}/deliveries"): row(200),
    # no token (and no Chatwoot mirror): refused whoever asks (tests/integrations)
    ("POST", "/api/v1/chatwoot/{tenant}/{session}/webhook"): row(401, other=(401,)),
    ("POST", "/api/v1/keys"): row(
        201,
        body={"name": "owner-made", "scopes": ["read"]},
        other=(201,),
        other_body={"name": "other-made", "scopes": ["read"]},
    ),
    ("GET", "/api/v1/keys"): row(200, other=(200,)),
    ("DELETE", "/api/v1/keys/{key_id}"): row(204, order=9),
    ("GET", "/api/v1/audit"): row(200, other=(200,)),
    ("POST", "/api/v1/tenants"): row(201, body={"id": "owner-made"}, other=(403,)),
    ("GET", "/api/v1/tenants"): row(200, other=(403,)),
    ("GET", "/api/v1/tenants/{tenant}"): row(200, other=(403,)),
    ("PATCH", "/api/v1/tenants/{tenant}"): row(200, body={"limits": {"sessions": 3}}, other=(403,)),
    ("POST", "/api/v1/tenants/{tenant}/suspend"): row(200, other=(403,), order=3),
    ("POST", "/api/v1/tenants/{tenant}/resume"): row(200, other=(403,), order=4),
    ("DELETE", "/api/v1/tenants/{tenant}"): row(422, other=(403,), order=9),
    ("POST", "/api/v1/tenants/{tenant}/keys"): row(
        201, body={"name": "for managed", "scopes": ["read"]}, other=(403,)
    ),
    ("GET", "/api/v1/tenants/{tenant}/keys"): row(200, other=(403,)),
    ("DELETE", "/api/v1/tenants/{tenant}/keys/{key_id}"): row(404, other=(403,)),
    ("GET", "/api/v1/nodes"): row(200, other=(200,)),  # the service's nodes, no tenant's data
    ("POST", "/whatsapp/send"): row(200, body={"number": NUMBER, "message": "hi"}),
    ("GET", "/whatsapp/messages"): row(200),
}
"""The other tenant has no ``default`` session, so the original routes are 404 for it; the owner
holds the operator's key, so it manages tenants (``managed``) and the other tenant may not (its
delete is 422 here: it needs ``?confirm=``; the key is another tenant's, so 404)."""


@dataclass
class Owned:
    """The owner's things, by path parameter name."""

    ids: dict[str, str] = field(default_factory=dict)

    def path(self, template: str) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: self.ids[m.group(1)], template)


@pytest.fixture
def server_settings(tmp_path: Path) -> Settings:
    """Limits off: this test makes 60 unauthenticated requests in a few seconds on purpose."""
    return make_settings(tmp_path, auth_failures_per_minute=0, rate_limit_per_key=0)


async def eventually(check: Callable[[], Awaitable[Any]], what: str, seconds: float = 15) -> Any:
    """The first truthy result of ``check``, polling a background worker's effect."""
    async with asyncio.timeout(seconds):
        while not (result := await check()):
            await asyncio.sleep(0.05)
    assert result, what
    return result


async def make_owned(owner: httpx.AsyncClient) -> Owned:
    """A working session, a message on it, a webhook, and a delivery of that webhook."""
    created = await owner.post("/api/v1/sessions", json={"name": OWNER_SESSION})
    assert created.status_code == 201, created.text

    async def working() -> bool:
        session = await owner.get(f"/api/v1/sessions/{OWNER_SESSION}")
        return bool(session.json()["status"] == "WORKING")

    await eventually(working, "the session never got to WORKING")
    hook = await owner.post("/api/v1/webhooks", json={"url": "https://example.com/hook"})
    assert hook.status_code == 201, hook.text
    webhook_id = hook.json()["id"]
    sent = await owner.post(
        f"/api/v1/sessions/{OWNER_SESSION}/messages", json={"to": NUMBER, "text": "matrix"}
    )
    assert sent.status_code == 202, sent.text

    async def a_delivery() -> str | None:
        page = (await owner.get(f"/api/v1/webhooks/{webhook_id}/deliveries")).json()
        return str(page["data"][0]["id"]) if page["data"] else None

    delivery_id = await eventually(a_delivery, "the webhook got no delivery")
    image = await owner.post(
        f"/api/v1/sessions/{OWNER_SESSION}/messages",
        json={"to": NUMBER, "type": "image", "media": {"base64": b64(png(9))}},
    )
    assert image.status_code == 202, image.text
    sink = await owner.post(
        "/api/v1/sinks", json={"type": "redis", "url": "redis://owned.example.com:6379/0"}
    )
    assert sink.status_code == 201, sink.text
    for kind, body in (("chatwoot", CHATWOOT), ("bot", BOT)):
        put = await owner.put(f"/api/v1/sessions/{OWNER_SESSION}/integrations/{kind}", json=body)
        assert put.status_code == 200, put.text
    key = await owner.post("/api/v1/keys", json={"name": "owned", "scopes": ["send"]})
    assert key.status_code == 201, key.text
    return Owned(
        {
            "session": OWNER_SESSION,
            "message_id": sent.json()["id"],
            "media_id": image.json()["media"]["id"],
            "chat": NUMBER,
            "webhook_id": webhook_id,
            "delivery_id": delivery_id,
            "sink_id": sink.json()["id"],
            "kind": "bot",
            "key_id": key.json()["id"],
            "contact": NUMBER,
            "group": await owned_group(owner),
            "tenant": await managed_tenant(owner),
            "name": "app.js",
        }
    )


async def owned_group(owner: httpx.AsyncClient) -> str:
    made = await owner.post(
        f"/api/v1/sessions/{OWNER_SESSION}/groups",
        json={"name": "matrix", "participants": [NUMBER]},
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def managed_tenant(operator: httpx.AsyncClient) -> str:
    created = await operator.post("/api/v1/tenants", json={"id": "managed"})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def operations(spec: dict[str, Any]) -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, item in spec["paths"].items() for method in item]


def documented(spec: dict[str, Any], method: str, path: str) -> set[int]:
    return {int(status) for status in spec["paths"][path][method.lower()]["responses"]}


async def snapshot(owner: httpx.AsyncClient, owned: Owned) -> list[Any]:
    """What the other tenant must not change."""
    session = (await owner.get(owned.path("/api/v1/sessions/{session}"))).json()
    webhook = (await owner.get(owned.path("/api/v1/webhooks/{webhook_id}"))).json()
    message = (await owner.get(owned.path("/api/v1/messages/{message_id}"))).json()
    sink = (await owner.get(owned.path("/api/v1/sinks/{sink_id}"))).json()
    bot = (await owner.get(owned.path("/api/v1/sessions/{session}/integrations/bot"))).json()
    return [
        {key: sink[key] for key in ("url", "events", "active", "updated_at")},
        {key: bot[key] for key in ("url", "filter", "active", "updated_at")},
        {key: session[key] for key in ("name", "engine", "config", "metadata")},
        {key: webhook[key] for key in ("url", "events", "sessions", "active", "updated_at")},
        message["id"],
    ]


def assert_no_owner_data(method: str, path: str, body: Any, owned: Owned) -> None:
    """A 2xx the other tenant gets shows nothing of the owner's."""
    text = str(body)
    if (method, path) == ("GET", "/api/v1/audit"):  # its failed attempts name the ids it tried
        text = str([entry for entry in body["data"] if entry["result"] == "ok"])
    for value in owned.ids.values():
        if value != OWNER_SESSION:
            assert value not in text, (method, path, value)
    if (method, path) == ("GET", "/api/v1/sessions"):
        assert {s["name"] for s in body} <= {"other-made"}, body
    if (method, path) == ("GET", "/api/v1/events"):
        assert {event["tenant"] for event in body["data"]} <= {"other"}, body
    if (method, path) == ("GET", "/api/v1/keys"):
        assert {key["name"] for key in body} <= {"matrix", "other-made"}, body


async def test_every_operation_keeps_tenants_apart(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    spec = (await api.get("/openapi.json")).json()
    ops = operations(spec)
    missing = sorted(set(ops) - set(TABLE))
    assert not missing, f"operations without a row in TABLE: {missing}"
    assert not sorted(set(TABLE) - set(ops)), "rows for operations the schema no longer has"
    owned = await make_owned(api)
    other_key = await tenant_key(server.services, "other", "matrix")
    before = await snapshot(api, owned)
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=10) as anonymous,
        httpx.AsyncClient(base_url=server.url, headers=BAD_KEY, timeout=10) as bad,
        httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {other_key}"}, timeout=10
        ) as other,
    ):
        for method, path in ops:
            expected = TABLE[(method, path)]
            await check_unauthenticated(anonymous, bad, method, owned.path(path), path)
            body = expected.other_body if expected.other_body is not None else expected.body
            response = await other.request(method, owned.path(path), json=body)
            assert response.status_code in expected.other, (method, path, response.text)
            assert response.status_code in documented(spec, method, path), (method, path)
            json_body = response.headers.get("content-type", "").startswith("application/json")
            if response.status_code < 300 and json_body:
                assert_no_owner_data(method, path, response.json(), owned)
            if path in SIGNED:  # with a link made for the owner, only its own file
                assert response.status_code != 200
    assert await snapshot(api, owned) == before
    for method, path in sorted(ops, key=lambda op: TABLE[op].order):
        expected = TABLE[(method, path)]
        response = await api.request(method, owned.path(path), json=expected.body)
        assert response.status_code in expected.owner, (method, path, response.text)
        assert response.status_code in documented(spec, method, path), (method, path)
        json_body = response.headers.get("content-type", "").startswith("application/json")
        if response.status_code < 300 and json_body and path != "/health":
            assert_sees_own(method, path, response.json(), owned)


async def check_unauthenticated(
    anonymous: httpx.AsyncClient, bad: httpx.AsyncClient, method: str, url: str, path: str
) -> None:
    for client in (anonymous, bad):
        response = await client.request(method, url, json={})
        if path in OPEN:
            assert response.status_code == 200, (method, path)
            continue
        if path in SIGNED:
            assert response.status_code in (401, 403, 422), (method, path, response.text)
            continue
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == "Bearer", (method, path)
        assert response.json()["error"] == "unauthorized"


def assert_sees_own(method: str, path: str, body: Any, owned: Owned) -> None:
    """The owner's lists contain the owner's things, and none the other tenant made."""
    if (method, path) == ("GET", "/api/v1/sessions"):
        names = {session["name"] for session in body}
        assert OWNER_SESSION in names, names
        assert "other-made" not in names, names
    if (method, path) == ("GET", "/api/v1/webhooks"):
        urls = {webhook["url"] for webhook in body}
        assert "https://example.com/hook" in urls, urls
        assert "https://example.com/other" not in urls, urls
    if (method, path) == ("GET", "/api/v1/sessions/{session}/messages"):
        assert owned.ids["message_id"] in {m["id"] for m in body["data"]}
    if (method, path) == ("GET", "/api/v1/events"):
        assert {event["tenant"] for event in body["data"]} == {"default"}, body
    if (method, path) == ("GET", "/api/v1/keys"):
        ids = {key["id"] for key in body}
        assert owned.ids["key_id"] in ids, ids
        assert "other-made" not in {key["name"] for key in body}, body
