"""Sinks through the API against the real RabbitMQ, NATS JetStream and Redis: every event once
per sink and in order per session; a 30 s outage (a proxy cut in front of each broker) loses
nothing and keeps the order; a broker refusing the credentials turns its sink off with a
reason; replay from a seq; credentials are never shown; internal brokers need the allowlist."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import nats
import orjson
import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa

from tests.conftest import (
    AUTH,
    RunningServer,
    make_settings,
    nats_reason,
    rabbitmq_reason,
    redis_reason,
    require_service,
    serve,
)
from tests.support.events import EventWatcher
from tests.support.tcp_proxy import TcpProxy
from tests.test_webhooks import inbound, working
from zapgate.config import Settings
from zapgate.db.tables import webhooks
from zapgate.services import build_services
from zapgate.webhooks import repository

pytestmark = [pytest.mark.rabbitmq, pytest.mark.nats, pytest.mark.redis]
SESSIONS = ("default", "second")
OUTAGE_SECONDS = 30.0
RABBIT = ("127.0.0.1", 5672)
NATS = ("127.0.0.1", 4222)
REDIS = ("127.0.0.1", 6379)


@pytest.fixture(autouse=True)
async def brokers() -> None:
    for reason in (await rabbitmq_reason(), await nats_reason(), await redis_reason()):
        require_service(reason)


@pytest.fixture
def server_settings(tmp_path: Path) -> Settings:
    # tries every second for a minute: longer than the outage
    schedule = (0, 0.2, 0.5, *([1.0] * 60))
    return make_settings(tmp_path, sink_allowlist="127.0.0.1", sink_retry_schedule=schedule)


@dataclass
class Names:
    """Unique broker names for one test (brokers outlive it)."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    @property
    def exchange(self) -> str:
        return f"zg-test-{self.tag}"

    @property
    def stream(self) -> str:
        return f"ZGTEST_{self.tag}"

    @property
    def subject(self) -> str:
        return f"zgt{self.tag}.{{tenant}}.{{session}}.{{type}}"

    @property
    def key(self) -> str:
        return f"zgt:{self.tag}:{{session}}"


async def second_session(api: httpx.AsyncClient, server: RunningServer) -> None:
    created = await api.post("/api/v1/sessions", json={"name": "second"})
    assert created.status_code == 201, created.text
    await working(server, "second")


async def create_sinks(
    api: httpx.AsyncClient, names: Names, rabbit: str, nats_url: str, redis_url: str
) -> dict[str, str]:
    common = {"events": ["message.received"], "sessions": list(SESSIONS)}
    bodies = {
        "rabbitmq": {"type": "rabbitmq", "url": rabbit, "exchange": names.exchange},
        "nats": {"type": "nats", "url": nats_url, "subject": names.subject, "stream": names.stream},
        "redis": {"type": "redis", "url": redis_url, "stream": names.key, "maxlen": 10_000},
    }
    ids = {}
    for kind, body in bodies.items():
        made = await api.post("/api/v1/sinks", json={**body, **common})
        assert made.status_code == 201, made.text
        assert made.json()["url"].count("@") == 0, "credentials shown"
        ids[kind] = made.json()["id"]
    return ids


class RabbitQueue:
    """A queue bound to the test's exchange (declared like zapgate does) before anything goes."""

    def __init__(self, exchange: str) -> None:
        self._exchange = exchange
        self.bodies: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self._connection: Any = None

    async def __aenter__(self) -> RabbitQueue:
        self._connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
        channel = await self._connection.channel()
        exchange = await channel.declare_exchange(
            self._exchange, aio_pika.ExchangeType.TOPIC, durable=True, auto_delete=False
        )
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, routing_key="zapgate.default.#")
        await queue.bind(exchange, routing_key="zapgate.*.second.#")
        await queue.consume(self._take, no_ack=True)
        return self

    async def _take(self, message: Any) -> None:
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        self.bodies.append(orjson.loads(message.body))
        self.arrived.set()

    async def __aexit__(self, *exc: object) -> None:
        channel = await self._connection.channel()
        await channel.exchange_delete(self._exchange)
        await self._connection.close()


async def nats_bodies(stream: str) -> list[dict[str, Any]]:
    client = await nats.connect("nats://127.0.0.1:4222")
    try:
        js = client.jetstream()
        info = await js.stream_info(stream)
        found = [
            orjson.loads((await js.get_msg(stream, seq)).data or b"{}")
            for seq in range(info.state.first_seq, info.state.last_seq + 1)
        ]
        await js.delete_stream(stream)
        return found
    finally:
        await client.close()


