"""Cluster mode: request rates and failed authentications are counted in Redis, so several nodes
limit as one; while Redis is unreachable each node limits on its own, and counts in Redis again
once it answers."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import redis.asyncio as aioredis

from tests.conftest import (
    REDIS_URL,
    free_port,
    redis_reason,
    require_service,
    served_cluster,
)
from zapgate.errors import RateLimited
from zapgate.limits.buckets import Decision
from zapgate.limits.model import Limits
from zapgate.limits.service import LimitService
from zapgate.limits.shared import PREFIX, RETRY_SECONDS

pytestmark = pytest.mark.redis
SHARED_LOG = "zapgate.limits.shared"


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rates(per_second: float, burst: int) -> Limits:
    return Limits(
        rate_per_key=per_second,
        burst=burst,
        concurrent_per_key=0,
        sessions=0,
        webhooks=0,
        queued_per_session=0,
        streams_per_key=0,
    )


def node(
    redis_url: str | None, failures_per_minute: int = 0, clock: ManualClock | None = None
) -> LimitService:
    """A node's limits (no database: request rates and failures never read it)."""
    return LimitService(
        cast(Any, None),
        cast(Any, None),
        rates(0, 0),
        failures_per_minute,
        clock=clock or ManualClock(),
        redis_url=redis_url,
    )


@asynccontextmanager
async def nodes(*services: LimitService) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for service in services:
            await service.stop()


async def take(service: LimitService, limits: Limits, key: str) -> Decision | RateLimited:
    try:
        decision = await service.shared_take_request(limits, key)
    except RateLimited as refused:
        return refused
    assert decision is not None
    return decision


def reset_of(header: str | None) -> int:
    """The ``t`` (seconds until a token) of a ``RateLimit`` field."""
    assert header is not None
    return int(header.rpartition(";t=")[2])


def closed_redis_url() -> str:
    """A Redis URL where nothing listens."""
    return f"redis://127.0.0.1:{free_port()}/0"


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


async def test_two_nodes_allow_one_burst_per_key_not_one_each() -> None:
    require_service(await redis_reason())
    a, b = node(REDIS_URL), node(REDIS_URL)
    async with nodes(a, b):
        key, limits = unique("key"), rates(0.01, 4)
        answers = [await take(service, limits, key) for service in (a, b, a, b, a, b)]
        remaining = [d.remaining for d in answers if isinstance(d, Decision)]
        assert remaining == [3, 2, 1, 0]
        refused = [r for r in answers if isinstance(r, RateLimited)]
        assert len(refused) == 2
        for refusal in refused:
            assert refusal.headers["RateLimit"].startswith('"default";r=0;t=')
            assert 95 <= reset_of(refusal.headers["RateLimit"]) <= 100
            assert refusal.headers["Retry-After"] == str(reset_of(refusal.headers["RateLimit"]))
        assert isinstance(await take(b, limits, unique("other-key")), Decision)


async def test_concurrent_requests_on_two_nodes_take_exactly_the_burst() -> None:
    require_service(await redis_reason())
    a, b = node(REDIS_URL), node(REDIS_URL)
    async with nodes(a, b):
        key, limits = unique("key"), rates(0.01, 10)
        answers = await asyncio.gather(*(take(n, limits, key) for n in [a, b] * 20))
        assert sum(isinstance(answer, Decision) for answer in answers) == 10


async def test_the_shared_bucket_answers_as_the_local_one() -> None:
    require_service(await redis_reason())
    shared, local = node(REDIS_URL), node(None)
    async with nodes(shared):
        key, limits = unique("key"), rates(0.01, 3)
        for cost in (1, 2, 1, 5):
            expected = await take_costing(local, limits, key, cost)
            got = await take_costing(shared, limits, key, cost)
            assert type(got) is type(expected)
            if isinstance(got, Decision) and isinstance(expected, Decision):
                assert got.headers() == expected.headers()
            elif isinstance(got, RateLimited) and isinstance(expected, RateLimited):
                assert got.headers["RateLimit-Policy"] == expected.headers["RateLimit-Policy"]
                waits = reset_of(got.headers["RateLimit"]), reset_of(expected.headers["RateLimit"])
                assert 0 <= waits[1] - waits[0] <= 1, "Redis's clock ran on meanwhile"


async def take_costing(
    service: LimitService, limits: Limits, key: str, cost: int
) -> Decision | RateLimited | None:
    try:
        return await service.shared_take_request(limits, key, cost)
    except RateLimited as refused:
        return refused


async def test_buckets_are_namespaced_and_expire() -> None:
    require_service(await redis_reason())
    service = node(REDIS_URL)
    client = aioredis.from_url(REDIS_URL)
    async with nodes(service):
        key = unique("key")
        await service.shared_take_request(rates(2, 10), key)
        bucket = f"{PREFIX}key:{key}"
        assert bucket.startswith("zapgate:rl:")
        ttl_ms = await client.pttl(bucket)
        assert 5000 < ttl_ms <= 6000, "expires once full again (5 s at 2/s) plus a second"
        await client.delete(bucket)
        await client.aclose()


async def test_failed_authentications_are_counted_with_every_node() -> None:
    require_service(await redis_reason())
    a, b, c = (node(REDIS_URL, failures_per_minute=3) for _ in range(3))
    async with nodes(a, b, c):
        address = unique("203.0.113")
        await a.shared_record_failure(address)
        await b.shared_record_failure(address)
        assert await a.shared_address_blocked(address) is None
        await a.shared_record_failure(address)
        assert a.address_blocked(address) is not None, "a heard it from Redis"
        assert c.address_blocked(address) is None, "c has not asked yet"
        refusal = await c.shared_address_blocked(address)
        assert refusal is not None
        assert refusal.headers["RateLimit-Policy"] == '"auth-failures";q=3;w=60'
        assert c.address_blocked(address) is not None, "refused early from now on, on c too"


