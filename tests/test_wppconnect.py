"""The WPPConnect engine end to end: the real library in real Chromium, through the REST API."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY, RunningServer, make_settings, require_service
from tests.contract.drivers import FAKE_PAGE, WppConnectDriver, pdf, png, sha256
from tests.support.events import EventWatcher, message_status, status_is
from tests.support.js_client import JsSocketClient, ensure_node_harness
from tests.support.procs import chromium_under
from tests.support.sink import RecordingSink, is_status
from zapgate.config import Settings
from zapgate.engines.base import (
    InboundMessage,
    Media,
    OutboundMessage,
    SessionConfig,
    SessionStatus,
)
from zapgate.engines.wppconnect.engine import WppConnectEngine
from zapgate.engines.wppconnect.runtime import WppRuntime

pytestmark = pytest.mark.chromium
PEER = "5511988887777"


@pytest.fixture(autouse=True)
def wppconnect_runtime() -> None:
    require_service(WppRuntime().missing())


@pytest.fixture
def server_settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        wppconnect_fake_page=FAKE_PAGE,
        session_restart_base_seconds=0.2,
        wppconnect_start_timeout_seconds=30,
    )


def engine_of(server: RunningServer, session: str) -> WppConnectEngine:
    runner = server.services.sessions.runner("default", session)
    assert runner is not None
    engine = runner.engine
    assert isinstance(engine, WppConnectEngine)
    return engine


def bridge_restarts(server: RunningServer, reason: str) -> float:
    """``zapgate_engine_bridge_restarts_total`` of the wppconnect engine for ``reason``."""
    metrics = server.services.metrics
    assert metrics is not None
    labels = {"engine": "wppconnect", "reason": reason}
    return metrics.registry.get_sample_value("zapgate_engine_bridge_restarts_total", labels) or 0.0


async def paired(server: RunningServer, api: httpx.AsyncClient, name: str) -> WppConnectEngine:
    async with EventWatcher(server.services.bus) as watcher:
        created = await api.post("/api/v1/sessions", json={"name": name, "engine": "wppconnect"})
        assert created.status_code == 201, created.text
        await watcher.wait_for(lambda e: e.type == "session.qr" and e.session == name, 30)
        qr = await api.get(f"/api/v1/sessions/{name}/qr")
        assert qr.status_code == 200, qr.text
        assert qr.json()["image"].startswith("data:image/png;base64,")
        await engine_of(server, name).fake("scan")
        await watcher.wait_for(status_is(name, "WORKING"), 30)
    await engine_of(server, name).fake("autoAck", True)
    return engine_of(server, name)


async def test_qr_scan_send_acks_and_inbound_everywhere(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    require_service(ensure_node_harness())
    engine = await paired(server, api, "phone")
    me = (await api.get("/api/v1/sessions/phone/me")).json()
    assert me["id"]
    async with EventWatcher(server.services.bus) as watcher:
        sent = await api.post(
            "/api/v1/sessions/phone/messages", json={"to": "5511999999999", "text": "Olá, Chromium"}
        )
        assert sent.status_code == 202
        message_id = sent.json()["id"]
        for status in ("sent", "delivered", "read"):
            await watcher.wait_for(message_status(message_id, status), 15)
    page_sent = await engine.fake("sent")
    assert [(m["to"], m["body"]) for m in page_sent] == [("5511999999999@c.us", "Olá, Chromium")]

    async with JsSocketClient(
        server.url, auth={"token": ADMIN_KEY}, events=["message", "event"]
    ) as client:
        await client.wait_for(lambda line: line["kind"] == "connect")
        async with EventWatcher(server.services.bus) as watcher:
            await engine.fake("receive", {"from": "5511988887777@c.us", "body": "Oi do navegador"})
            received = await watcher.wait_for(lambda e: e.type == "message.received", 15)
        line = await client.wait_for(lambda x: x["kind"] == "event" and x["name"] == "message")
    assert line["args"][0]["text"] == "Oi do navegador"
    assert line["args"][0]["from"] == "5511988887777"
    history = (await api.get("/api/v1/sessions/phone/messages", params={"direction": "in"})).json()
    assert [m["text"] for m in history["data"]] == ["Oi do navegador"]
    log = (await api.get("/api/v1/events", params={"after": received.seq - 1, "limit": 1})).json()
    assert log["data"][0]["payload"]["text"] == "Oi do navegador"
    await api.delete("/api/v1/sessions/phone")
    assert chromium_under(server.services.settings.data_dir) == []


async def test_killing_the_bridge_restarts_the_session_and_leaves_no_chromium(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    engine = await paired(server, api, "victim")
    data_dir = server.services.settings.data_dir
    old_browser = engine.browser_pid
    assert old_browser is not None
    assert chromium_under(data_dir), "Chromium should be running for the session"
    bridge = engine._bridge
    assert bridge is not None
    assert bridge.pid is not None
    async with EventWatcher(server.services.bus) as watcher:
        os.kill(bridge.pid, signal.SIGKILL)
        down = await watcher.wait_for(
            lambda e: (
                e.session == "victim"
                and e.type == "session.status"
                and e.payload["status"] in {"FAILED", "DISCONNECTED"}
            ),
            15,
        )
        assert "bridge exited" in down.payload["reason"]
        # another session keeps working meanwhile
        other = await api.post(
            "/api/v1/sessions/default/messages", json={"to": "5511999999999", "text": "still here"}
        )
        await watcher.wait_for(message_status(other.json()["id"], "read"), 10)
        # the session comes back by itself (a login Chromium had not flushed needs a new scan)
        await watcher.wait_for(
            lambda e: (
                e.session == "victim"
                and (status_is("victim", "WORKING")(e) or e.type == "session.qr")
            ),
            30,
        )
        if server.services.sessions.qr_waiting("default", "victim"):
            await engine_of(server, "victim").fake("scan")
        await watcher.wait_for(status_is("victim", "WORKING"), 30)
    assert not _alive(old_browser), "the killed bridge's Chromium is still running"
    new_engine = engine_of(server, "victim")
    assert new_engine is not engine
    assert bridge_restarts(server, "exited") == 1
    assert bridge_restarts(server, "pairing") == 0
    await api.post("/api/v1/sessions/victim/stop")
    assert chromium_under(data_dir) == []


@pytest.fixture
def offline_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, session_restart_base_seconds=60)


async def test_offline_start_fails_fast_with_the_reason_and_no_orphans(
    tmp_path: Path,
) -> None:
    from tests.conftest import serve
    from zapgate.services import build_services

    settings = make_settings(tmp_path, session_restart_base_seconds=60)
    async with serve(build_services(settings)) as server:
        async with (
            httpx.AsyncClient(
                base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
            ) as api,
            EventWatcher(server.services.bus) as watcher,
        ):
            loop = asyncio.get_running_loop()
            started = loop.time()
            await api.post("/api/v1/sessions", json={"name": "offline", "engine": "wppconnect"})
            failed = await watcher.wait_for(status_is("offline", "FAILED"), 20)
            elapsed = loop.time() - started
            assert "ERR_NAME_NOT_RESOLVED" in failed.payload["reason"]
            assert elapsed < 15
            session = (await api.get("/api/v1/sessions/offline")).json()
            assert session["status"] == "FAILED"
            assert "ERR_NAME_NOT_RESOLVED" in session["reason"]
            assert chromium_under(tmp_path) == []
            await api.post("/api/v1/sessions/offline/stop")
        assert chromium_under(tmp_path) == []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1]
    except OSError:
        return False
    return state != "Z"


async def test_a_pairing_code_links_the_session_instead_of_the_qr(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    async with EventWatcher(server.services.bus) as watcher:
        created = await api.post("/api/v1/sessions", json={"name": "coded", "engine": "wppconnect"})
        assert created.status_code == 201, created.text
        await watcher.wait_for(lambda e: e.type == "session.qr" and e.session == "coded", 30)
        first_browser = engine_of(server, "coded").browser_pid
        asked = await api.post("/api/v1/sessions/coded/pair", json={"phone": "+55 11 98888-7777"})
        assert asked.status_code == 200, asked.text
        code = asked.json()["code"]
        engine = engine_of(server, "coded")
        page = await engine.fake("state")
        assert page["linkCode"] == code, "the code is the one WhatsApp Web shows"
        assert re.fullmatch(r"[0-9A-F]{4}-[0-9A-F]{4}", code)
        assert first_browser is not None
        assert not _alive(first_browser), "the old browser is gone"
        again = await api.post("/api/v1/sessions/coded/pair", json={"phone": "5511988887777"})
        assert again.status_code == 200, again.text
        assert (await engine.fake("state"))["linkCode"] == again.json()["code"]
        await engine.fake("scan")
        await watcher.wait_for(status_is("coded", "WORKING"), 30)
    assert bridge_restarts(server, "pairing") == 2, "each code started a new bridge"
    assert bridge_restarts(server, "exited") == 0, "a replaced bridge did not die on its own"
    sent = await api.post(
        "/api/v1/sessions/coded/messages", json={"to": "5511988887777", "text": "linked by code"}
    )
    assert sent.status_code == 202, sent.text
    await api.post("/api/v1/sessions/coded/stop")
    assert chromium_under(server.services.settings.data_dir) == []


async def test_a_png_sticker_goes_as_webp_and_a_file_too_large_comes_without_bytes() -> None:
    driver = WppConnectDriver()
    engine = driver.create()
    assert isinstance(engine, WppConnectEngine)
    sink = RecordingSink()
    await engine.start(SessionConfig("default", "stickers", driver.config), sink)
    try:
        await sink.wait_for(lambda r: r.kind == "qr", timeout=45)
        await driver.scan(engine)
        await sink.wait_for(is_status(SessionStatus.WORKING), timeout=30)
        sticker = OutboundMessage("msg_s", PEER, "sticker", None, Media(png(), "image/png"))
        receipt = await engine.send(sticker)
        got = await driver.delivered(engine, sticker, receipt.engine_message_id)
        assert (got.kind, got.mime_type) == ("sticker", "image/webp"), "sharp converted it"
        assert got.media_sha256 != sha256(png())
        claim = {"from": f"{PEER}@c.us", "type": "document", "caption": "huge", "size": 10**12}
        await engine.fake("receive", {**claim, "data": base64.b64encode(pdf()).decode()})
        report = await sink.wait_for(lambda r: r.kind == "message" and r.value.text == "huge")
        message: InboundMessage = report.value
        assert (message.kind, message.media) == ("document", None)
    finally:
        await engine.stop()
