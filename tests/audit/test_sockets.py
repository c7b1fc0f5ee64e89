"""Refused Socket.IO connections and subscriptions are audited like refused HTTP calls: a failed
authentication in the operator's log, a forbidden session in the caller's."""

from __future__ import annotations

import httpx
import pytest

from tests.audit.support import audit_log, brief
from tests.conftest import RunningServer
from tests.realtime.support import connected
from tests.realtime.test_input import ack_of
from tests.support.js_client import JsSocketClient


@pytest.mark.node
async def test_refused_sockets_are_audited(server: RunningServer, api: httpx.AsyncClient) -> None:
    async with JsSocketClient(server.url, auth={"token": "zg_nope"}, timeout_ms=30_000) as bad:
        assert (await bad.wait_for(connected, timeout=20))["kind"] == "connect_error"
    created = await api.post(
        "/api/v1/keys", json={"name": "one session", "scopes": ["read"], "sessions": ["s1"]}
    )
    key_id, token = created.json()["id"], created.json()["key"]
    asking = {"token": token, "sessions": ["s2"]}
    async with JsSocketClient(server.url, auth=asking, timeout_ms=30_000) as refused:
        assert (await refused.wait_for(connected, timeout=20))["kind"] == "connect_error"
    async with JsSocketClient(server.url, auth={"token": token}, timeout_ms=30_000) as client:
        assert (await client.wait_for(connected, timeout=20))["kind"] == "connect"
        assert (await ack_of(client, "subscribe", {"session": "s2"}))["error"] == "forbidden"
    entries = brief(await audit_log(api, result="refused"))
    assert (None, "CONNECT /socket.io", None, "refused", 401) in entries
    assert (key_id, "CONNECT /socket.io", None, "refused", 403) in entries
    assert (key_id, "SUBSCRIBE /socket.io", "sessions/s2", "refused", 403) in entries
