"""Sends are the hottest path: a successful one is in the message log (with its actor), not in
the audit log; a refused one (401, 403) is audited, whichever path answered it (the hot path
before ASGI, the fast lane, or the route)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.audit.support import BAD_KEY, audit_log, bearer, brief, new_key
from tests.conftest import AUTH, RunningServer, make_settings, serve
from zapgate.http.audit import SENDS
from zapgate.services import build_services

NUMBER = "5511999999999"
V1_SEND = "/api/v1/sessions/default/messages"


@pytest.fixture(params=[True, False], ids=["fast", "framework"])
async def sending(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A server with the send hot path and fast lane, then one where the routes answer."""
    async with serve(build_services(make_settings(tmp_path)), fast_lane=request.param) as running:
        yield running


async def test_successful_sends_are_not_audited_refused_ones_are(sending: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=sending.url, headers=AUTH) as api:
        reader_id, reader = await new_key(api, "read")
        sends = [
            await api.post(V1_SEND, json={"to": NUMBER, "text": "hot"}),
            await api.post("/whatsapp/send", json={"number": NUMBER, "message": "legacy"}),
            await api.post(
                V1_SEND, json={"to": NUMBER, "text": "keyed"}, headers={"Idempotency-Key": "k1"}
            ),
        ]
        assert [send.status_code for send in sends] == [202, 200, 202]
        async with (
            httpx.AsyncClient(base_url=sending.url, headers=bearer(reader)) as read_only,
            httpx.AsyncClient(base_url=sending.url, headers=BAD_KEY) as bad,
        ):
            forbidden = await read_only.post(V1_SEND, json={"to": NUMBER, "text": "no"})
            unknown = await bad.post("/whatsapp/send", json={"number": NUMBER, "message": "no"})
        assert (forbidden.status_code, unknown.status_code) == (403, 401)
        entries = await audit_log(api)
    if sending.hot is not None:
        assert sending.hot.served >= 2, "the hot path answered the plain sends"
    assert brief(entries) == [
        (None, "POST /whatsapp/send", "whatsapp", "refused", 401),
        (reader_id, "POST /api/v1/sessions/{session}/messages", "sessions/default", "refused", 403),
        (entries[-1]["actor"], "POST /api/v1/keys", f"keys/{reader_id}", "ok", 201),
    ]
    reason = "this key lacks the 'send' scope"
    assert entries[1]["detail"] == {"error": "forbidden", "reason": reason}


async def test_the_send_routes_the_fast_paths_name_are_the_apis(api: httpx.AsyncClient) -> None:
    paths = set((await api.get("/openapi.json")).json()["paths"])
    assert paths >= SENDS, "a renamed send route would be audited on every success"
