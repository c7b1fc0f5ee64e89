"""Socket input is bounded: valid session names only, at most 100 per socket, a sane auth."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY, RunningServer
from tests.realtime.support import connected, emit, got_seq, tenant_with_key
from tests.support.js_client import JsSocketClient, Line

pytestmark = pytest.mark.node
INVALID = "invalid_input"


def acked(line: Line) -> bool:
    return line["kind"] == "ack"


def ok(session: str) -> dict[str, Any]:
    return {"ok": True, "session": session}


async def ack_of(client: JsSocketClient, name: str, *args: Any) -> dict[str, Any]:
    await client.emit(name, *args)
    line = await client.wait_for(acked, timeout=10)
    assert line["name"] == name
    return dict(line["args"][0])


async def test_a_100_kb_session_name_is_refused_and_the_server_stays_healthy(
    server: RunningServer,
) -> None:
    key = await tenant_with_key(server, "big")
    huge = "a" * 100_000
    async with JsSocketClient(
        server.url, auth={"token": key, "sessions": ["s1"]}, events=["event"], timeout_ms=30_000
    ) as client:
        assert (await client.wait_for(connected, timeout=20))["kind"] == "connect"
        for name in ("subscribe", "unsubscribe"):
            answer = await ack_of(client, name, {"session": huge})
            assert answer["error"] == INVALID
            assert len(answer["detail"]) < 200, "the input is not echoed back"
        assert await ack_of(client, "subscribe", {"session": "s2"}) == ok("s2")
        await emit(server, "big", 1, session="s2")
        await client.wait_for(got_seq(1))
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/health")).status_code == 200


@pytest.mark.parametrize(
    "args",
    [
        [],
        [{"session": 5}],
        [{"session": "../etc"}],
        [{"session": "ok\n"}],
        [{"session": "a" * 65}],
        ["s1"],
        [{"name": "s1"}],
        [{"session": "s1"}, "extra"],
    ],
)
async def test_malformed_subscriptions_get_an_invalid_input_ack(
    server: RunningServer, args: list[Any]
) -> None:
    async with JsSocketClient(server.url, auth={"token": ADMIN_KEY}, timeout_ms=30_000) as client:
        assert (await client.wait_for(connected, timeout=20))["kind"] == "connect"
        answer = await ack_of(client, "subscribe", *args)
        assert answer["error"] == INVALID, answer
        assert await ack_of(client, "subscribe", {"session": "s1"}) == ok("s1")


async def test_a_socket_listens_to_at_most_100_sessions(server: RunningServer) -> None:
    names = [f"s{n}" for n in range(100)]
    async with JsSocketClient(
        server.url, auth={"token": ADMIN_KEY, "sessions": names}, timeout_ms=30_000
    ) as client:
        assert (await client.wait_for(connected, timeout=20))["kind"] == "connect"
        assert (await ack_of(client, "subscribe", {"session": "s100"}))["error"] == INVALID
        assert await ack_of(client, "subscribe", {"session": "s99"}) == {
            "ok": True,
            "session": "s99",
        }
        assert await ack_of(client, "unsubscribe", {"session": "s0"}) == {
            "ok": True,
            "session": "s0",
        }
        assert await ack_of(client, "subscribe", {"session": "s100"}) == {
            "ok": True,
            "session": "s100",
        }


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"token": ADMIN_KEY, "sessions": [f"s{n}" for n in range(101)]}, INVALID),
        ({"token": ADMIN_KEY, "sessions": ["a" * 100_000]}, INVALID),
        ({"token": ADMIN_KEY, "sessions": ["ok", 5]}, INVALID),
        ({"token": ADMIN_KEY, "sessions": {"s1": True}}, INVALID),
        ({"token": ADMIN_KEY, "session": "../x"}, INVALID),
        ({"token": 12345}, INVALID),
        ({"token": "k" * 100_000}, INVALID),
        ({"token": "key\u0000"}, INVALID),
        ({"token": "\ud800"}, INVALID),
        ({"token": ADMIN_KEY, "offset": 2**63}, "invalid_offset"),
        ({"token": ADMIN_KEY, "offset": 10**30}, "invalid_offset"),
        ({"token": ADMIN_KEY, "offset": -1}, "invalid_offset"),
        ({"token": ADMIN_KEY, "offset": 1.5}, "invalid_offset"),
        ({"token": ADMIN_KEY, "offset": True}, "invalid_offset"),
        ("not an object", INVALID),
        ([ADMIN_KEY], INVALID),
    ],
)
async def test_a_malformed_auth_is_refused_as_invalid_input(
    server: RunningServer, auth: Any, message: str
) -> None:
    async with JsSocketClient(server.url, extra={"auth": auth}, timeout_ms=30_000) as client:
        line = await client.wait_for(connected, timeout=20)
        assert line["kind"] == "connect_error"
        assert line["message"] == message
        assert line["data"]["error"] == INVALID
        assert len(line["data"]["detail"]) < 200


async def test_an_offset_ahead_of_the_log_is_accepted(server: RunningServer) -> None:
    auth = {"token": ADMIN_KEY, "offset": 2**53}
    async with JsSocketClient(server.url, auth=auth, timeout_ms=30_000) as client:
        assert (await client.wait_for(connected, timeout=20))["kind"] == "connect"


async def test_a_key_limited_to_sessions_sees_only_their_events(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    """Without naming them, and it cannot ask for others (at connect or by subscribing)."""
    created = await api.post(
        "/api/v1/keys", json={"name": "one session", "scopes": ["read"], "sessions": ["s1"]}
    )
    token = created.json()["key"]
    asking = {"token": token, "sessions": ["s1", "s2"]}
    async with JsSocketClient(server.url, auth=asking, timeout_ms=30_000) as refused:
        line = await refused.wait_for(connected, timeout=20)
        assert line["kind"] == "connect_error"
        assert line["data"]["error"] == "forbidden"
    async with JsSocketClient(server.url, auth={"token": token}, timeout_ms=30_000) as client:
        assert (await client.wait_for(connected, timeout=20))["kind"] == "connect"
        answer = await ack_of(client, "subscribe", {"session": "s2"})
        assert answer["error"] == "forbidden", answer
        await emit(server, "default", 1, session="s2")
        await emit(server, "default", 2, session="s1")
        line = await client.wait_for(lambda line: line["kind"] == "event", timeout=10)
        assert line["args"][0]["session"] == "s1", "the s2 event, committed first, never came"
