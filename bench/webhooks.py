"""The webhooks workload: signed deliveries/s to N receivers, backlog drain after an outage, order.

The target it checks: >= 5,000 signed deliveries/s to 100 local receivers (100 subscriptions),
and a backlog of 100,000 deliveries drained at that rate after an outage, order per
subscription and session kept.

Against a fresh zapgate server (CPU 0) with ``sessions`` simulator sessions (``default`` plus
more made through the API) and ``subscriptions`` subscriptions to ``message.received``, each
with its own URL and signing secret, it

1. **live**: offers ``rate`` deliveries/s for the measured duration (``rate / subscriptions``
   simulated inbound messages/s, round-robin over the sessions; every event goes to every
   subscription), then waits until every delivery is in: deliveries/s during the window and
   until complete (all subscriptions together), lag p50/p99, server CPU per delivery;
2. **backlog**: stops the receivers, stores ``ceil(backlog / subscriptions)`` events (so
   ``backlog`` counts deliveries owed, the unit of the rate), starts the receivers again on the
   same ports and times the drain (and the server's CPU per delivery);
3. **baseline**, with zapgate stopped: signed POSTs to a fresh receiver process from the
   server's CPU, one at a time (an ordered lane's ceiling) and then with the dispatcher's
   per-tenant cap in flight over every receiver (the receivers' capacity, as one Python client
   on that core sees it).

The receivers: 100 receiver processes do not fit a 2-core machine, so one process
(:mod:`bench.receiver`, pinned to the load CPU) serves them all: subscription ``i`` posts to
``http://127.0.0.1:{port_i}/r/{i}``. The path picks the secret the signature is verified with
and the subscription the delivery is recorded under; by default every subscription also gets
its own port, so the dispatcher keeps a connection pool per receiver as with 100 real hosts
(``BENCH_WEBHOOK_PORTS`` spreads them over fewer ports). The receiver records every delivery;
the workload then checks, per subscription and session, that first receipts arrive in ``seq``
order, and counts duplicates by (subscription, ``webhook-id``).

Knobs besides :class:`Plan`'s required fields, from the environment: ``BENCH_WEBHOOK_SUBSCRIPTIONS``
(100), ``BENCH_WEBHOOK_SESSIONS`` (4), ``BENCH_WEBHOOK_RATE`` (deliveries/s offered live, 6000;
0 = inbound as fast as it goes), ``BENCH_WEBHOOK_PORTS`` (0 = one per subscription).
"""

import asyncio
import contextlib
import itertools
import json
import math
import os
import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import aiohttp
import httpx
import uvloop

from bench.receiver import Dump, Record, load_dump, write_config
from bench.server import HOST, BenchError, cpu_seconds, free_port, serve
from bench.sessions import (
    Clients,
    Tally,
    api_clients,
    create_sessions,
    pinned,
    pool,
    post,
    wait_working,
)
from bench.targets import PORT, Server, webhooks_server
from zapgate.webhooks import signing
from zapgate.webhooks.policy import Concurrency

TARGET_PER_S = 5000.0
"""Deliveries/s the target asks for, live and while draining a backlog."""
TARGET_SUBSCRIPTIONS = 100
TARGET_BACKLOG = 100_000
"""Deliveries owed after the outage in the target's shape."""
DEFAULT_BACKLOG = 20_000
"""Deliveries owed after the outage by default (``--backlog``; the target is 100,000)."""
DEFAULT_SUBSCRIPTIONS = 100
DEFAULT_SESSIONS = 4
DEFAULT_RATE = 6000
"""Deliveries/s offered live: above the target, so a server that keeps up can meet it."""
SUBSCRIPTIONS_ENV = "BENCH_WEBHOOK_SUBSCRIPTIONS"
SESSIONS_ENV = "BENCH_WEBHOOK_SESSIONS"
RATE_ENV = "BENCH_WEBHOOK_RATE"
PORTS_ENV = "BENCH_WEBHOOK_PORTS"
DEFAULT_SESSION = "default"
EXTRA_SESSION_PREFIX = "hooks"
INBOUND_BODY: dict[str, object] = {"from": "5511988887777", "text": "bench"}
EVENT_TYPE = "message.received"
INBOUND_CONCURRENCY = 20
CAPACITY_CONCURRENCY = Concurrency().per_tenant
"""Requests in flight in the capacity baseline: what the dispatcher allows one tenant."""
MAX_EVENTS = 1_000_000
"""Hard cap on inbound events of one load window, besides the duration."""
POLL_S = 0.05
STALL_S = 30.0
"""Stop waiting for deliveries after this long without progress (retries come every ~1 s)."""
WAIT_MAX_S = 3600.0
PROGRESS_S = 30.0
"""Log how far the deliveries got this often while waiting."""
BASELINE_MAX_REQUESTS = 1_000_000
REQUEST_TIMEOUT_S = 10.0
REPO_ROOT = Path(__file__).resolve().parent.parent
CREATED_SLACK_S = 0.002
"""Envelope timestamps are whole milliseconds: a window's events start this much before it."""
RETRY_SCHEDULE = ",".join(["0", *["1"] * 599])
"""Retry every second for ten minutes: storing a large backlog takes longer than the one minute
of :data:`bench.targets.WEBHOOK_RETRY_SCHEDULE`, and a head delivery must not give up."""


