"""The sessions API: lifecycle, QR, pairing, and clear errors for bad requests."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.conftest import RunningServer
from tests.support.engines import InstantEngine
from tests.support.events import EventWatcher, status_is
from zapgate.engines.registry import EngineSpec

MANUAL = {"pairing": "manual"}


async def create(api: httpx.AsyncClient, name: str, **body: object) -> httpx.Response:
    return await api.post("/api/v1/sessions", json={"name": name, **body})


async def test_create_list_get_patch_delete(server: RunningServer, api: httpx.AsyncClient) -> None:
    async with EventWatcher(server.services.bus) as watcher:
        response = await create(api, "sales", config={"seed": 7}, metadata={"team": "vendas"})
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["engine"] == "simulator"
        assert created["metadata"] == {"team": "vendas"}
        await watcher.wait_for(status_is("sales", "WORKING"))
    names = [s["name"] for s in (await api.get("/api/v1/sessions")).json()]
    assert names == ["default", "sales"]
    got = (await api.get("/api/v1/sessions/sales")).json()
    assert got["status"] == "WORKING"
    assert got["health"] == "ok"
    assert got["me"]["id"] == "5511000000000"
    patched = await api.patch("/api/v1/sessions/sales", json={"metadata": {"team": "suporte"}})
    assert patched.json()["metadata"] == {"team": "suporte"}
    assert patched.json()["config"] == {"seed": 7}
    assert (await api.delete("/api/v1/sessions/sales")).status_code == 204
    assert (await api.get("/api/v1/sessions/sales")).status_code == 404
    assert server.services.sessions.runner("default", "sales") is None


async def test_stop_start_restart_logout(server: RunningServer, api: httpx.AsyncClient) -> None:
    async with EventWatcher(server.services.bus) as watcher:
        await create(api, "s1")
        await watcher.wait_for(status_is("s1", "WORKING"))
        stopped = await api.post("/api/v1/sessions/s1/stop")
        assert stopped.json()["status"] == "STOPPED"
        again = await api.post("/api/v1/sessions/s1/stop")
        assert again.status_code == 409
        assert again.json()["error"] == "session_not_running"
        assert (await api.post("/api/v1/sessions/s1/start")).status_code == 200
        await watcher.wait_for(status_is("s1", "WORKING"))
        twice = await api.post("/api/v1/sessions/s1/start")
        assert twice.status_code == 409
        assert twice.json()["error"] == "session_already_started"
        assert (await api.post("/api/v1/sessions/s1/restart")).status_code == 200
        out = await api.post("/api/v1/sessions/s1/logout")
        assert out.json()["status"] == "STOPPED"
        assert out.json()["me"] is None
    # a restart after logout needs a new pairing: a QR is shown again
    async with EventWatcher(server.services.bus) as watcher:
        await api.patch("/api/v1/sessions/s1", json={"config": MANUAL})
        await api.post("/api/v1/sessions/s1/start")
        await watcher.wait_for(status_is("s1", "SCAN_QR_CODE"))
    assert (await api.get("/api/v1/sessions/s1/qr")).status_code == 200


async def test_qr_as_json_png_and_event_then_manual_scan(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    async with EventWatcher(server.services.bus) as watcher:
        await create(api, "phone", config=MANUAL)
        qr_event = await watcher.wait_for(lambda e: e.type == "session.qr" and e.session == "phone")
        as_json = (await api.get("/api/v1/sessions/phone/qr")).json()
        assert as_json["qr"] == qr_event.payload["qr"]
        assert as_json["image"].startswith("data:image/png;base64,")
        png = base64.b64decode(as_json["image"].split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        as_png = await api.get("/api/v1/sessions/phone/qr", headers={"Accept": "image/png"})
        assert as_png.headers["content-type"] == "image/png"
        assert as_png.content[:8] == b"\x89PNG\r\n\x1a\n"
        me_before = await api.get("/api/v1/sessions/phone/me")
        assert me_before.status_code == 409
        assert (await api.post("/api/v1/sessions/phone/simulate/scan")).status_code == 204
        await watcher.wait_for(status_is("phone", "WORKING"))
    assert (await api.get("/api/v1/sessions/phone/me")).json()["id"] == "5511000000000"
    no_qr = await api.get("/api/v1/sessions/phone/qr")
    assert no_qr.status_code == 409
    assert no_qr.json()["error"] == "no_qr_code"
    assert (await api.post("/api/v1/sessions/phone/simulate/scan")).status_code == 409


async def test_pairing_code(server: RunningServer, api: httpx.AsyncClient) -> None:
    async with EventWatcher(server.services.bus) as watcher:
        await create(api, "bycode", config={**MANUAL, "pairing_seconds": 0})
        await watcher.wait_for(status_is("bycode", "SCAN_QR_CODE"))
        response = await api.post("/api/v1/sessions/bycode/pair", json={"phone": "5511999999999"})
        assert response.status_code == 200, response.text
        code = response.json()["code"]
        assert len(code) == 9
        assert code[4] == "-"
        await watcher.wait_for(status_is("bycode", "WORKING"))
    late = await api.post("/api/v1/sessions/bycode/pair", json={"phone": "5511999999999"})
    assert late.status_code == 409


async def test_pairing_on_an_engine_without_it(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    server.services.sessions.engines.register(
        "instant", EngineSpec(InstantEngine, InstantEngine.capabilities)
    )
    await create(api, "plain", engine="instant")
    response = await api.post("/api/v1/sessions/plain/pair", json={"phone": "5511999999999"})
    assert response.status_code == 422
    assert response.json()["error"] == "unsupported"
    scan = await api.post("/api/v1/sessions/plain/simulate/scan")
    assert scan.status_code == 422


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"name": "x", "engine": "telepathy"}, 422, "unsupported"),
        ({"name": "bad name"}, 422, "invalid_input"),
        ({"name": ""}, 422, "invalid_input"),
        ({"name": "x" * 65}, 422, "invalid_input"),
        ({"name": "x", "config": {"send_failure_rate": 2}}, 422, "invalid_input"),
        ({"name": "x", "config": {"nonsense": True}}, 422, "invalid_input"),
        ({"name": "x", "config": []}, 422, "invalid_input"),
        ({"name": "x", "start": "yes"}, 422, "invalid_input"),
        ({"name": "default"}, 409, "session_exists"),
        ({}, 422, "invalid_input"),
    ],
)
async def test_bad_session_requests(
    server: RunningServer, api: httpx.AsyncClient, body: dict[str, object], status: int, error: str
) -> None:
    response = await api.post("/api/v1/sessions", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    names = [s["name"] for s in (await api.get("/api/v1/sessions")).json()]
    assert names == ["default"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/sessions/ghost/start", None),
        ("POST", "/api/v1/sessions/ghost/stop", None),
        ("POST", "/api/v1/sessions/ghost/restart", None),
        ("POST", "/api/v1/sessions/ghost/logout", None),
        ("GET", "/api/v1/sessions/ghost/qr", None),
        ("GET", "/api/v1/sessions/ghost/me", None),
        ("PATCH", "/api/v1/sessions/ghost", {"metadata": {}}),
        ("DELETE", "/api/v1/sessions/ghost", None),
        ("POST", "/api/v1/sessions/ghost/pair", {"phone": "5511999999999"}),
    ],
)
async def test_unknown_session_is_404(
    api: httpx.AsyncClient, method: str, path: str, body: object
) -> None:
    response = await api.request(method, path, json=body)
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "session_not_found"


async def test_bad_patch_and_pair_bodies(api: httpx.AsyncClient) -> None:
    bad_config = await api.patch("/api/v1/sessions/default", json={"config": {"seed": "x"}})
    assert bad_config.status_code == 422
    unknown = await api.patch("/api/v1/sessions/default", json={"engine": "other"})
    assert unknown.status_code == 422
    bad_phone = await api.post("/api/v1/sessions/default/pair", json={"phone": "abc"})
    assert bad_phone.status_code == 422
    assert bad_phone.json()["error"] == "invalid_phone_number"


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "-x", "_x"])
async def test_names_that_could_be_folders_are_refused(api: httpx.AsyncClient, name: str) -> None:
    response = await api.post("/api/v1/sessions", json={"name": name, "engine": "simulator"})
    assert response.status_code == 422


async def test_concurrent_starts_make_one_engine(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    import asyncio

    await api.post("/api/v1/sessions", json={"name": "twice", "start": False})
    answers = await asyncio.gather(
        *(api.post("/api/v1/sessions/twice/start") for _ in range(5)),
        *(api.post("/api/v1/sessions/twice/restart") for _ in range(5)),
    )
    assert all(a.status_code in {200, 409} for a in answers)
    engines = [
        task
        for task in asyncio.all_tasks()
        if task.get_name() == "session:twice" and not task.done()
    ]
    assert len(engines) == 1, "more than one supervisor runs the same session"


async def test_unknown_names_leave_no_lock_behind(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    import gc

    for index in range(200):
        for action in ("start", "stop", "restart", "logout"):
            answer = await api.post(f"/api/v1/sessions/ghost-{index}/{action}")
            assert answer.status_code == 404
        assert (await api.delete(f"/api/v1/sessions/ghost-{index}")).status_code == 404
    gc.collect()
    assert len(server.services.sessions._locks) == 0
