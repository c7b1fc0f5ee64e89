"""Scoped keys: every route of the app checks the scope it declares, for every kind of key.

The matrix is generated from the app's routes: each authenticated route must take one of the
scoped callers (``zapgate.http.auth.needs``), so a route added later cannot skip the check, and
each is then called with a read key, a send key, keys limited to one session, an expired key and
a revoked key. Calls that are allowed must not be refused for the key (any other answer, such as
422 for the empty body, is fine); calls that are not must be 403 ``forbidden`` naming the scope.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from tests.conftest import ADMIN_KEY, RunningServer
from tests.realtime.support import emit
from zapgate.app import create_api
from zapgate.auth import scopes
from zapgate.auth.scopes import Scope

OPEN = {
    "/health",
    "/ready",
    "/api/v1/media/{media_id}/content",
    "/api/v1/cloudapi/{tenant}/{session}/webhook",  # Meta's: signed, see tests/cloudapi
    "/api/v1/sms/{tenant}/{session}/webhook",  # the SMS provider's: signed, see tests/sms
    "/api/v1/telegram/{tenant}/{session}/webhook",  # Telegram's: its secret, see tests/telegram
    "/api/v1/chatwoot/{tenant}/{session}/webhook",  # Chatwoot's: its token, tests/integrations
    "/metrics",  # its own token, or the operator's keys: see tests/test_metrics.py
    "/",  # the dashboard's page and files: every call the page makes needs a key
    "/dashboard",
    "/dashboard/assets/{name}",
}
"""Routes without a scoped caller: health, and signed media links (the signature decides)."""
PATH_VALUES = {
    "session": "default",
    "message_id": "msg_01J00000000000000000000000",
    "webhook_id": "wh_01J00000000000000000000000",
    "delivery_id": "dl_01J00000000000000000000000",
    "key_id": "key_nosuchkey0",
    "tenant": "nosuchtenant",
    "chat": "5511999999999",
    "media_id": "med_01J00000000000000000000000",
    "contact": "5511999999999",
    "group": "120363000000000000@g.us",
    "sink_id": "snk_01J00000000000000000000000",
    "kind": "bot",
}


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """The framework's routes, through included routers (included without a prefix here)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from api_routes(route.original_router.routes)


def scoped_routes(server: RunningServer) -> list[tuple[str, str, Scope, bool]]:
    """(method, path, scope, about a session) of every authenticated route of the app; a route
    that filters by the key's sessions itself counts as about them."""
    found = []
    for route in api_routes(create_api(server.services).routes):
        if route.path in OPEN:
            continue
        scoped = [d.call for d in route.dependant.dependencies if hasattr(d.call, "scope")]
        needed = [call.scope for call in scoped]  # type: ignore[attr-defined]
        assert len(needed) == 1, f"{route.path} must take exactly one scoped caller: {needed}"
        filtered = bool(scoped[0].filtered)  # type: ignore[attr-defined]
        about_session = filtered or "{session}" in route.path or route.path.startswith("/whatsapp/")
        for method in sorted(route.methods):
            found.append((method, route.path, needed[0], about_session))
    assert len(found) > 30, "the app's routes were found"
    return found


async def key_for(api: httpx.AsyncClient, **body: Any) -> str:
    created = await api.post("/api/v1/keys", json={"name": "matrix", **body})
    assert created.status_code == 201, created.text
    assert created.json()["scopes"] == body["scopes"]
    return str(created.json()["key"])


async def answer(server: RunningServer, key: str, method: str, path: str) -> httpx.Response:
    url = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], path)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10) as client:
        return await client.request(method, url, json={})


def refused_for_scope(response: httpx.Response, needed: Scope) -> bool:
    if response.status_code != 403:
        return False
    body = response.json()
    assert body["error"] == "forbidden", body
    return needed.value in body["detail"] or "session" in body["detail"]


@pytest.mark.parametrize("granted", [Scope.READ, Scope.SEND, Scope.ADMIN, Scope.OPERATOR])
async def test_each_route_refuses_keys_without_its_scope(
    server: RunningServer, api: httpx.AsyncClient, granted: Scope
) -> None:
    """The operator is the configured key (admin of its tenant, and operator)."""
    key = ADMIN_KEY if granted is Scope.OPERATOR else await key_for(api, scopes=[granted.value])
    has = scopes.granted([granted, Scope.ADMIN] if granted is Scope.OPERATOR else [granted])
    for method, path, needed, _about_session in scoped_routes(server):
        response = await answer(server, key, method, path)
        if needed not in has:
            assert refused_for_scope(response, needed), (method, path, response.text)
        else:
            assert response.status_code not in (401, 403), (method, path, response.text)


