"""Socket.IO with the real npm socket.io-client v4 (Node)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ADMIN_KEY, RunningServer
from tests.support.js_client import JsSocketClient, ensure_node_harness
from tests.support.tenants import tenant_key
from tests.test_messages_api import wait_working

pytestmark = pytest.mark.node


@pytest.fixture(autouse=True)
def node_harness() -> Iterator[None]:
    from tests.conftest import require_service

    require_service(ensure_node_harness())
    return


def is_event(name: str):  # type: ignore[no-untyped-def]
    return lambda line: line["kind"] == "event" and line["name"] == name


async def inject(api: httpx.AsyncClient, text: str, session: str = "default") -> dict[str, str]:
    response = await api.post(
        f"/api/v1/sessions/{session}/simulate/inbound",
        json={"from": "5511988887777", "text": text},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_js_client_receives_the_original_message_event(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    async with JsSocketClient(
        server.url, auth={"token": ADMIN_KEY}, events=["message", "event"]
    ) as client:
        await client.wait_for(lambda line: line["kind"] == "connect")
        stored = await inject(api, "Olá do Node")
        line = await client.wait_for(is_event("message"))
        message = line["args"][0]
        assert message["id"] == stored["id"]
        assert message["from"] == "5511988887777"
        assert message["text"] == message["body"] == "Olá do Node"
        assert message["session"] == "default"
        assert message["timestamp"].endswith("Z")
        envelopes = [x["args"][0] for x in client.lines if x.get("name") == "event"]
        received = [e for e in envelopes if e["type"] == "message.received"]
        assert [e["payload"]["id"] for e in received] == [stored["id"]]
        assert {"id", "seq", "type", "session", "tenant", "timestamp"} <= set(received[0])


@pytest.mark.parametrize("auth", [{"token": "wrong"}, {}, {"token": ADMIN_KEY + "x"}])
async def test_js_client_with_a_wrong_key_is_refused(
    server: RunningServer, auth: dict[str, str]
) -> None:
    async with JsSocketClient(server.url, auth=auth, events=["message"]) as client:
        line = await client.wait_for(lambda line: line["kind"] in {"connect", "connect_error"})
        assert line["kind"] == "connect_error"
        assert line["message"] == "unauthorized"
        assert await client.wait_exit() == 2


async def test_js_client_over_polling_transport(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    async with JsSocketClient(
        server.url, auth={"token": ADMIN_KEY}, events=["message"], transports=["polling"]
    ) as client:
        await client.wait_for(lambda line: line["kind"] == "connect")
        stored = await inject(api, "via polling")
        line = await client.wait_for(is_event("message"))
        assert line["args"][0]["id"] == stored["id"]


async def test_tenants_never_see_each_other(server: RunningServer, api: httpx.AsyncClient) -> None:
    await wait_working(server)
    other_key = await tenant_key(server.services, "acme", "acme app")
    async with (
        JsSocketClient(server.url, auth={"token": other_key}, events=["message", "event"]) as acme,
        JsSocketClient(server.url, auth={"token": ADMIN_KEY}, events=["message"]) as mine,
    ):
        await acme.wait_for(lambda line: line["kind"] == "connect")
        await mine.wait_for(lambda line: line["kind"] == "connect")
        stored = await inject(api, "private")
        await mine.wait_for(is_event("message"))
        await server.services.realtime.drain()
        assert not [line for line in acme.lines if line["kind"] == "event"]
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {other_key}"}
    ) as acme_api:
        assert (await acme_api.get(f"/api/v1/messages/{stored['id']}")).status_code == 404
        assert (await acme_api.get("/api/v1/sessions/default")).status_code == 404
        assert (await acme_api.get("/api/v1/events")).json()["data"] == []
        assert (await acme_api.get("/api/v1/sessions")).json() == []


async def test_session_room_only_gets_that_session(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    async with (
        JsSocketClient(
            server.url, auth={"token": ADMIN_KEY, "sessions": ["other"]}, events=["message"]
        ) as other,
        JsSocketClient(
            server.url, auth={"token": ADMIN_KEY, "sessions": "default"}, events=["message"]
        ) as default,
    ):
        await other.wait_for(lambda line: line["kind"] == "connect")
        await default.wait_for(lambda line: line["kind"] == "connect")
        await inject(api, "for default only")
        await default.wait_for(is_event("message"))
        await server.services.realtime.drain()
        assert not [line for line in other.lines if line["kind"] == "event"]
        await other.emit("subscribe", {"session": "default"})
        ack = await other.wait_for(lambda line: line["kind"] == "ack")
        assert ack["args"][0] == {"ok": True, "session": "default"}
        await inject(api, "now for both")
        line = await other.wait_for(is_event("message"))
        assert line["args"][0]["text"] == "now for both"
