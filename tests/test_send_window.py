"""An engine that takes many sends at once (the Cloud API's ``send_window``): different
recipients go together, one recipient's messages still go one after another, in order, and a
transient failure of one recipient's message holds back no one else."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningServer, make_settings
from tests.support.engines import InstantEngine
from tests.support.events import EventWatcher, message_status, status_is
from zapgate.config import Settings
from zapgate.engines.base import OutboundMessage, SendReceipt, TransientEngineError
from zapgate.engines.registry import EngineSpec


class GatedEngine(InstantEngine):
    """Each send waits until the test opens its gate; records what is in flight."""

    name = "gated"
    gates: dict[str, asyncio.Event] = {}  # noqa: RUF012 - one test at a time
    started: list[str] = []  # noqa: RUF012
    in_flight: set[str] = set()  # noqa: RUF012
    most_in_flight = 0
    fail_once: set[str] = set()  # noqa: RUF012

    async def send(self, message: OutboundMessage) -> SendReceipt:
        text = message.text or ""
        GatedEngine.started.append(text)
        GatedEngine.in_flight.add(text)
        GatedEngine.most_in_flight = max(GatedEngine.most_in_flight, len(GatedEngine.in_flight))
        try:
            if text in GatedEngine.fail_once:
                GatedEngine.fail_once.discard(text)
                raise TransientEngineError("try again")
            await GatedEngine.gates.setdefault(text, asyncio.Event()).wait()
        finally:
            GatedEngine.in_flight.discard(text)
        return SendReceipt(f"gated-{message.id}")


async def started(*texts: str) -> None:
    async with asyncio.timeout(5):
        while not set(texts) <= set(GatedEngine.started):
            await asyncio.sleep(0.01)


def release(*texts: str) -> None:
    for text in texts:
        GatedEngine.gates.setdefault(text, asyncio.Event()).set()


async def gated_session(server: RunningServer, api: httpx.AsyncClient) -> None:
    GatedEngine.gates, GatedEngine.started, GatedEngine.in_flight = {}, [], set()
    GatedEngine.most_in_flight, GatedEngine.fail_once = 0, set()
    spec = EngineSpec(GatedEngine, GatedEngine.capabilities, paces_itself=True, send_window=4)
    server.services.sessions.engines.register("gated", spec)
    async with EventWatcher(server.services.bus) as watcher:
        created = await api.post("/api/v1/sessions", json={"name": "many", "engine": "gated"})
        assert created.status_code == 201, created.text
        await watcher.wait_for(status_is("many", "WORKING"))


async def queue(api: httpx.AsyncClient, *sends: tuple[str, str]) -> list[str]:
    ids = []
    for to, text in sends:
        answer = await api.post("/api/v1/sessions/many/messages", json={"to": to, "text": text})
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])
    return ids


@pytest.fixture
def server_settings(tmp_path: Path) -> Settings:
    """A retried send waits 2 s: long enough to see who else goes meanwhile."""
    return make_settings(tmp_path, send_retry_base_seconds=2.0)


ANA, BIA, CAU = "5511911110001", "5511911110002", "5511911110003"


async def test_recipients_go_together_and_each_ones_messages_in_order(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await gated_session(server, api)
    sends = [(ANA, "a1"), (BIA, "b1"), (ANA, "a2"), (CAU, "c1"), (BIA, "b2"), (ANA, "a3")]
    async with EventWatcher(server.services.bus) as watcher:
        ids = await queue(api, *sends)
        await started("a1", "b1", "c1")
        assert GatedEngine.in_flight == {"a1", "b1", "c1"}  # a2, b2 wait for their turn
        release("a1")
        await started("a2")
        assert "a3" not in GatedEngine.started
        assert "b2" not in GatedEngine.started
        release("b1", "c1", "a2", "b2", "a3")
        for message_id in ids:
            await watcher.wait_for(message_status(message_id, "sent"))
    order = GatedEngine.started
    assert [t for t in order if t.startswith("a")] == ["a1", "a2", "a3"]
    assert [t for t in order if t.startswith("b")] == ["b1", "b2"]
    assert GatedEngine.most_in_flight == 3


async def test_the_window_bounds_the_sends_in_flight(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await gated_session(server, api)
    texts = [f"m{n}" for n in range(10)]
    async with EventWatcher(server.services.bus) as watcher:
        ids = await queue(api, *((f"55119222{n:05d}", text) for n, text in enumerate(texts)))
        await started(*texts[:4])
        assert len(GatedEngine.in_flight) == 4
        release(*texts)
        for message_id in ids:
            await watcher.wait_for(message_status(message_id, "sent"))
    assert GatedEngine.most_in_flight == 4


async def test_a_retried_message_holds_back_only_its_own_recipient(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await gated_session(server, api)
    GatedEngine.fail_once = {"a1"}
    release("b1", "b2", "a1", "a2")
    async with EventWatcher(server.services.bus) as watcher:
        ids = await queue(api, (ANA, "a1"), (ANA, "a2"), (BIA, "b1"), (BIA, "b2"))
        await watcher.wait_for(message_status(ids[3], "sent"))
        assert GatedEngine.started == ["a1", "b1", "b2"]  # a1 waits for its retry, a2 for a1
        for message_id in ids:
            await watcher.wait_for(message_status(message_id, "sent"), timeout=10)
    assert GatedEngine.started == ["a1", "b1", "b2", "a1", "a2"]


async def test_stopping_lets_the_engines_sends_end_and_starts_no_other(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await gated_session(server, api)
    texts = [f"s{n}" for n in range(10)]
    ids = await queue(api, *((f"55119333{n:05d}", text) for n, text in enumerate(texts)))
    await started(*texts[:4])
    sender = server.services.sessions._running[("default", "many")].sender
    stopping = asyncio.create_task(sender.stop(finish_seconds=5.0))
    await asyncio.sleep(0)  # the stop is under way
    release(*texts)
    await stopping
    assert sorted(GatedEngine.started) == sorted(texts[:4])  # nothing after the stop began
    statuses = [(await api.get(f"/api/v1/messages/{i}")).json()["status"] for i in ids]
    assert statuses[:4] == ["sent"] * 4  # what the engine had was recorded
    assert statuses[4:] == ["queued"] * 6  # the rest waits for the next owner


async def test_a_message_waiting_its_turn_can_be_cancelled_and_is_never_sent(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await gated_session(server, api)
    first, second = await queue(api, (ANA, "w1"), (ANA, "w2"))
    await started("w1")
    busy = await api.delete(f"/api/v1/messages/{first}")
    assert busy.status_code == 409  # the engine has it
    cancelled = await api.delete(f"/api/v1/messages/{second}")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    async with EventWatcher(server.services.bus) as watcher:
        release("w1", "w2")
        await watcher.wait_for(message_status(first, "sent"))
    assert "w2" not in GatedEngine.started
    assert (await api.get(f"/api/v1/messages/{second}")).json()["status"] == "cancelled"
