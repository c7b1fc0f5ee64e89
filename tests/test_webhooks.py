"""Webhooks end to end: a real uvicorn server delivering to a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook as StandardWebhook

from tests.conftest import RunningServer, free_port, make_settings
from tests.support.events import EventWatcher
from tests.support.receiver import Receiver
from tests.support.tenants import tenant_key
from zapgate.config import Settings
from zapgate.db.tables import webhooks as webhooks_table
from zapgate.webhooks import repository, signing


@pytest.fixture
def server_settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        webhook_allowlist="127.0.0.1",
        webhook_retry_schedule=(0, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05),
        webhook_disable_after=3,
        webhook_timeout_seconds=5,
    )


async def subscribe(api: httpx.AsyncClient, url: str, **fields: object) -> dict[str, object]:
    response = await api.post("/api/v1/webhooks", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def inbound(api: httpx.AsyncClient, text: str, session: str = "default") -> str:
    response = await api.post(
        f"/api/v1/sessions/{session}/simulate/inbound",
        json={"from": "5511988887777", "text": text},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def settled(server: RunningServer, webhook_id: str) -> None:
    """Wait until no delivery of the subscription is pending (by recorded attempts)."""
    dispatcher = server.services.dispatcher
    while True:
        seen = dispatcher.attempts
        counts = await repository.count_by_status(server.services.database, "default", webhook_id)
        if not counts.get("pending"):
            return
        async with asyncio.timeout(10):
            await dispatcher.recorded_beyond(seen)


async def working(server: RunningServer, session: str = "default") -> None:
    from tests.test_messages_api import wait_working

    await wait_working(server, session)


async def test_deliveries_are_signed_and_verify_with_standardwebhooks(
    server: RunningServer, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    await working(server)
    hook = await subscribe(api, receiver.url, events=["message.received"])
    secret = str(hook["secret"])
    assert secret.startswith("whsec_")
    assert "secret" not in (await api.get(f"/api/v1/webhooks/{hook['id']}")).json() or (
        (await api.get(f"/api/v1/webhooks/{hook['id']}")).json()["secret"] is None
    )
    message_id = await inbound(api, "assinado")
    await receiver.wait_until(lambda r: len(r.successes()) == 1)
    got = receiver.successes()[0]
    payload = StandardWebhook(secret).verify(got.body, got.headers)
    assert payload["type"] == "message.received"
    assert payload["payload"]["id"] == message_id
    assert got.headers["webhook-id"] == payload["id"]
    assert got.headers["content-type"] == "application/json"
    signing.verify(secret, got.headers, got.body)


async def test_refused_then_500_then_200_delivers_everything_in_order(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await working(server)
    port = free_port()
    receiver = Receiver(port)
    hook = await subscribe(api, receiver.url, events=["message.received"])
    ids = [await inbound(api, f"m{index}") for index in range(3)]
    dispatcher = server.services.dispatcher
    await dispatcher.recorded_beyond(1)  # two refused connections: nothing listens yet
    receiver.answer(500, times=2)
    await receiver.start()
    try:
        await receiver.wait_until(lambda r: len(r.successes()) == 3, timeout=15)
    finally:
        await receiver.stop()
    await settled(server, str(hook["id"]))
    delivered = [r.json["payload"]["id"] for r in receiver.successes()]
    assert delivered == ids, "order per subscription and session was not kept"
    seqs = [r.json["seq"] for r in receiver.successes()]
    assert seqs == sorted(seqs)
    page = (await api.get(f"/api/v1/webhooks/{hook['id']}/deliveries")).json()["data"]
    assert [d["status"] for d in page] == ["succeeded"] * 3
    first = next(d for d in page if d["event_seq"] == min(seqs))
    log = first["attempt_log"]
    assert len(log) == first["attempts"] >= 4
    assert log[0]["status_code"] is None
    assert "Connect" in log[0]["error"] or "refused" in log[0]["error"].lower()
    assert [a["status_code"] for a in log[-3:]] == [500, 500, 200]
    assert all(a["duration_ms"] >= 0 for a in log)
    assert log[-2]["response"] == "no"


async def test_410_disables_the_subscription(
    server: RunningServer, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    await working(server)
    receiver.default = 410
    hook = await subscribe(api, receiver.url, events=["message.received"])
    async with EventWatcher(server.services.bus) as watcher:
        await inbound(api, "gone")
        disabled = await watcher.wait_for(lambda e: e.type == "webhook.disabled", 10)
    assert disabled.payload["webhook_id"] == hook["id"]
    state = (await api.get(f"/api/v1/webhooks/{hook['id']}")).json()
    assert state["active"] is False
    assert "410" in state["disabled_reason"]
    dispatcher = server.services.dispatcher
    await dispatcher.until_quiet()
    assert not dispatcher.serving("default", str(hook["id"])), "a disabled subscription's worker"
    await inbound(api, "after")
    await dispatcher.until_quiet()
    assert len(receiver.requests) == 1
    revived = await api.patch(f"/api/v1/webhooks/{hook['id']}", json={"active": True})
    assert revived.json()["active"] is True
    assert revived.json()["disabled_reason"] is None


async def test_consecutive_failed_events_disable_the_subscription(
    server: RunningServer, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    await working(server)
    receiver.default = 503
    hook = await subscribe(api, receiver.url, events=["message.received"])
    async with EventWatcher(server.services.bus) as watcher:
        for index in range(3):
            await inbound(api, f"f{index}")
        disabled = await watcher.wait_for(lambda e: e.type == "webhook.disabled", 15)
    assert "3 events in a row" in disabled.payload["reason"]
    failed = (
        await api.get(f"/api/v1/webhooks/{hook['id']}/deliveries", params={"status": "failed"})
    ).json()["data"]
    assert len(failed) == 3
    assert all(d["attempts"] == 8 for d in failed)
    retried = await api.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{failed[0]['id']}/retry")
    assert retried.status_code == 202
    assert retried.json()["status"] == "pending"


async def test_redirects_are_not_followed(
    server: RunningServer, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    await working(server)
    receiver.answer(302, Location="/elsewhere")
    hook = await subscribe(api, receiver.url, events=["message.received"])
    await inbound(api, "moved")
    await receiver.wait_until(lambda r: len(r.successes()) == 1, timeout=10)
    await settled(server, str(hook["id"]))
    assert [r.path for r in receiver.requests] == ["/hook", "/hook"]
    page = (await api.get(f"/api/v1/webhooks/{hook['id']}/deliveries")).json()["data"]
    log = page[0]["attempt_log"]
    assert log[0]["status_code"] == 302
    assert "not followed" in log[0]["error"]


async def test_secret_rotation_signs_with_both_during_the_grace_period(
    server: RunningServer, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    await working(server)
    hook = await subscribe(api, receiver.url, events=["message.received"])
    old = str(hook["secret"])
    rotated = await api.post(f"/api/v1/webhooks/{hook['id']}/rotate-secret", json={})
    new = rotated.json()["secret"]
    assert new != old
    await inbound(api, "rotated")
    await receiver.wait_until(lambda r: len(r.successes()) == 1)
    got = receiver.successes()[0]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    StandardWebhook(old).verify(got.body, got.headers)
    StandardWebhook(new).verify(got.body, got.headers)


async def test_replay_sends_past_events_again(
    server: RunningServer, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    await working(server)
    since = datetime.now(UTC).isoformat()
    hook = await subscribe(api, receiver.url, events=["message.received"])
    ids = [await inbound(api, f"r{index}") for index in range(2)]
    await receiver.wait_until(lambda r: len(r.successes()) == 2)
    replayed = await api.post(f"/api/v1/webhooks/{hook['id']}/replay", json={"since": since})
    assert replayed.json() == {"replayed": 2}
    await receiver.wait_until(lambda r: len(r.successes()) == 4)
    again = [r.json["payload"]["id"] for r in receiver.successes()[2:]]
    assert again == ids
    assert (
        receiver.successes()[2].headers["webhook-id"]
        == receiver.successes()[0].headers["webhook-id"]
    ), "the same event keeps its webhook-id so receivers can de-duplicate"


async def test_replays_cannot_pile_up_beyond_the_pending_bound(
    server: RunningServer,
    api: httpx.AsyncClient,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from zapgate.webhooks import service as webhook_service

    monkeypatch.setattr(webhook_service, "REPLAY_MAX", 3)
    await working(server)
    since = datetime.now(UTC).isoformat()
    hook = await subscribe(api, receiver.url, events=["message.received"])
    for index in range(2):
        await inbound(api, f"p{index}")
    await receiver.wait_until(lambda r: len(r.successes()) == 2)
    async with asyncio.timeout(10):
        await server.services.dispatcher.until_quiet()  # both attempts are stored
    receiver.hold()  # nothing is delivered now: replays stay pending
    path = f"/api/v1/webhooks/{hook['id']}/replay"
    assert (await api.post(path, json={"since": since})).json() == {"replayed": 2}
    partial = await api.post(path, json={"since": since})
    assert partial.json() == {"replayed": 1}, "only up to the bound"
    refused = await api.post(path, json={"since": since})
    assert refused.status_code == 429
    assert refused.json()["error"] == "quota_exceeded"
    receiver.release()
    await receiver.wait_until(lambda r: len(r.successes()) == 5)
    async with asyncio.timeout(10):
        await server.services.dispatcher.until_quiet()  # every attempt is stored
    again = await api.post(path, json={"since": since})
    assert again.json() == {"replayed": 2}, "once delivered, a replay is welcome again"


UNSAFE = [
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://[::ffff:127.0.0.1]/",
    "http://169.254.169.254/latest/meta-data",
    "http://0.0.0.0/",
    "http://localhost/",
    "http://10.1.2.3/",
    "http://[::1]/",
    "ftp://example.com/",
]


@pytest.mark.parametrize("url", UNSAFE)
async def test_unsafe_urls_are_refused_at_registration(tmp_path: Path, url: str) -> None:
    from tests.conftest import AUTH, serve
    from zapgate.services import build_services

    settings = make_settings(tmp_path)  # no allowlist
    async with (
        serve(build_services(settings)) as server,
        httpx.AsyncClient(base_url=server.url, headers=AUTH) as api,
    ):
        response = await api.post("/api/v1/webhooks", json={"url": url})
        assert response.status_code == 422, response.text
        assert response.json()["error"] in {"unsafe_url"}
        assert (await api.get("/api/v1/webhooks")).json() == []


@pytest.mark.parametrize("url", UNSAFE[:-1])
async def test_unsafe_urls_are_refused_at_send_time(tmp_path: Path, url: str) -> None:
    from tests.conftest import AUTH, serve
    from zapgate.services import build_services

    settings = make_settings(tmp_path)
    async with (
        serve(build_services(settings)) as server,
        httpx.AsyncClient(base_url=server.url, headers=AUTH) as api,
    ):
        hook = await subscribe(api, "https://hooks.example.com/in", events=["message.received"])
        async with server.services.database.begin() as connection:  # as if the DB was edited
            await connection.execute(
                sa.update(webhooks_table).where(webhooks_table.c.id == hook["id"]).values(url=url)
            )
        server.services.dispatcher.wake("default", str(hook["id"]))  # as the service would
        await working(server)
        seen = server.services.dispatcher.attempts
        await inbound(api, "ssrf")
        await server.services.dispatcher.recorded_beyond(seen)
        page = (await api.get(f"/api/v1/webhooks/{hook['id']}/deliveries")).json()["data"]
    assert page, "no delivery was made"
    log = page[0]["attempt_log"]
    assert log, page
    assert log[0]["status_code"] is None
    assert log[0]["error"].startswith("refused:")


async def rebinding(*args: object, **kwargs: object) -> list[tuple[object, ...]]:
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 443))]


async def broken_dns(*args: object, **kwargs: object) -> list[tuple[object, ...]]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (resolver 10.0.0.53)")


async def internal(*args: object, **kwargs: object) -> list[tuple[object, ...]]:
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 1))]


LEAKS = [
    # (URL, the fake resolver, what the tenant reads, what only the server's log may tell)
    (
        "https://rebind.example.com/in",
        rebinding,
        "refused: the host resolves to a non-",
        "10.0.0.5",
    ),
    ("https://gone.example.com/in", broken_dns, "DNS lookup failed", "10.0.0.53"),
    # an allowlisted internal name whose receiver is down (nothing listens on port 1)
    ("http://hooks.internal:1/in", internal, "could not connect: connection refused", "127.0.0.1"),
]


@pytest.mark.parametrize(("url", "resolver", "public", "secret"), LEAKS)
async def test_failed_deliveries_do_not_reveal_internal_addresses(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    url: str,
    resolver: object,
    public: str,
    secret: str,
) -> None:
    from tests.conftest import AUTH, serve
    from zapgate.services import build_services

    settings = make_settings(tmp_path, webhook_allowlist="hooks.internal")
    async with (
        serve(build_services(settings)) as server,
        httpx.AsyncClient(base_url=server.url, headers=AUTH) as api,
    ):
        hook = await subscribe(api, url, events=["message.received"])
        await working(server)
        monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", resolver)
        seen = server.services.dispatcher.attempts
        with caplog.at_level(logging.INFO, "zapgate.webhooks.client"):
            await inbound(api, "leak?")
            await server.services.dispatcher.recorded_beyond(seen)
        page = (await api.get(f"/api/v1/webhooks/{hook['id']}/deliveries")).json()["data"]
    recorded = [page[0]["attempt_log"][0]["error"], page[0]["last_error"]]
    for error in recorded:
        assert error.startswith(public), error
        assert secret not in error, error
        assert "resolver" not in error, error
    assert any(secret in r.getMessage() for r in caplog.records), "no detail in the log"


async def test_bad_webhook_requests(api: httpx.AsyncClient) -> None:
    cases = [
        ({}, 422),
        ({"url": 5}, 422),
        ({"url": "https://example.com", "headers": {"webhook-id": "x"}}, 422),
        ({"url": "https://example.com", "headers": {"Content-Type": "text/plain"}}, 422),
        ({"url": "https://example.com", "nonsense": 1}, 422),
        ({"url": "not a url"}, 422),
    ]
    for body, status in cases:
        response = await api.post("/api/v1/webhooks", json=body)
        assert response.status_code == status, (body, response.text)
    assert (await api.get("/api/v1/webhooks")).json() == []
    assert (await api.get("/api/v1/webhooks/wh_nope")).status_code == 404
    assert (await api.get("/api/v1/webhooks/wh_nope/deliveries")).status_code == 404
    assert (
        await api.post("/api/v1/webhooks/wh_nope/replay", json={"since": "x"})
    ).status_code == 422


async def test_webhooks_of_another_tenant_are_invisible(
    server: RunningServer, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = await subscribe(api, receiver.url)
    other = await tenant_key(server.services, "acme", "acme")
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {other}"}
    ) as acme:
        assert (await acme.get("/api/v1/webhooks")).json() == []
        assert (await acme.get(f"/api/v1/webhooks/{hook['id']}")).status_code == 404
        assert (await acme.delete(f"/api/v1/webhooks/{hook['id']}")).status_code == 404
    body = orjson.loads(orjson.dumps(hook))
    assert body["id"].startswith("wh_")


async def test_bad_header_values_and_null_patches_are_422(api: httpx.AsyncClient) -> None:
    bad = await api.post(
        "/api/v1/webhooks",
        json={"url": "https://example.com/h", "headers": {"X-Token": "a\r\nInjected: 1"}},
    )
    assert bad.status_code == 422
    good = await api.post("/api/v1/webhooks", json={"url": "https://example.com/h"})
    for body in ({"url": None}, {"headers": None}, {"active": None}, {"events": None}):
        response = await api.patch(f"/api/v1/webhooks/{good.json()['id']}", json=body)
        assert response.status_code == 422, (body, response.text)
