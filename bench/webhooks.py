"""The webhooks workload: delivery throughput and lag, backlog drain after an outage, baseline.

Against a fresh zapgate server (CPU 0) with one subscription to ``message.received`` pointing at
a loopback receiver (:mod:`bench.receiver`, CPU 1) it

1. drives simulated inbound messages into the ``default`` session with
   :data:`INBOUND_CONCURRENCY` requests in flight for the measured duration, then waits until
   the receiver has every event: deliveries/s during the window and overall, lag p50/p99;
2. stops the receiver, stores a backlog of events, starts the receiver again on the same port
   and times the drain (and counts duplicates by ``webhook-id``);
3. with zapgate stopped, posts the same body to a fresh receiver sequentially, one request at
   a time, as an ordered per-session dispatcher does: the ratio's denominator.

All events come from one session, and a session's deliveries go out one at a time, in order.
"""

import asyncio
import contextlib
import json
import math
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import httpx
import uvloop

from bench.receiver import Dump, Record, load_dump
from bench.server import HOST, BenchError, free_port, serve
from bench.sessions import Clients, Tally, api_clients, pinned, pool, post
from bench.targets import receiver_server, webhooks_server
from zapgate.webhooks import signing

DEFAULT_BACKLOG = 3000
SESSION = "default"
INBOUND_PATH = f"/api/v1/sessions/{SESSION}/simulate/inbound"
INBOUND_BODY: dict[str, object] = {"from": "5511988887777", "text": "bench"}
EVENT_TYPE = "message.received"
INBOUND_CONCURRENCY = 20
WARMUP_EVENTS = 20
MAX_EVENTS = 1_000_000
"""Hard cap on inbound events of one load window, besides the duration."""
WORKING_TIMEOUT_S = 60.0
POLL_S = 0.05
STALL_S = 20.0
"""Stop waiting for deliveries after this long without progress (retries come every ~1 s)."""
WAIT_MAX_S = 600.0
BASELINE_MAX_REQUESTS = 1_000_000
REQUEST_TIMEOUT_S = 10.0
REPO_ROOT = Path(__file__).resolve().parent.parent
CREATED_SLACK_S = 0.002
"""Envelope timestamps are whole milliseconds: a window's events start this much before it."""


@dataclass(frozen=True)
class Plan:
    """What to run, where to log, and which CPUs to use."""

    duration_s: int
    backlog: int
    api_key: str
    log_dir: Path
    server_prefix: list[str]
    receiver_prefix: list[str]
    server_cpu: int | None
    client_cpu: int | None


@dataclass(frozen=True)
class Throughput:
    """Events created under load and their deliveries, during the window and until complete."""

    load_s: float
    created: int
    create_errors: int
    first_error: str | None
    delivered_load: int
    delivered: int
    drain_s: float
    lag_p50_ms: float
    lag_p99_ms: float

    @property
    def complete(self) -> bool:
        """Every created event reached the receiver."""
        return self.delivered >= self.created


@dataclass(frozen=True)
class Backlog:
    """Events stored while the receiver was down, and how fast they went out once it was back."""

    events: int
    create_errors: int
    outage_s: float
    first_s: float
    drain_s: float
    delivered: int
    duplicates: int
    failed_deliveries: int

    @property
    def complete(self) -> bool:
        """Every backlog event reached the receiver."""
        return self.delivered >= self.events


@dataclass(frozen=True)
class Baseline:
    """The receiver alone under sequential POSTs of a delivery's body."""

    requests: int
    duration_s: float
    body_bytes: int
    errors: int


