"""The sinks workload: events/s published to RabbitMQ with publisher confirms, next to signed
webhook deliveries/s of the same run, over the same backlog.

A fresh zapgate server (CPU 0) with ``sessions`` simulator sessions gets one RabbitMQ sink (the
real broker at 127.0.0.1:5672: a durable topic exchange, persistent messages, each confirmed
before the next of its session) and one webhook (a local receiver answering 200), both to
``message.received`` and both paused. ``events`` inbound messages are stored, then

1. the sink is turned on and timed until a queue bound to its exchange (consumed here, CPU 1)
   holds every event: **events/s to RabbitMQ**;
2. the webhook is turned on and timed until the receiver (here, CPU 1) got every delivery:
   **deliveries/s to the webhook**;

so both drain the same backlog through the same dispatcher (per-session order, lanes, retry
records); the ratio says what publishing to a broker costs against a signed POST. Order per
session is checked on both sides, and duplicates counted.

Knobs from the environment: ``BENCH_SINK_EVENTS`` (20,000), ``BENCH_SINK_SESSIONS`` (4),
``BENCH_RABBITMQ_URL`` (amqp://guest:guest@127.0.0.1:5672/).
"""

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import aio_pika
import httpx
import orjson
from aiohttp import web

from bench.server import HOST, BenchError, cpu_seconds, free_port, serve
from bench.sessions import Clients, api_clients, pinned
from bench.targets import webhooks_server
from bench.webhooks import inbound, open_sessions

REPO_ROOT = Path(__file__).resolve().parent.parent
EVENTS = int(os.environ.get("BENCH_SINK_EVENTS", "20000"))
SESSIONS = int(os.environ.get("BENCH_SINK_SESSIONS", "4"))
RABBITMQ_URL = os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
DRAIN_TIMEOUT_S = float(os.environ.get("BENCH_SINK_DRAIN_TIMEOUT", "300"))
EVENT_TYPE = "message.received"


@dataclass(frozen=True)
class Plan:
    api_key: str
    log_dir: Path
    server_prefix: list[str]
    client_cpu: int | None
    events: int = EVENTS
    sessions: int = SESSIONS


@dataclass(frozen=True)
class Drain:
    """One subscription draining the backlog."""

    received: int
    duplicates: int
    out_of_order: int
    seconds: float
    per_s: float
    cpu_ms_per_event: float


@dataclass(frozen=True)
class SinksResult:
    events: int
    stored: int
    rabbitmq: Drain
    webhook: Drain

    @property
    def ratio(self) -> float:
        """RabbitMQ events/s over webhook deliveries/s."""
        return self.rabbitmq.per_s / self.webhook.per_s if self.webhook.per_s else 0.0

    @property
    def errors(self) -> int:
        """Events missing, repeated or out of order on either side."""
        return sum(
            max(0, self.stored - d.received) + d.duplicates + d.out_of_order
            for d in (self.rabbitmq, self.webhook)
        )

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "ratio": round(self.ratio, 2), "errors": self.errors}


def section(result: SinksResult) -> str:
    """The report's lines."""
    lines = [f"sinks: {result.stored} events stored, then drained by each subscription"]
    for name, drain in (("rabbitmq (confirmed)", result.rabbitmq), ("webhook", result.webhook)):
        lines.append(
            f"  {name:<21} {drain.per_s:>9,.0f}/s  {drain.seconds:6.2f} s  "
            f"{drain.cpu_ms_per_event:.3f} ms CPU/event  dup {drain.duplicates}  "
            f"out of order {drain.out_of_order}"
        )
    lines.append(f"  rabbitmq/webhook: {result.ratio:.2f}x")
    return "\n".join(lines)


