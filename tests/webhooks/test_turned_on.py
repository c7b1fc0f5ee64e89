"""A subscription turned on behind a backlog delivers all of it, in order.

Found by the sinks bench: the shared recent-events run ended with the full page the first plan
read from the log, the next plan's page from the run came back short, and a short page meant
"caught up": 100 of 300 events were delivered, the rest only once new events came.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningServer, make_settings
from tests.support.receiver import Receiver
from tests.test_webhooks import inbound, working
from zapgate.config import Settings

BACKLOG = 300


@pytest.fixture
def server_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, webhook_allowlist="127.0.0.1")


async def test_a_webhook_turned_on_behind_a_backlog_delivers_all_of_it_in_order(
    server: RunningServer, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    await working(server)
    body = {"url": receiver.url, "events": ["message.received"], "active": False}
    hook = (await api.post("/api/v1/webhooks", json=body)).json()["id"]
    sent = [await inbound(api, f"m{index}") for index in range(BACKLOG)]
    turned = await api.patch(f"/api/v1/webhooks/{hook}", json={"active": True})
    assert turned.status_code == 200
    await receiver.wait_until(lambda r: len(r.successes()) >= BACKLOG, 30)
    got = [r.json["payload"]["id"] for r in receiver.successes()]
    assert got == sent