@dataclass(frozen=True)
class WebhooksResult:
    """Figures of one webhooks run."""

    throughput: Throughput
    backlog: Backlog
    baseline: Baseline
    received: int
    duplicates: int
    verify_failures: int
    bad_bodies: int

    @property
    def created_per_s(self) -> float:
        """Inbound events stored per second of load."""
        return self.throughput.created / self.throughput.load_s

    @property
    def delivered_per_s_load(self) -> float:
        """Deliveries received per second during the load window."""
        return self.throughput.delivered_load / self.throughput.load_s

    @property
    def delivered_per_s(self) -> float:
        """Deliveries per second from the window's start until the last one arrived."""
        t = self.throughput
        return t.delivered / (t.load_s + t.drain_s) if t.load_s + t.drain_s > 0 else 0.0

    @property
    def drain_per_s(self) -> float:
        """Backlog events delivered per second, from the receiver's return until the last one."""
        b = self.backlog
        return b.delivered / b.drain_s if b.drain_s > 0 else 0.0

    @property
    def baseline_per_s(self) -> float:
        """Sequential POSTs per second the receiver answered alone."""
        return self.baseline.requests / self.baseline.duration_s

    @property
    def ratio_drain(self) -> float:
        """Backlog drain rate over the sequential baseline."""
        return self.drain_per_s / self.baseline_per_s if self.baseline.requests else 0.0

    @property
    def ratio_load(self) -> float:
        """Deliveries/s until complete (under load, then its drain) over the baseline."""
        return self.delivered_per_s / self.baseline_per_s if self.baseline.requests else 0.0

    @property
    def errors(self) -> int:
        """Failed requests, bad signatures or bodies, lost deliveries, failed baseline posts."""
        t, b = self.throughput, self.backlog
        lost = (0 if t.complete else 1) + (0 if b.complete else 1)
        return (
            t.create_errors + b.create_errors + b.failed_deliveries + lost
            + self.verify_failures + self.bad_bodies + self.baseline.errors
        )  # fmt: skip

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view with the derived rates."""
        rates = {
            "created_per_s": self.created_per_s,
            "delivered_per_s_load": self.delivered_per_s_load,
            "delivered_per_s": self.delivered_per_s,
            "drain_per_s": self.drain_per_s,
            "baseline_per_s": self.baseline_per_s,
            "ratio_drain_over_baseline": self.ratio_drain,
            "ratio_load_over_baseline": self.ratio_load,
        }
        parts = {
            "throughput": asdict(self.throughput),
            "backlog": asdict(self.backlog),
            "baseline": asdict(self.baseline),
        }
        totals = {
            "received": self.received,
            "duplicates": self.duplicates,
            "verify_failures": self.verify_failures,
            "bad_bodies": self.bad_bodies,
        }
        return _rounded({**parts, **totals, **rates, "errors": self.errors})


def _rounded(data: dict[str, object]) -> dict[str, object]:
    """Round floats to 3 decimals, recursing into nested dicts."""
    out: dict[str, object] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out[key] = _rounded(value)
        else:
            out[key] = round(value, 3) if isinstance(value, float) else value
    return out


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def first_receipts(records: list[Record], since: float) -> list[Record]:
    """Each event created at or after ``since`` (wall clock), at its first receipt."""
    seen: dict[str, Record] = {}
    for r in records:
        if r.received_at - r.lag_s >= since - CREATED_SLACK_S:
            seen.setdefault(r.webhook_id, r)
    return list(seen.values())


def duplicates(records: list[Record]) -> int:
    """Receipts beyond the first of each ``webhook-id``."""
    return len(records) - len({r.webhook_id for r in records})


# the receiver ------------------------------------------------------------------------------------


@contextlib.contextmanager
def receiver(plan: Plan, secret: str, port: int, name: str) -> Iterator[Path]:
    """Run a receiver on ``port`` (pinned like wrk) for the block; yields its dump's path."""
    dump = plan.log_dir / f"{name}.json"
    with serve(
        receiver_server(dump, secret),
        REPO_ROOT,
        plan.log_dir / f"{name}.log",
        plan.receiver_prefix,
        port=port,
    ):
        yield dump
    if not dump.exists():
        raise BenchError(f"receiver {name} stopped without writing {dump}")


def receiver_client(port: int) -> httpx.AsyncClient:
    """Client for the receiver's ``/stats``."""
    return httpx.AsyncClient(
        base_url=f"http://{HOST}:{port}", timeout=REQUEST_TIMEOUT_S, trust_env=False
    )


async def unique_received(client: httpx.AsyncClient) -> int:
    """How many distinct ``webhook-id`` the running receiver has seen."""
    response = await client.get("/stats")
    response.raise_for_status()
    return int(response.json()["unique"])


async def wait_received(port: int, count: int) -> bool:
    """Poll the receiver until it has ``count`` distinct deliveries; False if it stalls."""
    async with receiver_client(port) as client:
        started = progressed = time.monotonic()
        seen = -1
        while time.monotonic() - started < WAIT_MAX_S:
            now_seen = await unique_received(client)
            if now_seen >= count:
                return True
            if now_seen != seen:
                seen, progressed = now_seen, time.monotonic()
            elif time.monotonic() - progressed >= STALL_S:
                return False
            await asyncio.sleep(POLL_S)
    return False


# zapgate -----------------------------------------------------------------------------------------


