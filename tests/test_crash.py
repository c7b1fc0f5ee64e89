"""Accepted messages survive kill -9 and are sent after the restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY, AUTH, free_port
from tests.support.process import ServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path, free_port(), ADMIN_KEY)
    try:
        yield process
    finally:
        process.stop()


def wait_for_status(url: str, message_id: str, statuses: set[str]) -> dict[str, object]:
    """Follow the event log (long-poll) until the message reaches one of ``statuses``."""
    after = 0
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        for _ in range(100):
            page = client.get("/api/v1/events", params={"after": after, "wait": 10}).json()
            for event in page["data"]:
                payload = event["payload"]
                if payload.get("id") == message_id and payload.get("status") in statuses:
                    return dict(payload)
            after = page["next_after"]
    raise AssertionError(f"{message_id} never reached {statuses}")


def test_sigkill_right_after_202_loses_nothing(server_process: ServerProcess) -> None:
    # The phone takes long to pair, so accepted messages stay queued when the server dies.
    server_process.start(ZAPGATE_SIMULATOR_PAIRING_SECONDS="60")
    ids = []
    with httpx.Client(base_url=server_process.url, headers=AUTH) as client:
        for index in range(20):
            response = client.post(
                "/api/v1/sessions/default/messages",
                json={"to": "5511999999999", "text": f"survivor {index}"},
            )
            assert response.status_code == 202
            ids.append(response.json()["id"])
        legacy = client.post("/whatsapp/send", json={"number": "5511999999999", "message": "old"})
        assert legacy.status_code == 200
        ids.append(legacy.json()["id"])
    server_process.kill()

    server_process.start(ZAPGATE_SIMULATOR_PAIRING_SECONDS="0")
    for message_id in ids:
        final = wait_for_status(server_process.url, message_id, {"sent", "delivered", "read"})
        assert final["id"] == message_id
    with httpx.Client(base_url=server_process.url, headers=AUTH) as client:
        history = client.get("/api/v1/sessions/default/messages", params={"limit": 500}).json()
    texts = [m["text"] for m in history["data"]]
    assert sorted(texts) == sorted([f"survivor {i}" for i in range(20)] + ["old"])
    assert all(m["status"] != "queued" for m in history["data"])


async def test_sigkill_during_a_send_burst_and_webhook_delivery(tmp_path: Path) -> None:
    """0 accepted messages lost, every event delivered at least once, after kill -9."""
    import asyncio

    from tests.support.receiver import Receiver

    receiver = Receiver(free_port())
    delay = asyncio.Event()  # slow receiver: deliveries are in flight when the server dies
    original = receiver._handle

    async def slow(request):  # type: ignore[no-untyped-def]
        if not delay.is_set():
            await asyncio.sleep(0.02)
        return await original(request)

    receiver._handle = slow  # type: ignore[method-assign]
    await receiver.start()
    server = ServerProcess(
        tmp_path,
        free_port(),
        ADMIN_KEY,
        ZAPGATE_WEBHOOK_ALLOWLIST="127.0.0.1",
        ZAPGATE_WEBHOOK_RETRY_SCHEDULE="0,0.1,0.2,0.5,1,1,1,1,1,1",
        ZAPGATE_SIMULATOR_PAIRING_SECONDS="0",
        ZAPGATE_SIMULATOR_ECHO_CONTACT="",
    )
    try:
        await asyncio.to_thread(server.start)
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=10) as api:
            subscribed_at = await quiet_seq(api)  # the boot's events are before the subscription
            hook = (await api.post("/api/v1/webhooks", json={"url": receiver.url})).json()
            accepted = await burst_then_kill(api, server, 300, kill_after=150)
        assert len(accepted) >= 150
        await asyncio.to_thread(server.start)
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=30) as api:
            for message_id in accepted:
                message = (await api.get(f"/api/v1/messages/{message_id}")).json()
                assert message["id"] == message_id, "an accepted message was lost"
            await until_settled(api, str(hook["id"]), accepted)
            delay.set()
            logged = {seq for seq in await all_seqs(api) if seq > subscribed_at}

        def delivered() -> set[int]:
            return {r.json["seq"] for r in receiver.successes()}

        try:  # the worker plans a window ahead, so "nothing pending" is not "all delivered"
            await receiver.wait_until(lambda _r: logged <= delivered(), timeout=60)
        except TimeoutError:
            missing = sorted(logged - delivered())
            raise AssertionError(f"{len(missing)} events never delivered: {missing[:10]}") from None
    finally:
        server.stop()
        await receiver.stop()


async def burst_then_kill(
    api: httpx.AsyncClient, server: ServerProcess, total: int, kill_after: int
) -> list[str]:
    """Send ``total`` messages 20 at a time; kill -9 the server after ``kill_after`` 202s."""
    import asyncio

    accepted: list[str] = []
    killed = False

    async def one(index: int) -> None:
        nonlocal killed
        try:
            response = await api.post(
                "/api/v1/sessions/default/messages",
                json={"to": "5511999999999", "text": f"burst {index}"},
            )
        except httpx.TransportError:
            return  # not accepted: the server died before answering
        if response.status_code == 202:
            accepted.append(response.json()["id"])
        if len(accepted) >= kill_after and not killed:
            killed = True
            server.kill()

    for start in range(0, total, 20):
        await asyncio.gather(*(one(i) for i in range(start, min(start + 20, total))))
        if killed:
            break
    return accepted


async def until_settled(api: httpx.AsyncClient, webhook_id: str, accepted: list[str]) -> None:
    """Follow the log until every accepted message left the queue and no delivery is pending."""
    after = 0
    waiting = set(accepted)
    for _ in range(200):
        page = (await api.get("/api/v1/events", params={"after": after, "wait": 2})).json()
        for event in page["data"]:
            if event["payload"].get("status") in {"sent", "delivered", "read", "failed"}:
                waiting.discard(event["payload"].get("id"))
        after = page["next_after"]
        pending = (
            await api.get(f"/api/v1/webhooks/{webhook_id}/deliveries", params={"status": "pending"})
        ).json()["data"]
        if not waiting and not pending and not page["data"]:
            return
    raise AssertionError(f"not settled: {len(waiting)} messages still queued")


async def quiet_seq(api: httpx.AsyncClient) -> int:
    """The newest seq once nothing has happened for half a second."""
    after = 0
    for _ in range(100):
        page = (await api.get("/api/v1/events", params={"after": after, "wait": 0.5})).json()
        if not page["data"]:
            return after
        after = page["next_after"]
    raise AssertionError("the server never went quiet")


async def all_seqs(api: httpx.AsyncClient) -> set[int]:
    """Every seq in the event log."""
    seqs: set[int] = set()
    after = 0
    while True:
        page = (await api.get("/api/v1/events", params={"after": after, "limit": 1000})).json()
        if not page["data"]:
            return seqs
        seqs |= {event["seq"] for event in page["data"]}
        after = page["next_after"]
