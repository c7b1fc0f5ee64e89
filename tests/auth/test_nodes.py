"""Revocations and suspensions reach every node sharing the database, within a second.

Two nodes (each its own services, verification cache, sockets and streams; nothing shared but
the database) serve the same store, SQLite file or PostgreSQL. What node A does, node B learns
only from the database (``auth.invalidations``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import AUTH, RunningServer, make_settings, serve
from tests.realtime.support import connected
from tests.support.js_client import JsSocketClient
from zapgate.services import build_services

WITHIN = 1.0
"""The issue's bound for "at once" on another node (it looks every 0.25 s)."""


@pytest.fixture
async def nodes(
    database: AsyncEngine, tmp_path: Path
) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    a = build_services(make_settings(tmp_path / "a"), database)
    b = build_services(make_settings(tmp_path / "b"), database)
    async with serve(a) as node_a, serve(b) as node_b:
        yield node_a, node_b


async def refused_within(client: httpx.AsyncClient, seconds: float) -> float:
    """How long until ``client``'s key is refused on its node (polled without a pause)."""
    start = time.monotonic()
    while (await client.get("/api/v1/sessions")).status_code == 200:
        assert time.monotonic() - start < seconds * 5, "never refused"
    return time.monotonic() - start


@pytest.mark.node
@pytest.mark.parametrize("change", ["revoke", "suspend"])
async def test_what_one_node_does_another_enforces_within_a_second(
    nodes: tuple[RunningServer, RunningServer], change: str
) -> None:
    node_a, node_b = nodes
    async with httpx.AsyncClient(base_url=node_a.url, headers=AUTH, timeout=10) as operator:
        assert (await operator.post("/api/v1/tenants", json={"id": "acme"})).status_code == 201
        issued = await operator.post(
            "/api/v1/tenants/acme/keys", json={"name": "app", "scopes": ["read"]}
        )
        key_id, key = issued.json()["id"], issued.json()["key"]
        headers = {"Authorization": f"Bearer {key}"}
        async with (
            httpx.AsyncClient(base_url=node_b.url, headers=headers, timeout=10) as on_b,
            JsSocketClient(node_b.url, auth={"token": key}) as socket,
        ):
            assert (await on_b.get("/api/v1/sessions")).status_code == 200  # cached on B now
            assert (await socket.wait_for(connected, timeout=20))["kind"] == "connect"
            if change == "revoke":
                done = await operator.delete(f"/api/v1/tenants/acme/keys/{key_id}")
                assert done.status_code == 204, done.text
            else:
                done = await operator.post("/api/v1/tenants/acme/suspend")
                assert done.status_code == 200, done.text
            elapsed = await refused_within(on_b, WITHIN)
            assert elapsed < WITHIN, f"node B refused the key after {elapsed:.2f} s"
            line = await socket.wait_for(lambda line: line["kind"] == "disconnect", timeout=5)
            assert line["reason"] == "io server disconnect"
    assert [p for p in node_b.services.realtime.principals() if p.tenant == "acme"] == []