async def wait_working(client: httpx.AsyncClient) -> None:
    """Poll the ``default`` session until it is WORKING, or raise after the timeout."""
    deadline = time.monotonic() + WORKING_TIMEOUT_S
    status = None
    while time.monotonic() < deadline:
        response = await client.get(f"/api/v1/sessions/{SESSION}")
        status = response.json().get("status") if response.status_code == 200 else None
        if status == "WORKING":
            return
        await asyncio.sleep(POLL_S)
    raise BenchError(f"session {SESSION!r} not WORKING after {WORKING_TIMEOUT_S:.0f}s: {status}")


async def create_webhook(client: httpx.AsyncClient, port: int) -> tuple[str, str]:
    """Subscribe the receiver's ``/hook`` to ``message.received``; return (id, secret)."""
    body = {"url": f"http://{HOST}:{port}/hook", "events": [EVENT_TYPE]}
    response = await client.post("/api/v1/webhooks", json=body)
    if response.status_code != 201:
        raise BenchError(f"POST /api/v1/webhooks answered {response.status_code}: {response.text}")
    data = response.json()
    return str(data["id"]), str(data["secret"])


async def inbound(clients: Clients, count: int, duration_s: float) -> Tally:
    """Simulate up to ``count`` inbound messages, for at most ``duration_s``."""
    deadline = time.monotonic() + duration_s
    tally = Tally()
    issued = 0

    async def job(client: httpx.AsyncClient) -> bool:
        nonlocal issued
        if time.monotonic() >= deadline or issued >= count:
            return False
        issued += 1
        await post(client, tally, INBOUND_PATH, INBOUND_BODY, 201)
        return True

    await pool(clients, INBOUND_CONCURRENCY, job)
    return tally


async def failed_deliveries(client: httpx.AsyncClient, webhook_id: str) -> int:
    """Deliveries the dispatcher gave up on (first page only: at most 200)."""
    params: dict[str, str | int] = {"status": "failed", "limit": 200}
    response = await client.get(f"/api/v1/webhooks/{webhook_id}/deliveries", params=params)
    if response.status_code != 200:
        raise BenchError(f"GET deliveries answered {response.status_code}: {response.text}")
    return len(response.json()["data"])


# phases ------------------------------------------------------------------------------------------


async def warm_up(clients: Clients, port: int) -> None:
    """A few events end to end, so connections are open; raise if they are not delivered."""
    tally = await inbound(clients, WARMUP_EVENTS, WAIT_MAX_S)
    if tally.errors:
        raise BenchError(f"warm-up: {tally.errors} inbound errors; first: {tally.first_error}")
    if not await wait_received(port, WARMUP_EVENTS):
        raise BenchError("warm-up events were not delivered (see the server and receiver logs)")


async def load_window(clients: Clients, port: int, duration_s: int) -> tuple[float, float, Tally]:
    """Inbound load for ``duration_s``, then wait for every delivery; (start, end, tally)."""
    started = time.time()
    tally = await inbound(clients, MAX_EVENTS, duration_s)
    stopped = time.time()
    await wait_received(port, WARMUP_EVENTS + tally.ok)
    return started, stopped, tally


def throughput_figures(dump: Dump, started: float, stopped: float, tally: Tally) -> Throughput:
    """Throughput and lag of the events created in [started, stopped]."""
    firsts = first_receipts(dump.records, started)
    lags = [r.lag_s * 1000 for r in firsts]
    last = max((r.received_at for r in firsts), default=stopped)
    return Throughput(
        load_s=stopped - started,
        created=tally.ok,
        create_errors=tally.errors,
        first_error=tally.first_error,
        delivered_load=sum(r.received_at <= stopped for r in firsts),
        delivered=len(firsts),
        drain_s=max(last - stopped, 0.0),
        lag_p50_ms=percentile(lags, 50),
        lag_p99_ms=percentile(lags, 99),
    )


async def backlog_window(clients: Clients, count: int) -> tuple[float, Tally]:
    """Store ``count`` events while the receiver is down; (start time, tally)."""
    started = time.time()
    return started, await inbound(clients, count, WAIT_MAX_S)


