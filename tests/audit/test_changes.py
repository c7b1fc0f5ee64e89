"""Every change made through the API leaves an entry (who, what, on what, when, from where, how
it ended), and so does every refused attempt: a failed authentication or a forbidden call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.audit.support import BAD_KEY, audit_log, bearer, brief, new_key, own_key_id
from tests.conftest import RunningServer


async def test_each_change_leaves_an_entry_with_its_actor_target_and_result(
    api: httpx.AsyncClient,
) -> None:
    began = datetime.now(UTC) - timedelta(seconds=1)
    admin = await own_key_id(api)
    assert await audit_log(api) == [], "nothing was changed yet"
    assert (await api.post("/api/v1/sessions", json={"name": "kept", "start": False})).is_success
    assert (await api.patch("/api/v1/sessions/kept", json={"metadata": {"a": 1}})).is_success
    assert (await api.post("/api/v1/sessions/kept/start")).is_success
    hook = await api.post("/api/v1/webhooks", json={"url": "https://example.com/h"})
    webhook_id = hook.json()["id"]
    assert (await api.delete(f"/api/v1/webhooks/{webhook_id}")).status_code == 204
    key_id, _key = await new_key(api, "read")
    assert (await api.delete(f"/api/v1/keys/{key_id}")).status_code == 204
    taken = await api.post("/api/v1/sessions", json={"name": "kept", "start": False})
    assert taken.status_code == 409
    assert (await api.get("/api/v1/sessions/kept")).is_success, "reads are not changes"

    entries = await audit_log(api)
    assert brief(entries) == [
        (admin, "POST /api/v1/sessions", "sessions", "failed", 409),
        (admin, "DELETE /api/v1/keys/{key_id}", f"keys/{key_id}", "ok", 204),
        (admin, "POST /api/v1/keys", f"keys/{key_id}", "ok", 201),
        (admin, "DELETE /api/v1/webhooks/{webhook_id}", f"webhooks/{webhook_id}", "ok", 204),
        (admin, "POST /api/v1/webhooks", f"webhooks/{webhook_id}", "ok", 201),
        (admin, "POST /api/v1/sessions/{session}/start", "sessions/kept", "ok", 200),
        (admin, "PATCH /api/v1/sessions/{session}", "sessions/kept", "ok", 200),
        (admin, "POST /api/v1/sessions", "sessions/kept", "ok", 201),
    ]
    assert entries[0]["detail"] == {
        "error": "session_exists",
        "reason": "a session named 'kept' exists",
    }
    assert all(entry["detail"] is None for entry in entries[1:])
    assert {entry["address"] for entry in entries} == {"127.0.0.1"}
    times = [datetime.fromisoformat(entry["timestamp"]) for entry in entries]
    assert times == sorted(times, reverse=True)
    assert began <= times[-1] <= times[0] <= datetime.now(UTC)
    assert len({entry["id"] for entry in entries}) == len(entries)


async def test_failed_authentications_and_forbidden_attempts_are_recorded(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    reader_id, reader = await new_key(api, "read")
    async with (
        httpx.AsyncClient(base_url=server.url, headers=BAD_KEY) as bad,
        httpx.AsyncClient(base_url=server.url) as anonymous,
        httpx.AsyncClient(base_url=server.url, headers=bearer(reader)) as read_only,
    ):
        assert (await bad.get("/api/v1/sessions")).status_code == 401
        assert (await anonymous.delete("/api/v1/sessions/default")).status_code == 401
        assert (await read_only.post("/api/v1/sessions", json={"name": "x"})).status_code == 403
        assert (await read_only.get("/api/v1/keys")).status_code == 403
        assert (await read_only.get("/api/v1/sessions")).status_code == 200

    refused = await audit_log(api, result="refused")
    assert brief(refused) == [
        (reader_id, "GET /api/v1/keys", "keys", "refused", 403),
        (reader_id, "POST /api/v1/sessions", "sessions", "refused", 403),
        (None, "DELETE /api/v1/sessions/{session}", "sessions/default", "refused", 401),
        (None, "GET /api/v1/sessions", "sessions", "refused", 401),
    ]
    assert refused[0]["detail"] == {
        "error": "forbidden",
        "reason": "this key lacks the 'admin' scope",
    }
    assert refused[-1]["detail"] == {"error": "unauthorized", "reason": "invalid API key"}
    assert {entry["address"] for entry in refused} == {"127.0.0.1"}
    assert [e["action"] for e in await audit_log(api)] == [
        *(e["action"] for e in refused),
        "POST /api/v1/keys",
    ], "the allowed read is not recorded"


async def test_an_idempotent_replay_is_marked(api: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "create-once"}
    body = {"name": "once", "start": False}
    first = await api.post("/api/v1/sessions", json=body, headers=headers)
    again = await api.post("/api/v1/sessions", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    entries = await audit_log(api)
    assert [(e["target"], e["detail"]) for e in entries] == [
        ("sessions/once", {"replayed": True}),
        ("sessions/once", None),
    ]
