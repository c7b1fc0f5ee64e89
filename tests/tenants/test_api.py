"""The operator's tenants API: create with limits, list, suspend (refused at once on every
channel, sessions stopped), resume (as it was), delete (every row gone, in chunks) and keys for a
tenant; tenant admins cannot use any of it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import AUTH, RunningServer, serve
from tests.realtime.support import connected, until
from tests.support.js_client import JsSocketClient
from zapgate.auth.service import OPERATOR_SCOPES
from zapgate.config import Settings
from zapgate.db.tables import tenant_owned, tenants
from zapgate.events import stream as stream_module
from zapgate.services import build_services
from zapgate.sessions.service import TENANT_SUSPENDED
from zapgate.tenants import service as tenant_service

AT_ONCE = 10.0
"""A generous bound for what happens at once on a loaded machine (the periodic checks it
replaces are made longer than this in these tests)."""


async def eventually(check: Callable[[], Awaitable[Any]], seconds: float = 15) -> Any:
    async with asyncio.timeout(seconds):
        while not (result := await check()):
            await asyncio.sleep(0.05)
    return result


async def tenant_with_key(api: httpx.AsyncClient, tenant: str, **body: Any) -> httpx.AsyncClient:
    created = await api.post("/api/v1/tenants", json={"id": tenant, **body})
    assert created.status_code == 201, created.text
    key = await api.post(
        f"/api/v1/tenants/{tenant}/keys", json={"name": "app", "scopes": ["admin"]}
    )
    assert key.status_code == 201, key.text
    return httpx.AsyncClient(
        base_url=str(api.base_url),
        headers={"Authorization": f"Bearer {key.json()['key']}"},
        timeout=30,
    )


async def working_session(client: httpx.AsyncClient, name: str) -> None:
    assert (await client.post("/api/v1/sessions", json={"name": name})).status_code == 201

    async def working() -> bool:
        return bool((await client.get(f"/api/v1/sessions/{name}")).json()["status"] == "WORKING")

    await eventually(working)


async def test_the_operator_creates_lists_and_shapes_tenants(api: httpx.AsyncClient) -> None:
    created = await api.post(
        "/api/v1/tenants", json={"id": "acme", "name": "ACME Ltda", "limits": {"sessions": 2}}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["id"], body["name"], body["status"]) == ("acme", "ACME Ltda", "active")
    assert (body["limits"]["sessions"], body["overrides"]) == (2, {"sessions": 2})
    again = await api.post("/api/v1/tenants", json={"id": "acme"})
    assert (again.status_code, again.json()["error"]) == (409, "tenant_exists")
    for tenant in ("bravo", "charlie"):
        assert (await api.post("/api/v1/tenants", json={"id": tenant})).status_code == 201
    first = (await api.get("/api/v1/tenants", params={"limit": 2})).json()
    assert [t["id"] for t in first["data"]] == ["acme", "bravo"]
    rest = (await api.get("/api/v1/tenants", params={"cursor": first["next_cursor"]})).json()
    assert [t["id"] for t in rest["data"]] == ["charlie", "default"]
    assert rest["next_cursor"] is None
    changed = await api.patch("/api/v1/tenants/acme", json={"limits": {"sessions": None}})
    assert changed.json()["overrides"] == {}, "null puts a limit back to its default"
    assert (await api.get("/api/v1/tenants/nobody")).json()["error"] == "tenant_not_found"
    unknown = await api.post("/api/v1/tenants/nobody/keys", json={"name": "x", "scopes": ["read"]})
    assert unknown.status_code == 404, "a key never creates its tenant"
    async with await tenant_with_key(api, "delta") as delta:
        assert (await delta.get("/api/v1/sessions")).json() == []
        refused = await delta.get("/api/v1/tenants")
        assert refused.status_code == 403
        assert "operator" in refused.json()["detail"]
        listed = await api.get("/api/v1/tenants/delta/keys")
        assert [key["name"] for key in listed.json()] == ["app"]


async def test_the_operators_own_tenant_cannot_be_suspended_or_deleted(
    api: httpx.AsyncClient,
) -> None:
    assert (await api.post("/api/v1/tenants/default/suspend")).status_code == 409
    kept = await api.delete("/api/v1/tenants/default", params={"confirm": "default"})
    assert kept.status_code == 409
    assert (await api.get("/api/v1/sessions")).status_code == 200


@pytest.mark.node
async def test_suspending_refuses_every_channel_at_once_and_stops_sessions(
    server: RunningServer, api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream_module, "GONE_CHECK_SECONDS", 60.0)  # only the suspension ends it
    async with await tenant_with_key(api, "acme") as acme:
        await working_session(acme, "shop")
        key = acme.headers["Authorization"].removeprefix("Bearer ")
        async with (
            JsSocketClient(server.url, auth={"token": key}) as socket,
            acme.stream(
                "GET", "/api/v1/events", params={"after": 10**9},
                headers={"Accept": "text/event-stream"},
            ) as stream,
        ):  # fmt: skip
            assert (await socket.wait_for(connected, timeout=20))["kind"] == "connect"
            lines = stream.aiter_lines()
            assert (await anext(lines)).startswith("retry:")
            long_poll = asyncio.create_task(
                acme.get("/api/v1/events", params={"after": 10**9, "wait": 30})
            )
            streams = server.services.limits.streams
            key_id = server.services.auth.cached(key).key_id  # type: ignore[union-attr]
            await until(lambda: streams.open(key_id) == 3)  # socket, SSE stream, long-poll
            suspended = await api.post("/api/v1/tenants/acme/suspend")
            assert suspended.status_code == 200, suspended.text
            assert suspended.json()["status"] == "suspended"
            assert suspended.json()["suspended_at"] is not None
            refused = await acme.get("/api/v1/sessions")
            assert (refused.status_code, refused.json()["error"]) == (403, "tenant_suspended")
            sent = await acme.post(
                "/api/v1/sessions/shop/messages", json={"to": "5511999999999", "text": "x"}
            )
            assert sent.status_code == 403, "the send hot path refuses it too"
            line = await socket.wait_for(lambda line: line["kind"] == "disconnect", timeout=5)
            assert line["reason"] == "io server disconnect"
            async with asyncio.timeout(AT_ONCE):
                rest = [line async for line in lines]
                polled = await long_poll
            assert not [line for line in rest if line and not line.startswith(":")]
            assert (polled.status_code, polled.json()["data"]) == (200, []), "ended, empty"
        session = await server.services.sessions.get("acme", "shop")
        assert (session.status.value, session.status_reason) == (
            "STOPPED",
            TENANT_SUSPENDED,
        )
        assert server.services.sessions.runner("acme", "shop") is None
        resumed = await api.post("/api/v1/tenants/acme/resume")
        assert resumed.json()["status"] == "active"
        assert (await acme.get("/api/v1/sessions")).status_code == 200, "the same key works again"

        async def working_again() -> bool:
            found = await acme.get("/api/v1/sessions/shop")
            return bool(found.json()["status"] == "WORKING")

        await eventually(working_again)


async def rows_of(server: RunningServer, tenant: str) -> dict[str, int]:
    counts = {}
    async with server.services.database.connect() as connection:
        for table in [*tenant_owned(), tenants]:
            column = table.c.tenant_id if "tenant_id" in table.c else table.c.id
            statement = sa.select(sa.func.count()).select_from(table).where(column == tenant)
            counts[table.name] = int(await connection.scalar(statement) or 0)
    return {name: count for name, count in counts.items() if count}


async def test_deleting_a_tenant_removes_every_row_in_chunks(
    server: RunningServer, api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tenant_service, "DELETE_CHUNK", 3)  # several chunks per table
    async with await tenant_with_key(api, "acme") as acme:
        await working_session(acme, "shop")
        for n in range(7):
            sent = await acme.post(
                "/api/v1/sessions/shop/messages", json={"to": "5511999999999", "text": f"m{n}"}
            )
            assert sent.status_code == 202, sent.text
        hook = await acme.post("/api/v1/webhooks", json={"url": "https://example.com/hook"})
        assert hook.status_code == 201, hook.text
        assert {"messages", "events", "sessions", "api_keys", "tenants"} <= set(
            await rows_of(server, "acme")
        )
        unconfirmed = await api.delete("/api/v1/tenants/acme")
        assert unconfirmed.status_code == 422, "confirm is required"
        wrong = await api.delete("/api/v1/tenants/acme", params={"confirm": "acne"})
        assert (wrong.status_code, wrong.json()["error"]) == (409, "not_confirmed")
        assert (await acme.get("/api/v1/sessions")).status_code == 200, "nothing changed"
        deleting = await api.delete("/api/v1/tenants/acme", params={"confirm": "acme"})
        assert deleting.status_code == 202, deleting.text
        assert deleting.json()["status"] == "deleting"
        assert (await acme.get("/api/v1/sessions")).status_code == 403, "refused at once"
        await server.services.tenants.wait_deleted("acme")
        assert await rows_of(server, "acme") == {}
        assert (await api.get("/api/v1/tenants/acme")).status_code == 404
        again = await api.post("/api/v1/tenants", json={"id": "acme"})
        assert again.status_code == 201, "the id can be used again"
        assert (await acme.get("/api/v1/sessions")).status_code == 401, "the old key is gone"


async def test_a_suspension_and_a_deletion_outlive_a_restart(
    server_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A suspended tenant's sessions do not start at boot; a deletion a stop interrupted is
    finished by the next start."""
    interrupted = monkeypatch.context()
    with interrupted as patch:
        patch.setattr(tenant_service.TenantService, "_delete_later", lambda self, tenant: None)
        async with serve(build_services(server_settings)) as first:
            async with httpx.AsyncClient(base_url=first.url, headers=AUTH, timeout=30) as api:
                async with await tenant_with_key(api, "acme") as acme:
                    await working_session(acme, "shop")
                async with await tenant_with_key(api, "bravo") as bravo:
                    await working_session(bravo, "desk")
                assert (await api.post("/api/v1/tenants/acme/suspend")).status_code == 200
                gone = await api.delete("/api/v1/tenants/bravo", params={"confirm": "bravo"})
                assert gone.status_code == 202
            assert await rows_of(first, "bravo"), "the deletion was interrupted before it began"
    async with serve(build_services(server_settings)) as second:
        assert second.services.sessions.runner("acme", "shop") is None, "suspended: not booted"
        assert second.services.sessions.runner("bravo", "desk") is None
        await second.services.tenants.wait_deleted("bravo")
        assert await rows_of(second, "bravo") == {}
        async with httpx.AsyncClient(base_url=second.url, headers=AUTH, timeout=30) as api:
            assert (await api.post("/api/v1/tenants/acme/resume")).status_code == 200
        assert second.services.sessions.runner("acme", "shop") is not None