def _env_int(name: str, default: int) -> int:
    """``int(os.environ[name])``, ``default`` when unset."""
    text = os.environ.get(name, str(default))
    try:
        return int(text)
    except ValueError:
        raise BenchError(f"{name} must be an integer, got {text!r}") from None


@dataclass(frozen=True)
class Plan:
    """What to run, where to log, and which CPUs to use; ``backlog`` counts deliveries."""

    duration_s: int
    backlog: int
    api_key: str
    log_dir: Path
    server_prefix: list[str]
    receiver_prefix: list[str]
    server_cpu: int | None
    client_cpu: int | None
    subscriptions: int = field(
        default_factory=lambda: _env_int(SUBSCRIPTIONS_ENV, DEFAULT_SUBSCRIPTIONS)
    )
    sessions: int = field(default_factory=lambda: _env_int(SESSIONS_ENV, DEFAULT_SESSIONS))
    rate: int = field(default_factory=lambda: _env_int(RATE_ENV, DEFAULT_RATE))
    ports: int = field(default_factory=lambda: _env_int(PORTS_ENV, 0))

    def __post_init__(self) -> None:
        if self.subscriptions < 1 or self.sessions < 1 or self.rate < 0 or self.ports < 0:
            raise BenchError("webhooks: subscriptions and sessions >= 1, rate and ports >= 0")

    @property
    def backlog_events(self) -> int:
        """Inbound events stored during the outage: enough for ``backlog`` deliveries."""
        return -(-self.backlog // self.subscriptions)

    @property
    def port_count(self) -> int:
        """Ports the receivers listen on (one per subscription unless told fewer)."""
        return min(self.ports or self.subscriptions, self.subscriptions)


@dataclass(frozen=True)
class Throughput:
    """Live load: inbound events, and their deliveries during the window and until complete."""

    load_s: float
    created: int
    """Inbound events stored (each owes one delivery per subscription)."""
    create_errors: int
    first_error: str | None
    expected: int
    """Deliveries owed: ``created`` times the subscriptions."""
    offered_per_s: float
    """Deliveries/s asked of the server (0: inbound as fast as it went)."""
    delivered_load: int
    delivered: int
    drain_s: float
    lag_p50_ms: float
    lag_p99_ms: float
    server_cpu_s: float
    """CPU the server used from the window's start until every delivery was in."""
    receivers_cpu_s: float

    @property
    def complete(self) -> bool:
        """Every subscription received every event."""
        return self.delivered >= self.expected

    @property
    def cpu_ms_per_delivery(self) -> float:
        """Server CPU per delivery (inbound requests included); 0.2 ms is 5,000/s on a core."""
        return 1000 * self.server_cpu_s / self.delivered if self.delivered else 0.0


@dataclass(frozen=True)
class Backlog:
    """Events stored while the receivers were down, and how fast their deliveries went out."""

    events: int
    create_errors: int
    expected: int
    """Deliveries owed: ``events`` times the subscriptions."""
    outage_s: float
    first_s: float
    drain_s: float
    delivered: int
    duplicates: int
    failed_deliveries: int
    server_cpu_s: float
    """CPU the server used from the receivers' return until every delivery was in."""
    receivers_cpu_s: float

    @property
    def complete(self) -> bool:
        """Every subscription received every backlog event."""
        return self.delivered >= self.expected

    @property
    def cpu_ms_per_delivery(self) -> float:
        """Server CPU per delivery while draining; 0.2 ms is 5,000/s on one core."""
        return 1000 * self.server_cpu_s / self.delivered if self.delivered else 0.0


@dataclass(frozen=True)
class Order:
    """First receipts per (subscription, session): each stream's ``seq`` must only grow."""

    streams: int
    violations: int
    first_violation: str | None


@dataclass(frozen=True)
class Baseline:
    """A receiver process alone under signed POSTs of a delivery's body, ``concurrency`` at once."""

    requests: int
    duration_s: float
    body_bytes: int
    errors: int
    concurrency: int = 1
    client_cpu_s: float = 0.0
    """CPU the posting client (this process, on the server's CPU) used."""
    receivers_cpu_s: float = 0.0


@dataclass(frozen=True)
class WebhooksResult:
    """Figures of one webhooks run."""

    subscriptions: int
    sessions: int
    ports: int
    throughput: Throughput
    backlog: Backlog
    order: Order
    baseline: Baseline
    capacity: Baseline
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
        """Deliveries received (all subscriptions) per second during the load window."""
        return self.throughput.delivered_load / self.throughput.load_s

    @property
    def delivered_per_s(self) -> float:
        """Deliveries per second from the window's start until the last one arrived."""
        t = self.throughput
        return t.delivered / (t.load_s + t.drain_s) if t.load_s + t.drain_s > 0 else 0.0

    @property
    def drain_per_s(self) -> float:
        """Backlog deliveries per second, from the receivers' return until the last one."""
        b = self.backlog
        return b.delivered / b.drain_s if b.drain_s > 0 else 0.0

    @property
    def baseline_per_s(self) -> float:
        """Sequential POSTs per second one receiver answered alone."""
        return self.baseline.requests / self.baseline.duration_s

    @property
    def capacity_per_s(self) -> float:
        """POSTs per second the receivers answered alone, the dispatcher's tenant cap in flight."""
        return self.capacity.requests / self.capacity.duration_s

    @property
    def ratio_drain(self) -> float:
        """Backlog drain rate over the sequential baseline."""
        return self.drain_per_s / self.baseline_per_s if self.baseline.requests else 0.0

    @property
    def ratio_load(self) -> float:
        """Deliveries/s until complete (under load, then its drain) over the baseline."""
        return self.delivered_per_s / self.baseline_per_s if self.baseline.requests else 0.0

    @property
    def order_kept(self) -> bool:
        """No (subscription, session) stream received an event before an older one."""
        return self.order.violations == 0

    @property
    def live_met(self) -> bool:
        """Live deliveries/s until complete reached the target, complete and in order."""
        return self.throughput.complete and self.order_kept and self.delivered_per_s >= TARGET_PER_S

    @property
    def drain_met(self) -> bool:
        """The backlog drained at the target rate, complete and in order."""
        return self.backlog.complete and self.order_kept and self.drain_per_s >= TARGET_PER_S

    @property
    def target_shape(self) -> bool:
        """Run with the target's 100 subscriptions and 100,000-delivery backlog (or more)."""
        return (
            self.subscriptions >= TARGET_SUBSCRIPTIONS and self.backlog.expected >= TARGET_BACKLOG
        )

    @property
    def errors(self) -> int:
        """Failed requests, bad signatures or bodies, lost or out-of-order deliveries."""
        t, b = self.throughput, self.backlog
        lost = (0 if t.complete else 1) + (0 if b.complete else 1)
        return (
            t.create_errors + b.create_errors + b.failed_deliveries + lost + self.order.violations
            + self.verify_failures + self.bad_bodies + self.baseline.errors + self.capacity.errors
        )  # fmt: skip

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view with the derived rates and the target's verdicts."""
        shape = {
            "subscriptions": self.subscriptions,
            "sessions": self.sessions,
            "ports": self.ports,
        }
        rates = {
            "created_per_s": self.created_per_s,
            "delivered_per_s_load": self.delivered_per_s_load,
            "delivered_per_s": self.delivered_per_s,
            "drain_per_s": self.drain_per_s,
            "baseline_per_s": self.baseline_per_s,
            "capacity_per_s": self.capacity_per_s,
            "ratio_drain_over_baseline": self.ratio_drain,
            "ratio_load_over_baseline": self.ratio_load,
            "live_cpu_ms_per_delivery": self.throughput.cpu_ms_per_delivery,
            "drain_cpu_ms_per_delivery": self.backlog.cpu_ms_per_delivery,
        }
        parts = {
            "throughput": asdict(self.throughput),
            "backlog": asdict(self.backlog),
            "order": asdict(self.order),
            "baseline": asdict(self.baseline),
            "capacity": asdict(self.capacity),
        }
        totals = {
            "received": self.received,
            "duplicates": self.duplicates,
            "verify_failures": self.verify_failures,
            "bad_bodies": self.bad_bodies,
        }
        target = {
            "per_s": TARGET_PER_S,
            "target_shape": self.target_shape,
            "live_met": self.live_met,
            "drain_met": self.drain_met,
        }
        figures = {**shape, **parts, **totals, **rates, "target": target}
        return _rounded({**figures, "errors": self.errors})


def _rounded(data: dict[str, object]) -> dict[str, object]:
    """Round floats to 3 decimals, recursing into nested dicts."""
    out: dict[str, object] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out[key] = _rounded(value)
        else:
            out[key] = round(value, 3) if isinstance(value, float) else value
    return out


def section(result: WebhooksResult) -> str:
    """The webhooks workload's figures, one per line (for :mod:`bench.report`)."""
    t, b, base, cap = result.throughput, result.backlog, result.baseline, result.capacity
    complete = "" if t.complete else f", NOT complete: {t.delivered}/{t.expected}"
    drained = "" if b.complete else f", NOT drained: {b.delivered}/{b.expected}"
    signatures = f"{result.received - result.verify_failures} ok, {result.verify_failures} bad"
    offered = f"{t.offered_per_s:,.0f}/s offered" if t.offered_per_s else "unpaced"
    order = "kept" if result.order_kept else f"{result.order.violations} VIOLATIONS"

    def verdict(met: bool) -> str:
        shape = "" if result.target_shape else ", smaller shape than the target's"
        return f"{'met' if met else 'NOT met'} (>= {TARGET_PER_S:,.0f}/s{shape})"

    def cpu(phase: Throughput | Backlog) -> str:
        spent = f"CPU s server {phase.server_cpu_s:.1f}, receivers {phase.receivers_cpu_s:.1f}"
        return f"{phase.cpu_ms_per_delivery:.2f} ms ({spent})"

    rows = [
        ("shape", f"{result.subscriptions} subscriptions over {result.ports} ports, "
         f"{result.sessions} sessions"),
        ("events created/s", f"{result.created_per_s:.1f} ({t.created} in {t.load_s:.1f} s, "
         f"{offered})"),
        ("deliveries/s during load", f"{result.delivered_per_s_load:,.1f}"),
        ("deliveries/s until all in", f"{result.delivered_per_s:,.1f} "
         f"({t.delivered} in +{t.drain_s:.1f} s after the load{complete})"),
        ("  target, live", verdict(result.live_met)),
        ("  server CPU per delivery", cpu(t)),
        ("delivery lag p50 / p99", f"{t.lag_p50_ms:.0f} / {t.lag_p99_ms:.0f} ms"),
        ("backlog drain", f"{result.drain_per_s:,.1f}/s ({b.expected} deliveries of "
         f"{b.events} events in {b.drain_s:.1f} s{drained})"),
        ("  target, drain", verdict(result.drain_met)),
        ("  server CPU per delivery", cpu(b)),
        ("  first after return", f"{b.first_s:.2f} s (receivers down {b.outage_s:.1f} s)"),
        ("  duplicates / failed", f"{b.duplicates} / {b.failed_deliveries}"),
        ("order per subscription+session", f"{order} ({result.order.streams} streams)"),
        ("receiver, sequential", f"{result.baseline_per_s:,.1f}/s ({base.body_bytes} B bodies)"),
        ("receivers, capacity", f"{result.capacity_per_s:,.1f}/s ({cap.concurrency} in flight; "
         f"CPU s client {cap.client_cpu_s:.1f}, receivers {cap.receivers_cpu_s:.1f} "
         f"in {cap.duration_s:.1f} s)"),
        ("vs sequential: drain / load", f"{result.ratio_drain:.2f}x / {result.ratio_load:.2f}x"),
        ("signatures", f"{signatures}; {result.duplicates} duplicates in all"),
    ]  # fmt: skip
    note = "  (a session's deliveries to one subscription go out one at a time, in order)"
    body = (f"  {name:<30} {value}" for name, value in rows)
    return "\n".join(["webhooks:", *body, note])


def error_detail(result: WebhooksResult) -> str:
    """What went wrong in a webhooks run."""
    t, b, o = result.throughput, result.backlog, result.order
    return (
        f"inbound errors {t.create_errors + b.create_errors} (first: {t.first_error}); "
        f"delivered {t.delivered}/{t.expected} under load, {b.delivered}/{b.expected} backlog; "
        f"failed deliveries {b.failed_deliveries}; order violations {o.violations} "
        f"(first: {o.first_violation}); bad signatures {result.verify_failures}; "
        f"bad bodies {result.bad_bodies}; baseline errors "
        f"{result.baseline.errors + result.capacity.errors}"
    )


def log(message: str) -> None:
    """Progress line on stderr."""
    print(f"[bench] webhooks: {message}", file=sys.stderr, flush=True)


# records -----------------------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def first_receipts(records: Iterable[Record], since: float = 0.0) -> list[Record]:
    """Each delivery of an event created at or after ``since`` (wall clock), at its first
    receipt, in receipt order; a delivery is a (subscription, ``webhook-id``) pair."""
    seen: dict[tuple[int, str], Record] = {}
    for r in records:
        if r.received_at - r.lag_s >= since - CREATED_SLACK_S:
            seen.setdefault((r.subscription, r.webhook_id), r)
    return list(seen.values())


def duplicates(records: list[Record]) -> int:
    """Receipts beyond the first of each (subscription, ``webhook-id``)."""
    return len(records) - len({(r.subscription, r.webhook_id) for r in records})


def order_check(records: list[Record]) -> Order:
    """Whether each (subscription, session) stream got its events in ``seq`` order."""
    last: dict[tuple[int, str | None], int] = {}
    violations = 0
    first: str | None = None
    for r in first_receipts(records):
        stream = (r.subscription, r.session)
        before = last.get(stream, -1)
        if r.seq < before:
            violations += 1
            where = f"subscription {r.subscription}, session {r.session}"
            first = first or f"{where}: seq {r.seq} after {before}"
        last[stream] = max(before, r.seq)
    return Order(len(last), violations, first)


# receivers ---------------------------------------------------------------------------------------


def receivers_server(dump: Path, config: Path) -> Server:
    """The receivers process (:mod:`bench.receiver`), dumping its records to ``dump``."""
    command = (sys.executable, "-m", "bench.receiver", "--port", PORT,
               "--dump", str(dump), "--config", str(config))  # fmt: skip
    return Server(command=command)


@dataclass(frozen=True)
class Receivers:
    """A running receivers process: its control port, its pid and where its dump goes."""

    port: int
    pid: int
    dump_path: Path

    def dump(self) -> Dump:
        """What it saw (once stopped)."""
        return load_dump(self.dump_path)


@contextlib.contextmanager
def receivers(plan: Plan, config: Path, port: int, name: str) -> Iterator[Receivers]:
    """Run the receivers (control port ``port``, pinned like wrk) for the block."""
    dump = plan.log_dir / f"{name}.json"
    log_path = plan.log_dir / f"{name}.log"
    server = receivers_server(dump, config)
    with serve(server, REPO_ROOT, log_path, plan.receiver_prefix, port) as running:
        yield Receivers(running.port, running.process.pid, dump)
    if not dump.exists():
        raise BenchError(f"receiver {name} stopped without writing {dump}")


@contextlib.contextmanager
def cpu_span(*pids: int) -> Iterator[list[float]]:
    """CPU seconds each of ``pids`` used during the block (the list is filled in at its end)."""
    before = [cpu_seconds(pid) for pid in pids]
    used = [0.0] * len(pids)
    yield used
    used[:] = [cpu_seconds(pid) - start for pid, start in zip(pids, before, strict=True)]


def receiver_urls(ports: list[int], count: int) -> list[str]:
    """Subscription ``i``'s URL: path ``/r/{i}`` on the ports, round-robin."""
    return [f"http://{HOST}:{ports[i % len(ports)]}/r/{i}" for i in range(count)]


async def wait_received(port: int, count: int) -> bool:
    """Poll the receivers until they have ``count`` distinct deliveries; False if they stall."""
    async with httpx.AsyncClient(
        base_url=f"http://{HOST}:{port}", timeout=REQUEST_TIMEOUT_S, trust_env=False
    ) as client:
        started = progressed = logged = time.monotonic()
        seen = -1
        while time.monotonic() - started < WAIT_MAX_S:
            response = await client.get("/stats")
            response.raise_for_status()
            now_seen, now = int(response.json()["unique"]), time.monotonic()
            if now_seen >= count:
                return True
            if now_seen != seen:
                seen, progressed = now_seen, now
            elif now - progressed >= STALL_S:
                log(f"deliveries stalled at {seen}/{count} for {STALL_S:.0f} s")
                return False
            if now - logged >= PROGRESS_S:
                logged = now
                log(f"{seen}/{count} delivered after {now - started:.0f} s")
            await asyncio.sleep(POLL_S)
    return False


# zapgate -----------------------------------------------------------------------------------------


def hooks_server(data_dir: Path, api_key: str) -> Server:
    """:func:`bench.targets.webhooks_server` with room for the subscriptions and long retries."""
    base = webhooks_server(data_dir, api_key)
    env = {
        **base.env,
        "ZAPGATE_MAX_WEBHOOKS_PER_TENANT": "0",
        "ZAPGATE_WEBHOOK_RETRY_SCHEDULE": RETRY_SCHEDULE,
    }
    return replace(base, env=env)


async def open_sessions(clients: Clients, count: int) -> list[str]:
    """``default`` plus ``count - 1`` more simulator sessions, all WORKING; their names."""
    extra = [f"{EXTRA_SESSION_PREFIX}{i}" for i in range(1, count)]
    await create_sessions(clients, extra)
    await wait_working(clients[0], count)
    return [DEFAULT_SESSION, *extra]


async def create_webhooks(client: httpx.AsyncClient, urls: list[str]) -> list[tuple[str, str]]:
    """Subscribe each URL to ``message.received``; their (id, secret) in the same order."""
    created = []
    for url in urls:
        response = await client.post("/api/v1/webhooks", json={"url": url, "events": [EVENT_TYPE]})
        if response.status_code != 201:
            raise BenchError(
                f"POST /api/v1/webhooks answered {response.status_code}: {response.text}"
            )
        data = response.json()
        created.append((str(data["id"]), str(data["secret"])))
    return created


async def inbound(
    clients: Clients, sessions: list[str], count: int, duration_s: float, per_s: float = 0.0
) -> Tally:
    """Simulate up to ``count`` inbound messages round-robin over ``sessions`` for at most
    ``duration_s``, at ``per_s`` a second (0: as fast as they are answered)."""
    started = time.monotonic()
    deadline = started + duration_s
    tally = Tally()
    issued = 0

    async def job(client: httpx.AsyncClient) -> bool:
        nonlocal issued
        index = issued
        due = started + index / per_s if per_s else time.monotonic()
        if due >= deadline or index >= count:
            return False
        issued += 1
        if per_s:
            await asyncio.sleep(due - time.monotonic())  # pacing: the message's slot
        session = sessions[index % len(sessions)]
        path = f"/api/v1/sessions/{session}/simulate/inbound"
        await post(client, tally, path, INBOUND_BODY, 201)
        return True

    await pool(clients, INBOUND_CONCURRENCY, job)
    return tally


async def failed_deliveries(client: httpx.AsyncClient, webhook_ids: list[str]) -> int:
    """Deliveries the dispatcher gave up on (first page of each subscription: at most 200)."""
    params: dict[str, str | int] = {"status": "failed", "limit": 200}
    failed = 0
    for webhook_id in webhook_ids:
        response = await client.get(f"/api/v1/webhooks/{webhook_id}/deliveries", params=params)
        if response.status_code != 200:
            raise BenchError(f"GET deliveries answered {response.status_code}: {response.text}")
        failed += len(response.json()["data"])
    return failed


# phases ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """One phase's inbound load: when it ran and how it went."""

    started: float
    stopped: float
    tally: Tally


async def warm_up(clients: Clients, sessions: list[str], port: int, subscriptions: int) -> int:
    """One event per session to every subscription, so connections are open; their count."""
    tally = await inbound(clients, sessions, len(sessions), WAIT_MAX_S)
    if tally.errors:
        raise BenchError(f"warm-up: {tally.errors} inbound errors; first: {tally.first_error}")
    if not await wait_received(port, tally.ok * subscriptions):
        raise BenchError("warm-up events were not delivered (see the server and receiver logs)")
    return tally.ok


async def load_window(
    clients: Clients, sessions: list[str], plan: Plan, port: int, warmed: int
) -> Window:
    """Inbound load for the duration at the offered rate, then wait for every delivery."""
    started = time.time()
    per_s = plan.rate / plan.subscriptions
    tally = await inbound(clients, sessions, MAX_EVENTS, plan.duration_s, per_s)
    stopped = time.time()
    log(f"live: {tally.ok} events in {stopped - started:.1f} s; waiting for their deliveries")
    await wait_received(port, (warmed + tally.ok) * plan.subscriptions)
    return Window(started, stopped, tally)


def throughput_figures(dump: Dump, window: Window, plan: Plan, cpu: list[float]) -> Throughput:
    """Throughput and lag of the events created in the window."""
    firsts = first_receipts(dump.records, window.started)
    lags = [r.lag_s * 1000 for r in firsts]
    last = max((r.received_at for r in firsts), default=window.stopped)
    tally = window.tally
    return Throughput(
        load_s=window.stopped - window.started,
        created=tally.ok,
        create_errors=tally.errors,
        first_error=tally.first_error,
        expected=tally.ok * plan.subscriptions,
        offered_per_s=float(plan.rate),
        delivered_load=sum(r.received_at <= window.stopped for r in firsts),
        delivered=len(firsts),
        drain_s=max(last - window.stopped, 0.0),
        lag_p50_ms=percentile(lags, 50),
        lag_p99_ms=percentile(lags, 99),
        server_cpu_s=cpu[0],
        receivers_cpu_s=cpu[1],
    )


async def backlog_window(clients: Clients, sessions: list[str], count: int) -> Window:
    """Store ``count`` events while the receivers are down."""
    started = time.time()
    tally = await inbound(clients, sessions, count, WAIT_MAX_S)
    if tally.errors:
        log(f"backlog: {tally.errors} inbound errors; first: {tally.first_error}")
    return Window(started, time.time(), tally)


def backlog_figures(
    dumps: tuple[Dump, Dump], outage: Window, plan: Plan, failed: int, cpu: list[float]
) -> Backlog:
    """Drain figures of the backlog, from the second receivers' records (the drain starts
    when they listen again)."""
    before, after = dumps
    back = after.listening_at
    firsts = first_receipts(after.records, outage.started)
    earlier = {(r.subscription, r.webhook_id) for r in before.records}
    again = sum((r.subscription, r.webhook_id) in earlier for r in after.records)
    last = max((r.received_at for r in firsts), default=back)
    first = min((r.received_at for r in firsts), default=back)
    return Backlog(
        events=outage.tally.ok,
        create_errors=outage.tally.errors,
        expected=outage.tally.ok * plan.subscriptions,
        outage_s=back - outage.started,
        first_s=first - back,
        drain_s=last - back,
        delivered=len(firsts),
        duplicates=duplicates(after.records) + again,
        failed_deliveries=failed,
        server_cpu_s=cpu[0],
        receivers_cpu_s=cpu[1],
    )


async def against_zapgate(plan: Plan) -> tuple[Throughput, Backlog, Dump, Dump]:
    """Live load, then a backlog after an outage, against one zapgate server."""
    data_dir = plan.log_dir / "webhooks-data"
    data_dir.mkdir()
    ports = [free_port() for _ in range(plan.port_count)]
    server = hooks_server(data_dir, plan.api_key)
    log_path = plan.log_dir / "webhooks.log"
    with serve(server, REPO_ROOT, log_path, plan.server_prefix) as running:
        pid = running.process.pid
        async with api_clients(running.port, plan.api_key, INBOUND_CONCURRENCY) as clients:
            sessions = await open_sessions(clients, plan.sessions)
            hooks = await create_webhooks(clients[0], receiver_urls(ports, plan.subscriptions))
            config = write_config(plan.log_dir / "receivers.json", [s for _, s in hooks], ports)
            with receivers(plan, config, ports[0], "receivers-1") as live:
                warmed = await warm_up(clients, sessions, live.port, plan.subscriptions)
                log(f"live: {plan.duration_s} s, {plan.rate}/s offered (zapgate pid {pid})")
                with cpu_span(pid, live.pid) as live_cpu:
                    window = await load_window(clients, sessions, plan, live.port, warmed)
            first = live.dump()
            log(f"backlog: receivers down, storing {plan.backlog_events} events")
            outage = await backlog_window(clients, sessions, plan.backlog_events)
            expected = outage.tally.ok * plan.subscriptions
            with receivers(plan, config, ports[0], "receivers-2") as back:
                log(f"backlog: receivers back, draining {expected} (zapgate pid {pid})")
                with cpu_span(pid, back.pid) as drain_cpu:
                    await wait_received(back.port, expected)
            second = back.dump()
            failed = await failed_deliveries(clients[0], [webhook_id for webhook_id, _ in hooks])
    throughput = throughput_figures(first, window, plan, live_cpu)
    backlog = backlog_figures((first, second), outage, plan, failed, drain_cpu)
    return throughput, backlog, first, second


# baseline ----------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def plain_client() -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp client like the dispatcher's (keep-alive pool, no decompression)."""
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False
    ) as session:
        yield session