class Tally:
    """Envelopes as they arrive: counts, duplicates, order per session."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.seen: set[str] = set()
        self.duplicates = 0
        self.out_of_order = 0
        self._last: dict[str, int] = {}
        self.done = asyncio.Event()

    def take(self, body: bytes) -> None:
        envelope = orjson.loads(body)
        if envelope["id"] in self.seen:
            self.duplicates += 1
            return
        self.seen.add(envelope["id"])
        session, seq = envelope["session"], envelope["seq"]
        if seq < self._last.get(session, -1):
            self.out_of_order += 1
        self._last[session] = seq
        if len(self.seen) >= self.expected:
            self.done.set()


async def _receiver(tally: Tally) -> tuple[web.AppRunner, int]:
    async def handle(request: web.Request) -> web.Response:
        tally.take(await request.read())
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, HOST, port).start()
    return runner, port


async def _subscribe(client: httpx.AsyncClient, path: str, body: dict[str, object]) -> str:
    made = await client.post(path, json={**body, "events": [EVENT_TYPE], "active": False})
    if made.status_code != 201:
        raise BenchError(f"POST {path} answered {made.status_code}: {made.text}")
    return str(made.json()["id"])


async def _drain(
    client: httpx.AsyncClient, path: str, tally: Tally, cpu: Callable[[], float]
) -> Drain:
    before = cpu()
    started = time.monotonic()
    turned = await client.patch(path, json={"active": True})
    if turned.status_code != 200:
        raise BenchError(f"PATCH {path} answered {turned.status_code}: {turned.text}")
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_TIMEOUT_S):
            await tally.done.wait()
    seconds = time.monotonic() - started
    used = cpu() - before
    received = len(tally.seen)
    return Drain(
        received=received,
        duplicates=tally.duplicates,
        out_of_order=tally.out_of_order,
        seconds=round(seconds, 3),
        per_s=round(received / seconds, 1) if seconds else 0.0,
        cpu_ms_per_event=round(1000 * used / received, 3) if received else 0.0,
    )


async def _workload(port: int, plan: Plan, cpu: Callable[[], float]) -> SinksResult:
    exchange = f"zapgate-bench-{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect(RABBITMQ_URL)
    channel = await connection.channel()
    declared = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(declared, routing_key="#")
    published = Tally(plan.events)
    posted = Tally(plan.events)

    async def take(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        published.take(message.body)

    await queue.consume(take, no_ack=True)
    runner, receiver_port = await _receiver(posted)
    try:
        async with api_clients(port, plan.api_key, 64) as clients:
            api: httpx.AsyncClient = clients[0]
            sessions = await open_sessions(clients, plan.sessions)
            sink = await _subscribe(
                api,
                "/api/v1/sinks",
                {"type": "rabbitmq", "url": RABBITMQ_URL, "exchange": exchange},
            )
            hook = await _subscribe(
                api, "/api/v1/webhooks", {"url": f"http://{HOST}:{receiver_port}/hook"}
            )
            stored = await _store(clients, sessions, plan.events)
            published.expected = posted.expected = stored
            rabbitmq = await _drain(api, f"/api/v1/sinks/{sink}", published, cpu)
            webhook = await _drain(api, f"/api/v1/webhooks/{hook}", posted, cpu)
    finally:
        await runner.cleanup()
        await channel.exchange_delete(exchange)
        await connection.close()
    return SinksResult(plan.events, stored, rabbitmq, webhook)


async def _store(clients: Clients, sessions: list[str], count: int) -> int:
    tally = await inbound(clients, sessions, count, DRAIN_TIMEOUT_S)
    if tally.errors:
        raise BenchError(f"{tally.errors} inbound messages were refused: {tally.first_error}")
    return tally.ok


def run(plan: Plan) -> SinksResult:
    """Start zapgate (allowed to reach the local broker and receiver), store, drain, measure."""
    data_dir = plan.log_dir / "sinks-data"
    data_dir.mkdir(exist_ok=True)
    base = webhooks_server(data_dir, plan.api_key)
    server = replace(base, env={**base.env, "ZAPGATE_SINK_ALLOWLIST": "127.0.0.1"})
    with serve(server, REPO_ROOT, plan.log_dir / "sinks.log", plan.server_prefix) as running:
        pid = running.process.pid
        with pinned(plan.client_cpu):
            return asyncio.run(_workload(running.port, plan, lambda: cpu_seconds(pid)))