async def redis_bodies(names: Names) -> list[dict[str, Any]]:
    client = aioredis.from_url("redis://127.0.0.1:6379/0")
    try:
        found = []
        for session in SESSIONS:
            key = names.key.replace("{session}", session)
            found += [orjson.loads(fields[b"event"]) for _id, fields in await client.xrange(key)]
            await client.delete(key)
        return found
    finally:
        await client.aclose()


async def delivered(server: RunningServer, sink_ids: dict[str, str], count: int) -> None:
    """Wait until each sink has ``count`` deliveries and none pending (awaiting recorded
    attempts: an event committed but not yet planned has no delivery yet)."""
    dispatcher, database = server.services.dispatcher, server.services.database
    async with asyncio.timeout(OUTAGE_SECONDS * 3):
        while True:
            seen = dispatcher.attempts
            counts = [
                await repository.count_by_status(database, "default", sink)
                for sink in sink_ids.values()
            ]
            if all(not c.get("pending") and sum(c.values()) >= count for c in counts):
                return
            await dispatcher.recorded_beyond(seen)


def check_once_in_order(bodies: list[dict[str, Any]], expected: list[str], what: str) -> None:
    """Each expected event exactly once, and each session's in seq order."""
    ids = [body["id"] for body in bodies]
    assert sorted(ids) == sorted(expected), what
    for session in SESSIONS:
        seqs = [body["seq"] for body in bodies if body["session"] == session]
        assert seqs == sorted(seqs), f"{what}: {session} out of order"


def check_nothing_lost_in_order(
    bodies: list[dict[str, Any]], expected: list[str], what: str
) -> None:
    """Each expected event at least once (a publish cut before its confirmation may be
    repeated), and each session's first copies in seq order."""
    first: dict[str, dict[str, Any]] = {}
    for body in bodies:
        first.setdefault(body["id"], body)
    assert set(first) == set(expected), f"{what}: lost {set(expected) - set(first)}"
    for session in SESSIONS:
        seqs = [body["seq"] for body in first.values() if body["session"] == session]
        assert seqs == sorted(seqs), f"{what}: {session} out of order"


async def produce(api: httpx.AsyncClient, server: RunningServer, count: int) -> list[str]:
    """``count`` inbound messages over both sessions; their message.received event ids."""
    ids: list[str] = []
    async with EventWatcher(server.services.bus) as watcher:
        for index in range(count):
            session = SESSIONS[index % 2]
            message_id = await inbound(api, f"m{index}", session)
            found = await watcher.wait_for(
                lambda e, m=message_id: e.type == "message.received" and e.payload["id"] == m
            )
            ids.append(found.id)
    return ids


async def test_every_event_goes_once_to_each_broker_in_order_per_session(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await working(server)
    await second_session(api, server)
    names = Names()
    async with RabbitQueue(names.exchange) as queue:
        sinks = await create_sinks(
            api,
            names,
            "amqp://guest:guest@127.0.0.1:5672/",
            "nats://127.0.0.1:4222",
            "redis://127.0.0.1:6379/0",
        )
        expected = await produce(api, server, 40)
        await delivered(server, sinks, len(expected))
        check_once_in_order(queue.bodies, expected, "rabbitmq")
    check_once_in_order(await nats_bodies(names.stream), expected, "nats")
    check_once_in_order(await redis_bodies(names), expected, "redis")
    listed = (await api.get("/api/v1/sinks")).json()
    assert {sink["type"] for sink in listed} == {"rabbitmq", "nats", "redis"}
    assert all("guest" not in sink["url"] for sink in listed)
    metrics = (await api.get("/metrics")).text
    for kind in ("rabbitmq", "nats", "redis"):
        line = f'zapgate_sink_deliveries_total{{kind="{kind}",result="succeeded"}} 40.0'
        assert line in metrics, kind
    assert 'zapgate_webhook_deliveries_total{result="succeeded"}' not in metrics
    page = (await api.get(f"/api/v1/sinks/{sinks['nats']}/deliveries")).json()["data"]
    assert {d["status"] for d in page} == {"succeeded"}
    assert page[0]["sink_id"] == sinks["nats"]


async def test_a_30_second_outage_loses_nothing_and_keeps_the_order(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await working(server)
    await second_session(api, server)
    names = Names()
    proxies = [TcpProxy(*RABBIT), TcpProxy(*NATS), TcpProxy(*REDIS)]
    for proxy in proxies:
        await proxy.start()
    rabbit, nats_proxy, redis_proxy = (proxy.port for proxy in proxies)
    try:
        async with RabbitQueue(names.exchange) as queue:
            sinks = await create_sinks(
                api,
                names,
                f"amqp://guest:guest@127.0.0.1:{rabbit}/",
                f"nats://127.0.0.1:{nats_proxy}",
                f"redis://127.0.0.1:{redis_proxy}/0",
            )
            expected = await produce(api, server, 6)
            await delivered(server, sinks, len(expected))
            cut_at = time.monotonic()
            for proxy in proxies:
                await proxy.cut()
            expected += await produce(api, server, 24)
            dispatcher = server.services.dispatcher
            failing = dispatcher.attempts
            await dispatcher.recorded_beyond(failing + 6)  # each sink tried and failed
            await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut_at)))
            for proxy in proxies:
                proxy.restore()
            await delivered(server, sinks, len(expected))
            check_nothing_lost_in_order(queue.bodies, expected, "rabbitmq")
        check_once_in_order(await nats_bodies(names.stream), expected, "nats")  # Nats-Msg-Id
        check_nothing_lost_in_order(await redis_bodies(names), expected, "redis")
        for sink in sinks.values():
            found = (await api.get(f"/api/v1/sinks/{sink}")).json()
            assert found["active"] is True
            assert found["disabled_reason"] is None
            failed = await api.get(f"/api/v1/sinks/{sink}/deliveries", params={"limit": 200})
            retried = [d for d in failed.json()["data"] if d["attempts"] > 1]
            assert retried, "the outage made no delivery try again"
    finally:
        for proxy in proxies:
            await proxy.stop()