async def test_with_redis_unreachable_each_node_limits_alone_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    a, b = node(closed_redis_url(), 2, clock), node(closed_redis_url(), 2, clock)
    async with nodes(a, b):
        key, limits = unique("key"), rates(0.01, 2)
        with caplog.at_level(logging.INFO, logger=SHARED_LOG):
            for service in (a, b):
                answers = [await take(service, limits, key) for _ in range(3)]
                assert [type(answer) for answer in answers] == [Decision, Decision, RateLimited]
                clock.now += RETRY_SECONDS  # each outage try fails again: no second line
            await a.shared_record_failure("198.51.100.7")
            await a.shared_record_failure("198.51.100.7")
            assert await a.shared_address_blocked("198.51.100.7") is not None
            assert await b.shared_address_blocked("198.51.100.7") is None
        warnings = [r for r in caplog.records if r.name == SHARED_LOG]
        assert len(warnings) == 2, "one line per node for the outage"
        assert all("unreachable" in record.getMessage() for record in warnings)


class RedisRelay:
    """A TCP relay to the shared Redis that a test can cut and restore (never the shared Redis
    itself: other tests use it)."""

    def __init__(self) -> None:
        self.port = free_port()
        target = urlsplit(REDIS_URL)
        self._target = (target.hostname or "127.0.0.1", target.port or 6379)
        self.url = urlunsplit(target._replace(netloc=f"127.0.0.1:{self.port}"))
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        for pipe in self._pipes:
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._writers.update((writer, up_writer))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            pipe = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except OSError:
            pass
        finally:
            sink.close()


async def test_a_node_goes_back_to_redis_when_it_answers(caplog: pytest.LogCaptureFixture) -> None:
    require_service(await redis_reason())
    relay = RedisRelay()
    await relay.open()
    clock = ManualClock()
    relayed, direct = node(relay.url, clock=clock), node(REDIS_URL)
    client = aioredis.from_url(REDIS_URL)
    key, limits = unique("key"), rates(0.01, 100)
    bucket = f"{PREFIX}key:{key}"

    async def in_redis() -> int:
        return int(float(await client.hget(bucket, "tokens") or 100))

    async with nodes(relayed, direct):
        with caplog.at_level(logging.INFO, logger=SHARED_LOG):
            await take(relayed, limits, key)
            await take(direct, limits, key)
            assert await in_redis() == 98
            await relay.cut()
            for _ in range(5):
                assert isinstance(await take(relayed, limits, key), Decision), "no error"
            assert await in_redis() == 98, "counted on the node alone"
            await relay.open()
            await take(relayed, limits, key)
            assert await in_redis() == 98, "Redis is tried again after RETRY_SECONDS only"
            clock.now += RETRY_SECONDS
            answer = await take(relayed, limits, key)
            assert await in_redis() == 97, "counted in Redis again"
            assert isinstance(answer, Decision)
            assert answer.remaining == 97
        lines = [r.getMessage() for r in caplog.records if r.name == SHARED_LOG]
        assert len(lines) == 2
        assert "unreachable" in lines[0]
        assert "answers again" in lines[1]
    await relay.cut()
    await client.delete(bucket)
    await client.aclose()


@pytest.mark.postgres
async def test_two_served_nodes_limit_a_key_and_an_address_as_one(tmp_path: Path) -> None:
    limits = {
        "rate_limit_per_key": 0.001,  # 1,000 s for a token: none comes back
        "rate_limit_burst": 3,
        "auth_failures_per_minute": 3,
    }
    # a loopback address of this test's own, so no other test's failures count against it
    source = ".".join(["127", *(str(secrets.randbelow(250) + 2) for _ in range(3))])
    transport = {"transport": httpx.AsyncHTTPTransport(local_address=source)}
    async with served_cluster(tmp_path, ("a", "b"), **limits) as (a, b):
        key = await a.services.auth.create_key("default", "shared rate")
        auth = {"Authorization": f"Bearer {key}"}
        async with (
            httpx.AsyncClient(base_url=a.url, timeout=10, **transport) as to_a,
            httpx.AsyncClient(base_url=b.url, timeout=10, **transport) as to_b,
        ):
            seen = []
            for client in (to_a, to_b, to_a, to_b):
                answer = await client.get("/api/v1/sessions", headers=auth)
                seen.append((answer.status_code, answer.headers.get("ratelimit")))
            assert seen[:3] == [
                (200, '"default";r=2;t=0'),
                (200, '"default";r=1;t=0'),
                (200, '"default";r=0;t=0'),
            ]
            assert seen[3][0] == 429
            assert 990 <= reset_of(seen[3][1]) <= 1000
            for attempt, client in enumerate((to_a, to_b, to_a)):
                wrong = {"Authorization": f"Bearer zg_wrong{attempt}_" + "x" * 32}
                assert (await client.get("/api/v1/sessions", headers=wrong)).status_code == 401
            wrong = {"Authorization": "Bearer zg_wrong9_" + "x" * 32}
            refused = await to_b.get("/api/v1/sessions", headers=wrong)
            assert refused.status_code == 429, "b saw a's failures through Redis"
            assert refused.headers["ratelimit-policy"] == '"auth-failures";q=3;w=60'