async def test_a_key_limited_to_sessions_uses_only_routes_about_them(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    elsewhere = await key_for(api, scopes=["admin"], sessions=["elsewhere"])
    here = await key_for(api, scopes=["read"], sessions=["default"])
    nothing = {  # routes that show each key its own sessions' things: here, none
        "/api/v1/events": lambda body: body["data"] == [],
        "/api/v1/sessions": lambda body: body == [],
        "/api/v1/messages/{message_id}": lambda body: body["error"] == "message_not_found",
        "/api/v1/whoami": lambda body: body["sessions"] == ["elsewhere"],
        "/api/v1/overview": lambda body: (
            body["sessions"] == [] and body["webhooks"] is None and body["integrations"] is None
        ),
    }
    for method, path, needed, about_session in scoped_routes(server):
        response = await answer(server, elsewhere, method, path)
        shows_nothing = method == "GET" or path == "/api/v1/messages/{message_id}"
        if path in nothing and shows_nothing:
            assert response.status_code in (200, 404), (method, path, response.text)
            assert nothing[path](response.json()), (method, path, response.text)
        else:
            assert response.status_code == 403, (method, path, response.text)
            assert needed is Scope.OPERATOR or "session" in response.json()["detail"]
        if needed is Scope.READ:
            response = await answer(server, here, method, path)
            expected = "not 403" if about_session else 403
            assert (response.status_code != 403) == about_session, (method, path, expected)


async def test_expired_and_revoked_keys_are_refused(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=2)
    expiring = await key_for(api, scopes=["read"], expires_at=soon.isoformat())
    # used (and cached) at once: what follows may take longer than the key lives on a busy machine
    assert (await answer(server, expiring, "GET", "/api/v1/sessions")).status_code == 200
    revoked = await key_for(api, scopes=["send"])
    assert (await answer(server, revoked, "GET", "/api/v1/sessions")).status_code == 200
    listed = {key["name"]: key for key in (await api.get("/api/v1/keys")).json()}
    assert listed["matrix"]["last_used_at"] is not None
    revoked_id = next(
        key["id"]
        for key in (await api.get("/api/v1/keys")).json()
        if revoked.split("_")[1] in key["id"]
    )
    assert (await api.delete(f"/api/v1/keys/{revoked_id}")).status_code == 204
    assert (await api.delete(f"/api/v1/keys/{revoked_id}")).status_code == 404
    configured = next(key["id"] for key in listed.values() if key["name"] == "ZAPGATE_API_KEY")
    kept = await api.delete(f"/api/v1/keys/{configured}")
    assert kept.status_code == 409, "the configured key changes with its setting, not here"
    assert (await api.get("/api/v1/keys")).status_code == 200
    refused = await answer(server, revoked, "POST", "/whatsapp/send")
    assert refused.status_code == 401, "revoked: refused on the next request, hot path too"
    assert (await answer(server, revoked, "GET", "/api/v1/sessions")).status_code == 401
    # Expiry is a wall-clock event: wait it out (the key was verified and cached above, so
    # this also shows the cache never outlives a key's expiry).
    await asyncio.sleep((soon - datetime.now(UTC)).total_seconds() + 0.05)
    expired = await answer(server, expiring, "GET", "/api/v1/sessions")
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"]


async def test_keys_are_shown_without_secrets_and_checked_on_the_way_in(
    api: httpx.AsyncClient,
) -> None:
    created = await api.post("/api/v1/keys", json={"name": "app", "scopes": ["send"]})
    assert created.status_code == 201
    plaintext = created.json()["key"]
    listed = (await api.get("/api/v1/keys")).json()
    assert plaintext not in str(listed)
    assert all("key" not in key for key in listed)
    bad = [
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["root"]},
        {"name": "", "scopes": ["read"]},
        {"name": "x", "scopes": ["read"], "sessions": ["bad name"]},
        {"name": "x", "scopes": ["read"], "expires_at": "2001-13-01T00:00:00Z"},
        {"name": "x", "scopes": ["read"], "extra": 1},
        {"name": "ZAPGATE_API_KEY", "scopes": ["read"]},
    ]
    for body in bad:
        response = await api.post("/api/v1/keys", json=body)
        assert response.status_code == 422, (body, response.text)


async def test_a_key_limited_to_sessions_reads_only_their_events(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    key = await key_for(api, scopes=["read"], sessions=["default"])
    await emit(server, "default", 1, session="other")
    await emit(server, "default", 2, session="default")
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10) as client:
        mine = await client.get("/api/v1/events", params={"limit": 1000})
        asked = await client.get("/api/v1/events", params={"session": "other"})
    everything = (await api.get("/api/v1/events", params={"limit": 1000})).json()["data"]
    assert {event["session"] for event in everything} >= {"default", "other"}
    assert mine.status_code == 200
    assert {event["session"] for event in mine.json()["data"]} == {"default"}
    assert asked.status_code == 403


async def test_a_key_limited_to_sessions_lists_and_reads_only_theirs(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    created = await api.post("/api/v1/sessions", json={"name": "other", "start": False})
    assert created.status_code == 201, created.text
    sent = await api.post(
        "/api/v1/sessions/default/messages", json={"to": "5511999999999", "text": "mine"}
    )
    message_id = sent.json()["id"]
    mine = await key_for(api, scopes=["read"], sessions=["default"])
    theirs = await key_for(api, scopes=["read"], sessions=["other"])
    assert [s["name"] for s in (await answer_json(server, mine, "/api/v1/sessions"))] == ["default"]
    assert [s["name"] for s in (await answer_json(server, theirs, "/api/v1/sessions"))] == ["other"]
    path = f"/api/v1/messages/{message_id}"
    assert (await answer_json(server, mine, path))["id"] == message_id
    assert (await answer_json(server, theirs, path))["error"] == "message_not_found"


async def answer_json(server: RunningServer, key: str, path: str) -> Any:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10) as client:
        return (await client.get(path)).json()
