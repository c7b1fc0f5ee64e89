"""The broker adapters against the real RabbitMQ, NATS JetStream and Redis: what a consumer reads
back, how refusals and outages show, and that a publish after an outage reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import aio_pika
import nats
import nats.js.errors
import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractConnection
from nats.js import JetStreamContext
from nats.js.api import StorageType

from tests.conftest import (
    NATS_URL,
    RABBITMQ_URL,
    REDIS_URL,
    free_port,
    nats_reason,
    rabbitmq_reason,
    redis_reason,
    require_service,
)
from tests.support.tcp_proxy import TcpProxy
from zapgate.sinks.brokers import Broker, BrokerError, open_broker

TIMEOUT = 2.0
MARGIN = 1.5
"""Slack over TIMEOUT for a failed publish (dropping the connection included)."""


async def guard(host: str, port: int) -> str:
    return "127.0.0.1"


def body_of(n: int) -> bytes:
    return b'{"type":"message.received","n":%d}' % n


def headers_of(n: int) -> dict[str, str]:
    return {"zapgate-tenant": "acme", "zapgate-seq": str(n), "zapgate-type": "message.received"}


async def quiet(*_: Any) -> None:
    pass


@pytest.fixture
async def amqp() -> AsyncIterator[AbstractConnection]:
    """A consumer's connection to RabbitMQ."""
    require_service(await rabbitmq_reason())
    connection = await aio_pika.connect(RABBITMQ_URL, timeout=5)
    yield connection
    await connection.close()


@pytest.fixture
async def js() -> AsyncIterator[JetStreamContext]:
    """A reader's JetStream context."""
    require_service(await nats_reason())
    client = await nats.connect(NATS_URL, allow_reconnect=False, error_cb=quiet)
    yield client.jetstream(timeout=5)
    await client.close()


@pytest.fixture
async def rdb() -> AsyncIterator[aioredis.Redis]:
    """A reader's Redis client."""
    require_service(await redis_reason())
    client = aioredis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def brokers() -> AsyncIterator[list[Broker]]:
    """Brokers a test opens; closed at the end."""
    opened: list[Broker] = []
    yield opened
    for broker in opened:
        await broker.close()


@pytest.fixture
def open_(brokers: list[Broker]) -> Callable[..., Broker]:
    def opener(kind: str, config: dict[str, Any], guard_: Any = guard) -> Broker:
        broker = open_broker(kind, config, guard_, TIMEOUT)
        brokers.append(broker)
        return broker

    return opener


@pytest.fixture
async def proxy_to() -> AsyncIterator[Callable[[int], Awaitable[TcpProxy]]]:
    proxies: list[TcpProxy] = []

    async def start(port: int) -> TcpProxy:
        proxy = TcpProxy("127.0.0.1", port)
        await proxy.start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        await proxy.stop()


async def fails(publish: Awaitable[None]) -> BrokerError:
    """The BrokerError ``publish`` raises, checking it comes within the timeout."""
    started = time.monotonic()
    with pytest.raises(BrokerError) as caught:
        await publish
    assert time.monotonic() - started < TIMEOUT + MARGIN
    return caught.value


async def outage(broker: Broker, proxy: TcpProxy, target: str) -> BrokerError:
    """Publish m1 before, m2 during (failing) and m3 after an outage; the error of m2."""
    await broker.publish(target, body_of(1), "m1", headers_of(1))
    await proxy.cut()
    error = await fails(broker.publish(target, body_of(2), "m2", headers_of(2)))
    proxy.restore()
    connections = proxy.accepted
    await broker.publish(target, body_of(3), "m3", headers_of(3))
    assert proxy.accepted == connections + 1  # m3 went over a new connection
    return error


def unique() -> str:
    return uuid.uuid4().hex[:12]


# RabbitMQ


async def bound_queue(connection: AbstractConnection, exchange: str) -> aio_pika.abc.AbstractQueue:
    channel = await connection.channel()
    await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, "zapgate.#")
    return queue


async def delete_exchange(connection: AbstractConnection, exchange: str) -> None:
    channel = await connection.channel()
    await channel.exchange_delete(exchange)
    await channel.close()


