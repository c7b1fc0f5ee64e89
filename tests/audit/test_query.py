"""GET /api/v1/audit: newest first, filters, cursor pages, an admin's only, one tenant's only."""

from __future__ import annotations

import asyncio

import httpx

from tests.audit.support import audit_log, bearer, brief, new_key
from tests.conftest import RunningServer
from tests.support.tenants import tenant_key
from zapgate.audit.model import Result
from zapgate.clock import to_iso


async def test_pages_follow_the_cursor_newest_first_under_filters(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    audit = server.services.audit
    made = []
    for n in range(7):
        actor = "key_even" if n % 2 == 0 else "key_odd"
        result = Result.OK if n % 3 else Result.FAILED
        made.append(await audit.record("default", actor, f"POST /x/{n % 2}", f"x/{n}", result))
        await asyncio.sleep(0.002)  # each in its own millisecond, for the time filters
    newest_first = [entry.id for entry in reversed(made)]

    pages, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/api/v1/audit", params=params)).json()
        pages.append([entry["id"] for entry in page["data"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [newest_first[:3], newest_first[3:6], newest_first[6:]]

    filters = (
        ({"actor": "key_even"}, lambda entry: entry.actor == "key_even"),
        ({"action": "POST /x/1"}, lambda entry: entry.action == "POST /x/1"),
        ({"result": "failed"}, lambda entry: entry.result is Result.FAILED),
    )
    for params, wanted in filters:
        found = [entry["id"] for entry in await audit_log(api, **params)]
        assert found == [entry.id for entry in reversed(made) if wanted(entry)], params
    both = await audit_log(api, actor="key_odd", result="ok")
    assert [e["target"] for e in both] == ["x/5", "x/1"]

    middle = made[3]
    later = await audit_log(api, since=to_iso(middle.at))
    assert [e["id"] for e in later] == [e.id for e in reversed(made) if e.at >= middle.at]
    earlier = await audit_log(api, until=to_iso(middle.at))
    assert [e["id"] for e in earlier] == [e.id for e in reversed(made) if e.at < middle.at]
    assert (len(later), len(earlier)) == (4, 3)


async def test_bad_queries_are_refused(api: httpx.AsyncClient) -> None:
    for params in (
        {"limit": 0},
        {"limit": 501},
        {"cursor": "not-a-cursor"},
        {"result": "maybe"},
        {"since": "yesterday"},
        {"actor": ""},
    ):
        response = await api.get("/api/v1/audit", params=params)
        assert response.status_code == 422, (params, response.text)


async def test_only_admins_read_the_log_and_only_their_tenants(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    _sender_id, sender = await new_key(api, "send")
    acme_key = await tenant_key(server.services, "acme", "acme-admin")
    async with (
        httpx.AsyncClient(base_url=server.url, headers=bearer(sender)) as sending,
        httpx.AsyncClient(base_url=server.url, headers=bearer(acme_key)) as acme,
    ):
        refused = await sending.get("/api/v1/audit")
        assert refused.status_code == 403
        made = await acme.post("/api/v1/sessions", json={"name": "acme-only", "start": False})
        assert made.status_code == 201
        reader_id, reader = await new_key(acme, "read")
        async with httpx.AsyncClient(base_url=server.url, headers=bearer(reader)) as acme_reader:
            assert (await acme_reader.delete("/api/v1/sessions/acme-only")).status_code == 403
        acme_sees = await audit_log(acme)
    ours = await audit_log(api)
    assert [e["target"] for e in acme_sees] == [
        "sessions/acme-only",
        f"keys/{reader_id}",
        "sessions/acme-only",
    ]
    assert "acme-only" not in str(ours), "another tenant's entries are never shown"
    assert brief(ours)[0][1:] == ("GET /api/v1/audit", "audit", "refused", 403)
    assert not {e["id"] for e in ours} & {e["id"] for e in acme_sees}


async def test_the_operator_acting_on_a_tenant_is_in_both_logs(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    acme_key = await tenant_key(server.services, "acme", "acme-admin")
    changed = await api.patch("/api/v1/tenants/acme", json={"limits": {"sessions": 3}})
    assert changed.status_code == 200, changed.text
    missing = await api.patch("/api/v1/tenants/nobody", json={"limits": {"sessions": 3}})
    assert missing.status_code == 404
    async with httpx.AsyncClient(base_url=server.url, headers=bearer(acme_key)) as acme:
        refused = await acme.patch("/api/v1/tenants/default", json={"limits": {"sessions": 1}})
        assert refused.status_code == 403
        acme_sees = await audit_log(acme)
    operator_sees = await audit_log(api)
    action = "PATCH /api/v1/tenants/{tenant}"
    assert [(e["action"], e["target"], e["result"]) for e in acme_sees] == [
        (action, "tenants/default", "refused"),
        (action, "tenants/acme", "ok"),
    ]
    assert [(e["action"], e["target"], e["result"]) for e in operator_sees] == [
        (action, "tenants/nobody", "failed"),
        (action, "tenants/acme", "ok"),
    ], "an attempt on another tenant is recorded in the attempting tenant's log alone"
    assert acme_sees[1]["actor"] == operator_sees[1]["actor"] != acme_sees[0]["actor"]
