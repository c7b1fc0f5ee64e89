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