async def test_a_deletion_left_behind_never_touches_a_tenant_made_again_with_its_id(
    server: RunningServer, api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node that resumes a deletion another node finished (and whose id was reused since)
    stops: every chunk checks it is still the tenant whose deletion began."""
    tenants = server.services.tenants
    monkeypatch.setattr(tenant_service.TenantService, "_delete_later", lambda self, tenant: None)
    async with await tenant_with_key(api, "acme"):
        pass
    assert (await api.delete("/api/v1/tenants/acme", params={"confirm": "acme"})).status_code == 202
    assert await tenants._delete_all("acme"), "the first node deletes it"
    async with await tenant_with_key(api, "acme") as again:
        await working_session(again, "shop")
        before = await rows_of(server, "acme")
        assert not await tenants._delete_all("acme"), "a late node finds another tenant"
        assert await rows_of(server, "acme") == before
        assert (await again.get("/api/v1/sessions")).status_code == 200


async def test_an_admin_of_the_operators_tenant_cannot_lock_the_operator_out(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    """Another admin of ``default`` neither revokes an operator's key nor reads the failed
    authentications of unknown callers (kept in the operator's log)."""
    spare = await server.services.auth.create_key("default", "spare operator", OPERATOR_SCOPES)
    spare_id = next(
        k["id"] for k in (await api.get("/api/v1/keys")).json() if k["name"] == "spare operator"
    )
    made = await api.post("/api/v1/keys", json={"name": "deputy", "scopes": ["admin"]})
    deputy_headers = {"Authorization": f"Bearer {made.json()['key']}"}
    async with httpx.AsyncClient(base_url=server.url, headers=deputy_headers) as deputy:
        refused = await deputy.delete(f"/api/v1/keys/{spare_id}")
        assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
        bad = await deputy.get("/api/v1/sessions", headers={"Authorization": "Bearer zg_nope"})
        assert bad.status_code == 401
        seen = (await deputy.get("/api/v1/audit", params={"result": "refused"})).json()["data"]
        assert all(entry["actor"] is not None for entry in seen), seen
    operator_view = (await api.get("/api/v1/audit", params={"result": "refused"})).json()["data"]
    assert any(entry["actor"] is None for entry in operator_view), "the operator sees them"
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {spare}"}
    ) as still:
        assert (await still.get("/api/v1/tenants")).status_code == 200
    assert (await api.delete(f"/api/v1/keys/{spare_id}")).status_code == 204, "the operator may"
