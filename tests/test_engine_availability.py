"""Engines that cannot run here: ``auto`` falls back and says why; explicit ones are refused."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningServer, make_settings
from tests.support.events import EventWatcher
from zapgate.config import Settings


@pytest.fixture
def server_settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        wppconnect_chromium=str(tmp_path / "no-chromium-here"),
        wppconnect_node="no-such-node-binary",
    )


async def test_explicit_wppconnect_names_what_is_missing(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    response = await api.post("/api/v1/sessions", json={"name": "w", "engine": "wppconnect"})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "engine_unavailable"
    assert "chromium" in body["detail"]
    assert "node" in body["detail"]
    assert "apt-get install -y chromium" in body["detail"]
    assert (await api.get("/api/v1/sessions/w")).status_code == 404


async def test_auto_runs_the_simulator_and_says_why(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    async with EventWatcher(server.services.bus) as watcher:
        response = await api.post("/api/v1/sessions", json={"name": "a", "engine": "auto"})
        assert response.status_code == 201, response.text
        working = await watcher.wait_for(
            lambda e: e.session == "a" and e.payload.get("status") == "WORKING"
        )
    assert "running the simulator" in working.payload["reason"]
    assert "chromium" in working.payload["reason"]
    session = (await api.get("/api/v1/sessions/a")).json()
    assert session["engine"] == "auto"
    assert "running the simulator" in session["reason"]
    sent = await api.post("/api/v1/sessions/a/messages", json={"to": "5511999999999", "text": "x"})
    assert sent.status_code == 202
    scan = await api.post("/api/v1/sessions/a/simulate/scan")
    assert scan.status_code == 409, "the fallback simulator is simulated, but has no QR now"