async def test_refused_credentials_turn_the_sink_off_with_a_reason(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, sink_allowlist="127.0.0.1", sink_retry_schedule=(0, 0.1, 0.2)
    )
    async with (
        serve(build_services(settings)) as server,
        httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=10) as api,
    ):
        await working(server)
        body = {
            "type": "rabbitmq",
            "url": "amqp://guest:wrong-password@127.0.0.1:5672/",
            "events": ["message.received"],
        }
        made = await api.post("/api/v1/sinks", json=body)
        assert made.status_code == 201, made.text
        assert "wrong-password" not in made.text
        async with EventWatcher(server.services.bus) as watcher:
            await inbound(api, "x")
            disabled = await watcher.wait_for(lambda e: e.type == "sink.disabled", timeout=20)
        assert disabled.payload == {
            "sink_id": made.json()["id"],
            "type": "rabbitmq",
            "reason": "the broker refused the credentials",
        }
        found = (await api.get(f"/api/v1/sinks/{made.json()['id']}")).json()
        assert found["active"] is False
        assert found["disabled_reason"] == "the broker refused the credentials"
        page = (await api.get(f"/api/v1/sinks/{made.json()['id']}/deliveries")).json()["data"]
        assert [(d["status"], d["attempts"]) for d in page] == [("failed", 3)]
        async with server.services.database.connect() as connection:
            stored = (await connection.execute(sa.select(webhooks.c.config))).scalars().all()
        assert "wrong-password" not in str(stored), "the broker URL is stored in the clear"


async def test_replay_publishes_again_from_a_seq(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await working(server)
    await second_session(api, server)
    names = Names()
    body = {"type": "redis", "url": "redis://127.0.0.1:6379/0", "stream": names.key}
    made = await api.post("/api/v1/sinks", json={**body, "events": ["message.received"]})
    sink = made.json()["id"]
    expected = await produce(api, server, 6)
    await delivered(server, {"redis": sink}, 6)
    events = (await api.get("/api/v1/events", params={"type": "message.received"})).json()
    third = next(e for e in events["data"] if e["id"] == expected[2])
    replayed = await api.post(f"/api/v1/sinks/{sink}/replay", json={"after_seq": third["seq"]})
    assert replayed.status_code == 202, replayed.text
    assert replayed.json() == {"replayed": 3}
    await delivered(server, {"redis": sink}, 9)
    bodies = [b["id"] for b in await redis_bodies(names)]
    assert sorted(bodies) == sorted(expected + expected[3:])
    both = await api.post(f"/api/v1/sinks/{sink}/replay", json={"after_seq": 1, "since": "2020"})
    assert both.status_code == 422


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"type": "redis", "url": "redis://10.0.0.5:6379/0"}, "unsafe_url"),
        ({"type": "redis", "url": "http://127.0.0.1:6379/"}, "invalid_input"),
        ({"type": "nats", "url": "nats://127.0.0.1:4222", "subject": "{tenant}.x"}, "invalid_sink"),
        ({"type": "redis", "url": "redis://127.0.0.1:6379", "stream": "z:{room}"}, "invalid_sink"),
        ({"type": "redis", "url": "rediss://127.0.0.1/0?ssl_cert_reqs=none"}, "invalid_sink"),
    ],
    ids=[
        "internal-address",
        "wrong-scheme",
        "subject-starts-open",
        "unknown-placeholder",
        "url-options",
    ],
)
async def test_bad_sinks_are_refused_with_a_clear_error(
    api: httpx.AsyncClient, body: dict[str, Any], code: str
) -> None:
    refused = await api.post("/api/v1/sinks", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == code
    assert (await api.get("/api/v1/sinks")).json() == []


async def test_a_sink_s_broker_address_needs_the_allowlist(tmp_path: Path) -> None:
    async with (
        serve(build_services(make_settings(tmp_path))) as server,
        httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=10) as api,
    ):
        refused = await api.post(
            "/api/v1/sinks", json={"type": "nats", "url": "nats://127.0.0.1:4222"}
        )
    assert refused.status_code == 422
    assert refused.json()["error"] == "unsafe_url"
    assert "ZAPGATE_SINK_ALLOWLIST" in refused.json()["detail"]