def backlog_figures(
    dumps: tuple[Dump, Dump], outage: tuple[float, Tally], ready: float, failed: int
) -> Backlog:
    """Drain figures of the backlog, from the second receiver's records."""
    (before, after), (started, tally) = dumps, outage
    firsts = first_receipts(after.records, started)
    earlier = {r.webhook_id for r in before.records}
    again = sum(r.webhook_id in earlier for r in after.records)
    last = max((r.received_at for r in firsts), default=ready)
    first = min((r.received_at for r in firsts), default=ready)
    return Backlog(
        events=tally.ok,
        create_errors=tally.errors,
        outage_s=ready - started,
        first_s=first - ready,
        drain_s=last - ready,
        delivered=len(firsts),
        duplicates=duplicates(after.records) + again,
        failed_deliveries=failed,
    )


async def against_zapgate(plan: Plan) -> tuple[Throughput, Backlog, Dump, Dump]:
    """Throughput, then backlog after an outage, against one zapgate server."""
    data_dir = plan.log_dir / "webhooks-data"
    data_dir.mkdir()
    server = webhooks_server(data_dir, plan.api_key)
    port = free_port()
    log_path = plan.log_dir / "webhooks.log"
    with serve(server, REPO_ROOT, log_path, plan.server_prefix) as running:
        async with api_clients(running.port, plan.api_key, INBOUND_CONCURRENCY) as clients:
            await wait_working(clients[0])
            webhook_id, secret = await create_webhook(clients[0], port)
            with receiver(plan, secret, port, "receiver-1") as dump_path:
                await warm_up(clients, port)
                started, stopped, tally = await load_window(clients, port, plan.duration_s)
            first = load_dump(dump_path)
            outage = await backlog_window(clients, plan.backlog)
            with receiver(plan, secret, port, "receiver-2") as dump_path:
                ready = time.time()
                await wait_received(port, outage[1].ok)
            second = load_dump(dump_path)
            failed = await failed_deliveries(clients[0], webhook_id)
    throughput = throughput_figures(first, started, stopped, tally)
    backlog = backlog_figures((first, second), outage, ready, failed)
    return throughput, backlog, first, second


# baseline ----------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def plain_client() -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp client like the dispatcher's (keep-alive pool, no decompression)."""
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        yield session


async def sequential_posts(port: int, secret: str, body: bytes, duration_s: float) -> Baseline:
    """Signed POSTs of ``body`` one at a time for ``duration_s``; count the answers."""
    url = f"http://{HOST}:{port}/hook"
    done = errors = 0
    async with plain_client() as session:
        started = time.monotonic()
        deadline = started + duration_s
        while time.monotonic() < deadline and done + errors < BASELINE_MAX_REQUESTS:
            now = int(time.time())
            headers = {"content-type": "application/json", "user-agent": "bench"}
            headers.update(signing.headers([secret], f"base_{done + errors}", now, body))
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status == 200:
                    done += 1
                else:
                    errors += 1
        elapsed = time.monotonic() - started
    return Baseline(done, elapsed, len(body), errors)


async def measure_baseline(plan: Plan, body: bytes) -> Baseline:
    """The receiver alone, on a fresh process, under sequential POSTs from the server's CPU."""
    secret = signing.new_secret()
    port = free_port()
    with receiver(plan, secret, port, "receiver-baseline"), pinned(plan.server_cpu):
        return await sequential_posts(port, secret, body, plan.duration_s)


# run ---------------------------------------------------------------------------------------------


def sample_body(*dumps: Dump) -> bytes:
    """A real delivery body, or a stand-in of the envelope's shape if none arrived."""
    for dump in dumps:
        if dump.sample_body is not None:
            return dump.sample_body
    envelope = {"id": "evt_x", "seq": 1, "type": EVENT_TYPE, "session": SESSION, "payload": {}}
    return json.dumps(envelope).encode()


async def run_workload(plan: Plan) -> WebhooksResult:
    """Every phase; the baseline runs after zapgate is stopped."""
    throughput, backlog, first, second = await against_zapgate(plan)
    baseline = await measure_baseline(plan, sample_body(first, second))
    records = first.records + second.records
    return WebhooksResult(
        throughput=throughput,
        backlog=backlog,
        baseline=baseline,
        received=len(records),
        duplicates=duplicates(records),
        verify_failures=first.verify_failures + second.verify_failures,
        bad_bodies=first.bad_bodies + second.bad_bodies,
    )


def run(plan: Plan) -> WebhooksResult:
    """Run the workload on a uvloop event loop, pinned to the client CPU if given."""
    with pinned(plan.client_cpu), asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        try:
            return runner.run(run_workload(plan))
        except (httpx.HTTPError, aiohttp.ClientError) as exc:
            raise BenchError(f"request failed: {exc!r}") from exc