async def drain(
    queue: aio_pika.abc.AbstractQueue, count: int
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    messages = []
    async with queue.iterator() as stream:
        async for message in stream:
            await message.ack()
            messages.append(message)
            if len(messages) == count:
                break
    return messages


@pytest.mark.rabbitmq
async def test_rabbitmq_messages_arrive_in_order_persistent_with_ids_and_headers(
    amqp: AbstractConnection, open_: Callable[..., Broker]
) -> None:
    exchange = f"zg-test-{unique()}"
    queue = await bound_queue(amqp, exchange)
    broker = open_("rabbitmq", {"url": RABBITMQ_URL, "exchange": exchange})
    try:
        for n in range(20):
            await broker.publish("zapgate.acme.s1.message", body_of(n), f"id-{n}", headers_of(n))
        got = await asyncio.wait_for(drain(queue, 20), 10)
    finally:
        await delete_exchange(amqp, exchange)
    assert [m.body for m in got] == [body_of(n) for n in range(20)]
    assert [m.message_id for m in got] == [f"id-{n}" for n in range(20)]
    assert [m.headers for m in got] == [headers_of(n) for n in range(20)]
    assert {m.delivery_mode for m in got} == {aio_pika.DeliveryMode.PERSISTENT}
    assert {m.content_type for m in got} == {"application/json"}
    assert {m.routing_key for m in got} == {"zapgate.acme.s1.message"}


@pytest.mark.rabbitmq
async def test_rabbitmq_declares_a_durable_topic_exchange(
    amqp: AbstractConnection, open_: Callable[..., Broker]
) -> None:
    exchange = f"zg-test-{unique()}"
    config = {"url": RABBITMQ_URL, "exchange": exchange, "mandatory": False}
    broker = open_("rabbitmq", config)
    await broker.publish("zapgate.x", body_of(1), "m1", {})  # no queue: confirmed and dropped
    try:
        channel = await amqp.channel()
        await channel.declare_exchange(  # passive: fails unless it exists
            exchange, aio_pika.ExchangeType.TOPIC, durable=True, passive=True
        )
    finally:
        await delete_exchange(amqp, exchange)


@pytest.mark.rabbitmq
async def test_rabbitmq_a_message_no_queue_takes_fails_and_keeps_the_connection(
    amqp: AbstractConnection,
    open_: Callable[..., Broker],
    proxy_to: Callable[[int], Awaitable[TcpProxy]],
) -> None:
    """Published mandatory (by default): RabbitMQ returns what no binding takes, and the
    publish fails (``returned``) instead of being confirmed and dropped unseen; the connection
    stays, for the lanes that share it."""
    exchange = f"zg-test-{unique()}"
    proxy = await proxy_to(5672)
    url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
    broker = open_("rabbitmq", {"url": url, "exchange": exchange})
    try:
        error = await fails(broker.publish("zapgate.acme.s1.message", body_of(1), "m1", {}))
        assert error.returned
        assert not error.refused
        assert str(error).startswith("no queue is bound to take the routing key on exchange")
        assert "NO_ROUTE" in str(error)
        queue = await bound_queue(amqp, exchange)
        await broker.publish("zapgate.acme.s1.message", body_of(1), "m1", {})  # tried again
        got = await asyncio.wait_for(drain(queue, 1), 10)
    finally:
        await delete_exchange(amqp, exchange)
    assert [m.message_id for m in got] == ["m1"]
    assert proxy.accepted == 1  # the return did not cost the connection


@pytest.mark.rabbitmq
async def test_rabbitmq_wrong_password_is_a_refusal_that_names_no_password(
    amqp: AbstractConnection, open_: Callable[..., Broker]
) -> None:
    url = "amqp://guest:s3cret-Wrong@127.0.0.1:5672/"
    broker = open_("rabbitmq", {"url": url, "exchange": f"zg-test-{unique()}"})
    error = await fails(broker.publish("zapgate.x", body_of(1), "m1", {}))
    assert error.refused
    assert str(error) == "the broker refused the credentials"
    assert "s3cret" not in repr(error)


@pytest.mark.rabbitmq
async def test_rabbitmq_an_exchange_of_another_type_is_a_clear_error(
    amqp: AbstractConnection, open_: Callable[..., Broker]
) -> None:
    exchange = f"zg-test-{unique()}"
    channel = await amqp.channel()
    await channel.declare_exchange(exchange, aio_pika.ExchangeType.DIRECT, durable=True)
    try:
        broker = open_("rabbitmq", {"url": RABBITMQ_URL, "exchange": exchange})
        error = await fails(broker.publish("zapgate.x", body_of(1), "m1", {}))
    finally:
        await delete_exchange(amqp, exchange)
    assert not error.refused
    assert "must be a durable topic exchange" in str(error)
    assert "current is 'direct'" in str(error)


@pytest.mark.rabbitmq
async def test_rabbitmq_an_outage_fails_one_publish_and_the_next_reconnects(
    amqp: AbstractConnection,
    open_: Callable[..., Broker],
    proxy_to: Callable[[int], Awaitable[TcpProxy]],
) -> None:
    exchange = f"zg-test-{unique()}"
    queue = await bound_queue(amqp, exchange)
    proxy = await proxy_to(5672)
    url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
    broker = open_("rabbitmq", {"url": url, "exchange": exchange})
    try:
        error = await outage(broker, proxy, "zapgate.acme.s1.message")
        got = await asyncio.wait_for(drain(queue, 2), 10)
    finally:
        await delete_exchange(amqp, exchange)
    assert not error.refused
    assert [m.message_id for m in got] == ["m1", "m3"]


# NATS JetStream


@pytest.fixture
async def stream(js: JetStreamContext) -> AsyncIterator[tuple[str, str]]:
    """A unique stream name and subject prefix; the stream is deleted at the end."""
    token = unique()
    yield f"ZGTEST_{token}", f"zgtest.{token}"
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_stream(f"ZGTEST_{token}")


def nats_config(stream: tuple[str, str], url: str = NATS_URL) -> dict[str, Any]:
    return {"url": url, "stream": stream[0], "subjects": [f"{stream[1]}.>"]}


@pytest.mark.nats
async def test_nats_creates_the_stream_and_messages_arrive_in_order_with_ids_and_headers(
    js: JetStreamContext, stream: tuple[str, str], open_: Callable[..., Broker]
) -> None:
    broker = open_("nats", nats_config(stream))
    subject = f"{stream[1]}.acme.s1"
    for n in range(20):
        await broker.publish(subject, body_of(n), f"id-{n}", headers_of(n))
    info = await js.stream_info(stream[0])
    assert info.config.storage == StorageType.FILE
    assert info.config.subjects == [f"{stream[1]}.>"]
    assert info.state.messages == 20
    got = [await js.get_msg(stream[0], seq) for seq in range(1, 21)]
    assert [m.data for m in got] == [body_of(n) for n in range(20)]
    assert [m.subject for m in got] == [subject] * 20
    assert [m.headers for m in got] == [
        {**headers_of(n), "Nats-Msg-Id": f"id-{n}"} for n in range(20)
    ]


@pytest.mark.nats
async def test_nats_a_republished_message_id_is_stored_once(
    js: JetStreamContext, stream: tuple[str, str], open_: Callable[..., Broker]
) -> None:
    broker = open_("nats", nats_config(stream))
    subject = f"{stream[1]}.acme.s1"
    await broker.publish(subject, body_of(1), "same-id", headers_of(1))
    await broker.publish(subject, body_of(1), "same-id", headers_of(1))
    await broker.publish(subject, body_of(2), "other-id", headers_of(2))
    assert (await js.stream_info(stream[0])).state.messages == 2


@pytest.mark.nats
async def test_nats_a_subject_no_stream_takes_is_a_clear_error(
    js: JetStreamContext, stream: tuple[str, str], open_: Callable[..., Broker]
) -> None:
    broker = open_("nats", nats_config(stream))
    error = await fails(broker.publish(f"elsewhere.{unique()}", body_of(1), "m1", {}))
    assert str(error) == "no JetStream stream takes this subject"
    assert not error.refused


@pytest.mark.nats
async def test_nats_an_outage_fails_one_publish_and_the_next_reconnects(
    js: JetStreamContext,
    stream: tuple[str, str],
    open_: Callable[..., Broker],
    proxy_to: Callable[[int], Awaitable[TcpProxy]],
) -> None:
    proxy = await proxy_to(4222)
    broker = open_("nats", nats_config(stream, f"nats://127.0.0.1:{proxy.port}"))
    error = await outage(broker, proxy, f"{stream[1]}.acme.s1")
    assert not error.refused
    got = [await js.get_msg(stream[0], seq) for seq in (1, 2)]
    assert [m.headers["Nats-Msg-Id"] for m in got if m.headers] == ["m1", "m3"]


NATS_ACCOUNTS = """
listen: 127.0.0.1:%(port)d
jetstream { store_dir: "%(store)s" }
authorization { users = [
  { user: zg, password: right-pass, permissions: { publish: { deny: ["denied.>"] } } }
] }
"""


@pytest.fixture
async def nats_with_password(tmp_path: Path) -> AsyncIterator[int]:
    """A second nats-server with JetStream and user zg (password right-pass, who may not publish
    to denied.>) on a free port."""
    require_service(None if shutil.which("nats-server") else "nats-server is not installed")
    port = free_port()
    config = tmp_path / "nats.conf"
    config.write_text(NATS_ACCOUNTS % {"port": port, "store": tmp_path / "js"})
    process = await asyncio.create_subprocess_exec(
        "nats-server", "-c", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        async with asyncio.timeout(10):
            while b"Server is ready" not in await process.stderr.readline():
                pass
        yield port
    finally:
        process.terminate()
        await process.wait()


@pytest.mark.nats
async def test_nats_wrong_password_is_a_refusal_that_names_no_password(
    nats_with_password: int, open_: Callable[..., Broker]
) -> None:
    url = f"nats://zg:s3cret-Wrong@127.0.0.1:{nats_with_password}"
    broker = open_("nats", {"url": url, "stream": "ZG", "subjects": ["zg.>"]})
    error = await fails(broker.publish("zg.x", body_of(1), "m1", {}))
    assert error.refused
    assert str(error) == "the broker refused the credentials"
    assert "s3cret" not in repr(error)


@pytest.mark.nats
async def test_nats_a_denied_subject_is_a_refusal_without_waiting_for_the_timeout(
    nats_with_password: int, open_: Callable[..., Broker]
) -> None:
    url = f"nats://zg:right-pass@127.0.0.1:{nats_with_password}"
    allowed = open_("nats", {"url": url, "stream": "OK", "subjects": ["ok.>"]})
    await allowed.publish("ok.x", body_of(1), "m1", {})
    denied = open_("nats", {"url": url, "stream": "DENIED", "subjects": ["denied.>"]})
    started = time.monotonic()
    error = await fails(denied.publish("denied.x", body_of(1), "m1", {}))
    assert time.monotonic() - started < TIMEOUT
    assert error.refused
    assert str(error) == "the broker refused access (permissions violation)"


@pytest.mark.nats
async def test_nats_connection_refused_is_reported_as_such(open_: Callable[..., Broker]) -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    broker = open_("nats", {"url": url, "stream": "ZG", "subjects": ["zg.>"]})
    error = await fails(broker.publish("zg.x", body_of(1), "m1", {}))
    assert str(error) == "could not connect: connection refused"
    assert not error.refused


# Redis Streams


async def entries_of(rdb: aioredis.Redis, key: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    return cast(list[tuple[bytes, dict[bytes, bytes]]], await rdb.xrange(key))


@pytest.fixture
async def key(rdb: aioredis.Redis) -> AsyncIterator[str]:
    name = f"zgtest:{unique()}"
    yield name
    await rdb.delete(name)


@pytest.mark.redis
async def test_redis_entries_arrive_in_order_with_ids_and_headers(
    rdb: aioredis.Redis, key: str, open_: Callable[..., Broker]
) -> None:
    broker = open_("redis", {"url": REDIS_URL, "maxlen": 1000})
    for n in range(20):
        await broker.publish(key, body_of(n), f"id-{n}", {**headers_of(n), "id": "ignored"})
    entries = await entries_of(rdb, key)
    assert [fields for _, fields in entries] == [
        {
            b"id": f"id-{n}".encode(),
            b"event": body_of(n),
            **{k.encode(): v.encode() for k, v in headers_of(n).items()},
        }
        for n in range(20)
    ]
    assert list(entries[0][1])[:2] == [b"id", b"event"]


@pytest.mark.redis
async def test_redis_maxlen_trims_the_stream(
    rdb: aioredis.Redis, key: str, open_: Callable[..., Broker]
) -> None:
    broker = open_("redis", {"url": REDIS_URL, "maxlen": 10})
    for n in range(300):
        await broker.publish(key, body_of(n), f"id-{n}", {})
    length = await rdb.xlen(key)
    assert 10 <= length < 300  # "~": Redis trims whole nodes of entries, keeping at least 10
    last: Any = await rdb.xrevrange(key, count=1)
    assert last[0][1][b"id"] == b"id-299"


@pytest.mark.redis
async def test_redis_wrong_password_is_a_refusal_that_names_no_password(
    rdb: aioredis.Redis, key: str, open_: Callable[..., Broker]
) -> None:
    url = "redis://zg-nobody:s3cret-Wrong@127.0.0.1:6379/0"  # AUTH of a user that does not exist
    broker = open_("redis", {"url": url, "maxlen": 10})
    error = await fails(broker.publish(key, body_of(1), "m1", {}))
    assert error.refused
    assert str(error) == "the broker refused the credentials"
    assert "s3cret" not in repr(error)


@pytest.mark.redis
async def test_redis_a_key_that_is_not_a_stream_is_a_clear_error(
    rdb: aioredis.Redis, key: str, open_: Callable[..., Broker]
) -> None:
    await rdb.set(key, "a string")
    broker = open_("redis", {"url": REDIS_URL, "maxlen": 10})
    error = await fails(broker.publish(key, body_of(1), "m1", {}))
    assert str(error) == "the key holds a value that is not a stream"


@pytest.mark.redis
async def test_redis_an_outage_fails_one_publish_and_the_next_reconnects(
    rdb: aioredis.Redis,
    key: str,
    open_: Callable[..., Broker],
    proxy_to: Callable[[int], Awaitable[TcpProxy]],
) -> None:
    proxy = await proxy_to(6379)
    broker = open_("redis", {"url": f"redis://127.0.0.1:{proxy.port}/0", "maxlen": 10})
    error = await outage(broker, proxy, key)
    assert not error.refused
    assert [fields[b"id"] for _, fields in await entries_of(rdb, key)] == [b"m1", b"m3"]


@pytest.mark.redis
async def test_redis_connection_refused_is_reported_as_such(
    open_: Callable[..., Broker],
) -> None:
    broker = open_("redis", {"url": f"redis://127.0.0.1:{free_port()}/0", "maxlen": 10})
    error = await fails(broker.publish("k", body_of(1), "m1", {}))
    assert str(error) == "could not connect: connection refused"


# All kinds


CONFIGS: dict[str, tuple[dict[str, Any], int]] = {  # kind: (config, the port the guard sees)
    "rabbitmq": ({"url": "amqp://guest:guest@broker.example/", "exchange": "zapgate"}, 5672),
    "nats": ({"url": "nats://broker.example:4333", "stream": "ZG", "subjects": ["zg.>"]}, 4333),
    "redis": ({"url": "rediss://broker.example/0", "maxlen": 10}, 6379),
}


@pytest.mark.parametrize("kind", sorted(CONFIGS))
async def test_an_address_the_guard_refuses_is_never_connected_to(
    kind: str, open_: Callable[..., Broker]
) -> None:
    asked: list[tuple[str, int]] = []

    async def refusing(host: str, port: int) -> str:
        asked.append((host, port))
        raise BrokerError("refused: the address is not allowed")

    config, port = CONFIGS[kind]
    broker = open_(kind, config, refusing)
    error = await fails(broker.publish("zg.x", body_of(1), "m1", {}))
    assert str(error) == "refused: the address is not allowed"
    assert asked == [("broker.example", port)]


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A port that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    for writer in held:
        writer.transport.abort()
    await server.wait_closed()


@pytest.mark.parametrize("kind", sorted(CONFIGS))
async def test_a_silent_server_times_out_within_the_timeout(
    kind: str, silent_port: int, open_: Callable[..., Broker]
) -> None:
    config = dict(CONFIGS[kind][0])
    scheme = config["url"].split(":")[0].replace("rediss", "redis")
    config["url"] = f"{scheme}://127.0.0.1:{silent_port}/"
    broker = open_(kind, config)
    error = await fails(broker.publish("zg.x", body_of(1), "m1", {}))
    assert str(error) == f"timed out after {TIMEOUT:g} s"
    assert not error.refused


def test_an_unknown_kind_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown broker kind"):
        open_broker("kafka", {}, guard, TIMEOUT)