async def test_a_nats_sink_whose_subject_changes_keeps_publishing(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await working(server)
    await second_session(api, server)
    names = Names()
    body = {"type": "nats", "url": "nats://127.0.0.1:4222", "stream": names.stream}
    made = await api.post(
        "/api/v1/sinks", json={**body, "subject": names.subject, "events": ["message.received"]}
    )
    sink = made.json()["id"]
    expected = await produce(api, server, 2)
    await delivered(server, {"nats": sink}, 2)
    moved = f"zgt{names.tag}moved.{{session}}.{{type}}"
    changed = await api.patch(f"/api/v1/sinks/{sink}", json={"subject": moved})
    assert changed.status_code == 200, changed.text
    assert changed.json()["subject"] == moved
    bad = await api.patch(f"/api/v1/sinks/{sink}", json={"stream": "no.dots"})
    assert bad.status_code == 422
    expected += await produce(api, server, 2)
    await delivered(server, {"nats": sink}, 4)
    check_once_in_order(await nats_bodies(names.stream), expected, "nats")
    found = (await api.get(f"/api/v1/sinks/{sink}")).json()
    assert found["active"] is True


async def test_a_rabbitmq_event_no_queue_takes_fails_at_once_and_holds_up_nothing(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    """Published mandatory: with no queue bound, RabbitMQ returns the event, and its delivery
    fails at once saying why (not retried, so the session's next events are not held up, and
    the sink stays on); once a queue is bound, a retry sends it, and new events arrive."""
    await working(server)
    await second_session(api, server)
    names = Names()
    body = {"type": "rabbitmq", "url": "amqp://guest:guest@127.0.0.1:5672/"}
    made = await api.post(
        "/api/v1/sinks",
        json={**body, "exchange": names.exchange, "events": ["message.received"]},
    )
    assert made.status_code == 201, made.text
    assert made.json()["mandatory"] is True
    sink = made.json()["id"]
    first = await produce(api, server, 2)
    await delivered(server, {"rabbitmq": sink}, 2)
    returned = (await api.get(f"/api/v1/sinks/{sink}/deliveries")).json()["data"]
    assert [(d["status"], d["attempts"]) for d in returned] == [("failed", 1)] * 2
    assert returned[0]["last_error"].startswith("no queue is bound to take the routing key")
    shown = (await api.get(f"/api/v1/sinks/{sink}")).json()
    assert (shown["active"], shown["consecutive_failures"]) == (True, 0)
    async with RabbitQueue(names.exchange) as queue:
        oldest = min(returned, key=lambda d: d["event_seq"])
        retried = await api.post(f"/api/v1/sinks/{sink}/deliveries/{oldest['id']}/retry")
        assert retried.status_code == 202, retried.text
        later = await produce(api, server, 1)
        await delivered(server, {"rabbitmq": sink}, 3)
        while len(queue.bodies) < 2:
            queue.arrived.clear()
            await asyncio.wait_for(queue.arrived.wait(), 10)
    assert [b["id"] for b in queue.bodies] == [first[0], *later]
    dropped = await api.patch(f"/api/v1/sinks/{sink}", json={"mandatory": False})
    assert dropped.json()["mandatory"] is False
