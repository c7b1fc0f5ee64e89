"""A delivery of an event a request caused names that request: ``X-Zapgate-Request-Id`` (outside
the signature, which covers the body, where ``request_id`` says it too), and the deliveries list
shows it. A delivery of what an engine reported by itself has no such header."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningServer, make_settings
from tests.support.receiver import Receiver
from tests.test_messages_api import wait_working
from zapgate.config import Settings
from zapgate.webhooks import signing

HEADER = "x-zapgate-request-id"


@pytest.fixture
def server_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, webhook_allowlist="127.0.0.1")


async def test_a_delivery_carries_the_request_id_of_its_event(
    server: RunningServer, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    await wait_working(server)
    events = ["message.queued", "message.sent", "message.received"]
    made = await api.post("/api/v1/webhooks", json={"url": receiver.url, "events": events})
    assert made.status_code == 201, made.text
    hook = made.json()
    echo = server.services.settings.simulator_echo_contact
    sent = await api.post(
        "/api/v1/sessions/default/messages",
        json={"to": echo, "text": "ping"},
        headers={"X-Request-Id": "hook-1"},
    )
    assert sent.status_code == 202
    await receiver.wait_until(lambda r: len(r.successes()) == 3)

    by_type = {got.json["type"]: got for got in receiver.successes()}
    for kind in ("message.queued", "message.sent"):
        got = by_type[kind]
        assert got.headers[HEADER] == "hook-1", kind
        assert got.json["request_id"] == "hook-1"
        signing.verify(str(hook["secret"]), got.headers, got.body)
    reply = by_type["message.received"]
    assert HEADER not in reply.headers, "the echo's reply was caused by no request"
    assert reply.json["request_id"] is None

    page = (await api.get(f"/api/v1/webhooks/{hook['id']}/deliveries")).json()["data"]
    listed = {d["event_id"]: d["request_id"] for d in page}
    assert listed == {got.json["id"]: got.json["request_id"] for got in receiver.successes()}


async def test_a_subscription_cannot_set_the_request_id_header(api: httpx.AsyncClient) -> None:
    made = await api.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "headers": {"X-Zapgate-Request-Id": "mine"}},
    )
    assert made.status_code == 422, made.text