async def signed_posts(
    targets: list[tuple[str, str]], body: bytes, duration_s: float, concurrency: int
) -> tuple[int, int, float]:
    """Signed POSTs of ``body`` for ``duration_s``, ``concurrency`` at once, round-robin over
    ``targets`` (url, secret); (answered 200, other answers, seconds)."""
    done = errors = 0
    shares = itertools.cycle(targets)
    deadline = time.monotonic() + duration_s

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done, errors
        while time.monotonic() < deadline and done + errors < BASELINE_MAX_REQUESTS:
            url, secret = next(shares)
            headers = {"content-type": "application/json", "user-agent": "bench"}
            signed = signing.headers([secret], f"base_{done + errors}", int(time.time()), body)
            async with session.post(url, data=body, headers={**headers, **signed}) as response:
                await response.read()
                if response.status == 200:
                    done += 1
                else:
                    errors += 1

    async with plain_client() as session:
        started = time.monotonic()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return done, errors, time.monotonic() - started


async def measure_baseline(plan: Plan, body: bytes) -> tuple[Baseline, Baseline]:
    """Fresh receivers under POSTs from the server's CPU: one at a time to one receiver, then
    :data:`CAPACITY_CONCURRENCY` at once over all of them."""
    secrets = [signing.new_secret() for _ in range(plan.subscriptions)]
    ports = [free_port() for _ in range(plan.port_count)]
    config = write_config(plan.log_dir / "receivers-baseline.json", secrets, ports)
    targets = list(zip(receiver_urls(ports, plan.subscriptions), secrets, strict=True))
    found = []
    with receivers(plan, config, ports[0], "receivers-baseline") as alone, pinned(plan.server_cpu):
        for share, concurrency in ((targets[:1], 1), (targets, CAPACITY_CONCURRENCY)):
            with cpu_span(os.getpid(), alone.pid) as cpu:
                done, errors, took = await signed_posts(share, body, plan.duration_s, concurrency)
            found.append(Baseline(done, took, len(body), errors, concurrency, *cpu))
    return found[0], found[1]


# run ---------------------------------------------------------------------------------------------


def sample_body(*dumps: Dump) -> bytes:
    """A real delivery body, or a stand-in of the envelope's shape if none arrived."""
    for dump in dumps:
        if dump.sample_body is not None:
            return dump.sample_body
    envelope = {"id": "evt_x", "seq": 1, "type": EVENT_TYPE, "session": DEFAULT_SESSION}
    return json.dumps({**envelope, "payload": {}}).encode()


async def run_workload(plan: Plan) -> WebhooksResult:
    """Every phase; the baselines run after zapgate is stopped."""
    throughput, backlog, first, second = await against_zapgate(plan)
    log("baseline: receivers alone")
    baseline, capacity = await measure_baseline(plan, sample_body(first, second))
    records = first.records + second.records
    return WebhooksResult(
        subscriptions=plan.subscriptions,
        sessions=plan.sessions,
        ports=plan.port_count,
        throughput=throughput,
        backlog=backlog,
        order=order_check(records),
        baseline=baseline,
        capacity=capacity,
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
