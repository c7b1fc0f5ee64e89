"""The sessions workload: memory per idle simulator session, then event throughput with all active.

Against a running zapgate server it

1. creates one warm-up session (so one-off first-use costs stay out of the per-session figure),
   waits until every session is WORKING, lets the server settle and reads its RSS;
2. creates N sessions through the API, waits until they are all WORKING, settles, reads RSS again;
3. sends ``ping`` to the simulator's echo contact round-robin over the N sessions for the measured
   duration (each send makes ~5 events: queued, sent, delivered, read and the echo's received),
   then waits for the outbox to drain;
4. optionally (:func:`measure_restart`, after that server stopped) starts a server again on the
   same data and times how long until it answers ``/ready`` and until every stored session has
   reported WORKING again (a status written after the start, not the one left from the last run).

Events are counted as the growth of the tenant's newest event seq (seqs are contiguous per
tenant), found with cheap ``limit=1`` probes of ``GET /api/v1/events``.
"""

import asyncio
import contextlib
import itertools
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import httpx

from bench.server import HOST, BenchError, Running, rss_kb, serve
from bench.targets import Server

DEFAULT_SESSIONS = 10_000
ECHO_CONTACT = "5511900000000"
SESSION_CONFIG = {
    "heartbeat_seconds": 30,
    "delivered_latency": {"kind": "fixed", "seconds": 0.05},
    "read_latency": {"kind": "fixed", "seconds": 0.05},
}
WARMUP_SESSION = "bench-warmup"
CREATE_CONCURRENCY = 20
SEND_CONCURRENCY = 50
CONNECTIONS_PER_CLIENT = 5
"""httpx costs ~3 ms of CPU per request with 50 connections in one pool, ~1 ms with 5: shard."""
MAX_SENDS = 1_000_000
"""Hard cap on sends in one run, besides the duration."""
REQUEST_TIMEOUT_S = 10.0
WORKING_TIMEOUT_S = 120.0
POLL_S = 0.5
SETTLE_S = 2.0
DRAIN_POLL_S = 0.25
DRAIN_QUIET_S = 2.0
DRAIN_TIMEOUT_S = 60.0
GALLOP_STEP = 1024
MAX_PROBES = 64
"""Bound on each of the gallop and bisect loops of :func:`newest_seq`."""

Clients = list[httpx.AsyncClient]
Job = Callable[[httpx.AsyncClient], Awaitable[bool]]


@dataclass(frozen=True)
class Plan:
    """What to run: how many sessions, how long to load them, and the API key."""

    sessions: int
    duration_s: int
    api_key: str


@dataclass(frozen=True)
class Memory:
    """Server RSS before/after creating the sessions, and how long they took to be WORKING."""

    rss_before_kb: int
    rss_after_kb: int
    create_s: float
    working_s: float


@dataclass(frozen=True)
class Traffic:
    """Sends and events during the load window and until the outbox drained."""

    load_s: float
    sends_accepted: int
    send_errors: int
    first_error: str | None
    events_load: int
    drain_s: float
    events_total: int
    drained: bool
    rss_after_load_kb: int


@dataclass(frozen=True)
class Restart:
    """A second server on the data of the first: seconds from its launch until it answered
    ``/ready`` and until every stored session was WORKING again, and its RSS then."""

    restart_ready_s: float
    restart_working_s: float
    restart_rss_kb: int


@dataclass(frozen=True)
class SessionsResult:
    """Figures of one sessions run (the restart ones when it was measured)."""

    sessions: int
    memory: Memory
    traffic: Traffic
    restart: Restart | None = None

    @property
    def kb_per_session(self) -> float:
        """RSS growth per idle session, KiB."""
        return (self.memory.rss_after_kb - self.memory.rss_before_kb) / self.sessions

    @property
    def sends_per_s(self) -> float:
        """Sends answered 202 per second of load."""
        return self.traffic.sends_accepted / self.traffic.load_s

    @property
    def events_per_s_load(self) -> float:
        """Events appended per second during the load window."""
        return self.traffic.events_load / self.traffic.load_s

    @property
    def events_per_s_with_drain(self) -> float:
        """All events of the run per second of load plus drain."""
        return self.traffic.events_total / (self.traffic.load_s + self.traffic.drain_s)

    @property
    def errors(self) -> int:
        """Failed sends, plus one if the outbox did not drain in time."""
        return self.traffic.send_errors + (0 if self.traffic.drained else 1)

    def as_dict(self) -> dict[str, object]:
        """Flat JSON-ready view with the derived rates."""
        rates = {
            "kb_per_session": round(self.kb_per_session, 2),
            "sends_per_s": round(self.sends_per_s, 1),
            "events_per_s_load": round(self.events_per_s_load, 1),
            "events_per_s_with_drain": round(self.events_per_s_with_drain, 1),
        }
        restart = asdict(self.restart) if self.restart else {}
        figures = {**asdict(self.memory), **asdict(self.traffic), **restart}
        rounded = {k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}
        return {"sessions": self.sessions, **rounded, **rates, "errors": self.errors}


@dataclass
class Tally:
    """Outcome counts of many requests, with the first failure for the error message."""

    ok: int = 0
    errors: int = 0
    first_error: str | None = None

    def fail(self, detail: str) -> None:
        """Count a failure, remembering the first one."""
        self.errors += 1
        if self.first_error is None:
            self.first_error = detail


def session_names(count: int) -> list[str]:
    """``s0001``, ``s0002``, ... (at least four digits)."""
    return [f"s{i:04d}" for i in range(1, count + 1)]


@contextlib.contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Pin this thread to ``cpu`` (away from the server) for the block, if given."""
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def api_client(port: int, api_key: str) -> httpx.AsyncClient:
    """Keep-alive client for the local server (no proxies from the environment)."""
    size = CONNECTIONS_PER_CLIENT
    return httpx.AsyncClient(
        base_url=f"http://{HOST}:{port}",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=REQUEST_TIMEOUT_S,
        limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
        trust_env=False,
    )


@contextlib.asynccontextmanager
async def api_clients(port: int, api_key: str, concurrency: int) -> AsyncIterator[Clients]:
    """Enough clients for ``concurrency`` requests in flight, closed on exit."""
    count = -(-concurrency // CONNECTIONS_PER_CLIENT)
    async with contextlib.AsyncExitStack() as stack:
        clients = [api_client(port, api_key) for _ in range(count)]
        yield [await stack.enter_async_context(client) for client in clients]


async def post(
    client: httpx.AsyncClient, tally: Tally, url: str, body: Mapping[str, object], expect: int
) -> None:
    """POST ``body`` as JSON; count it ok when it answers ``expect``."""
    try:
        response = await client.post(url, json=body)
    except httpx.HTTPError as exc:
        tally.fail(f"POST {url}: {exc!r}")
        return
    if response.status_code == expect:
        tally.ok += 1
    else:
        tally.fail(f"POST {url}: {response.status_code} {response.text[:200]}")


async def pool(clients: Clients, concurrency: int, job: Job) -> None:
    """Run ``concurrency`` workers spread over ``clients``, each calling ``job`` until False."""

    async def worker(client: httpx.AsyncClient) -> None:
        while await job(client):
            pass

    shards = itertools.cycle(clients)
    await asyncio.gather(*(worker(next(shards)) for _ in range(concurrency)))


async def create_sessions(clients: Clients, names: list[str]) -> None:
    """Create ``names`` with :data:`CREATE_CONCURRENCY` requests in flight; raise on any failure."""
    pending = iter(names)
    tally = Tally()

    async def job(client: httpx.AsyncClient) -> bool:
        name = next(pending, None)
        if name is None:
            return False
        body = {"name": name, "config": SESSION_CONFIG}
        await post(client, tally, "/api/v1/sessions", body, 201)
        return True

    await pool(clients, CREATE_CONCURRENCY, job)
    if tally.errors:
        raise BenchError(f"{tally.errors} session creations failed; first: {tally.first_error}")


async def statuses(client: httpx.AsyncClient) -> Counter[str]:
    """How many sessions are in each status."""
    response = await client.get("/api/v1/sessions")
    if response.status_code != 200:
        raise BenchError(f"GET /api/v1/sessions answered {response.status_code}")
    return Counter(str(session["status"]) for session in response.json())


async def wait_working(client: httpx.AsyncClient, count: int) -> None:
    """Poll until ``count`` sessions exist and all are WORKING, or raise after the timeout."""
    deadline = time.monotonic() + WORKING_TIMEOUT_S
    seen: Counter[str] = Counter()
    while time.monotonic() < deadline:
        seen = await statuses(client)
        if seen.total() >= count and seen["WORKING"] == seen.total():
            return
        await asyncio.sleep(POLL_S)
    raise BenchError(f"sessions not all WORKING after {WORKING_TIMEOUT_S:.0f}s: {dict(seen)}")


async def wait_restarted(client: httpx.AsyncClient, count: int, since: datetime) -> None:
    """Poll until ``count`` sessions are WORKING by a status written at ``since`` or later.

    Listing thousands of sessions costs the server a few hundred ms, so the pause after a poll
    is at least twice what the poll took: the probe takes at most a third of the server.
    """
    deadline = time.monotonic() + WORKING_TIMEOUT_S
    again = 0
    while time.monotonic() < deadline:
        asked = time.monotonic()
        response = await client.get("/api/v1/sessions")
        if response.status_code != 200:
            raise BenchError(f"GET /api/v1/sessions answered {response.status_code}")
        again = sum(
            1
            for session in response.json()
            if session["status"] == "WORKING"
            and datetime.fromisoformat(session["updated_at"]) >= since
        )
        if again >= count:
            return
        await asyncio.sleep(max(POLL_S, 2 * (time.monotonic() - asked)))
    raise BenchError(f"{count - again} sessions not WORKING again after {WORKING_TIMEOUT_S:.0f}s")


async def first_after(client: httpx.AsyncClient, after: int) -> int | None:
    """Seq of the oldest event newer than ``after``, or None if there is none."""
    response = await client.get("/api/v1/events", params={"after": after, "limit": 1})
    while response.status_code == 429:  # over the key's rate: wait as told, then ask again
        await asyncio.sleep(float(response.headers.get("retry-after", "1")))
        response = await client.get("/api/v1/events", params={"after": after, "limit": 1})
    if response.status_code != 200:
        raise BenchError(f"GET /api/v1/events answered {response.status_code}")
    data = response.json()["data"]
    return int(data[0]["seq"]) if data else None


async def newest_seq(client: httpx.AsyncClient, known: int = 0) -> int:
    """The newest event seq (at least ``known``): gallop forward, then bisect, ~2·log2 probes."""
    low, step = known, GALLOP_STEP
    high: int | None = None
    for _ in range(MAX_PROBES):
        found = await first_after(client, low + step - 1)
        if found is None:
            high = low + step - 1
            break
        low, step = found, step * 2
    if high is None:
        raise BenchError("event seq kept growing faster than it could be probed")
    for _ in range(MAX_PROBES):
        if low >= high:
            return low
        mid = (low + high + 1) // 2
        found = await first_after(client, mid - 1)
        low, high = (low, mid - 1) if found is None else (found, high)
    return low


async def settled_rss(running: Running) -> int:
    """Server RSS in KiB after :data:`SETTLE_S` seconds of quiet."""
    await asyncio.sleep(SETTLE_S)
    return rss_kb(running.process.pid)


async def measure_memory(clients: Clients, running: Running, names: list[str]) -> Memory:
    """RSS before and after creating ``names``, and the time until they were WORKING."""
    await create_sessions(clients, [WARMUP_SESSION])
    baseline = (await statuses(clients[0])).total()
    await wait_working(clients[0], baseline)
    before = await settled_rss(running)
    started = time.monotonic()
    await create_sessions(clients, names)
    created = time.monotonic()
    await wait_working(clients[0], baseline + len(names))
    working = time.monotonic()
    after = await settled_rss(running)
    return Memory(before, after, created - started, working - started)


async def send_load(clients: Clients, names: list[str], duration_s: float) -> Tally:
    """Send ``ping`` to the echo contact round-robin over ``names`` for ``duration_s``."""
    targets = itertools.cycle(names)
    deadline = time.monotonic() + duration_s
    tally = Tally()
    body: dict[str, object] = {"to": ECHO_CONTACT, "text": "ping"}

    async def job(client: httpx.AsyncClient) -> bool:
        if time.monotonic() >= deadline or tally.ok + tally.errors >= MAX_SENDS:
            return False
        await post(client, tally, f"/api/v1/sessions/{next(targets)}/messages", body, 202)
        return True

    await pool(clients, SEND_CONCURRENCY, job)
    return tally


async def wait_drained(client: httpx.AsyncClient, seq: int) -> tuple[int, float, bool]:
    """Poll the newest seq until it has been still for :data:`DRAIN_QUIET_S`.

    Returns (newest seq, monotonic time of its last growth, drained within the timeout).
    """
    changed = started = time.monotonic()
    while time.monotonic() - started < DRAIN_TIMEOUT_S:
        await asyncio.sleep(DRAIN_POLL_S)
        newest = await newest_seq(client, seq)
        now = time.monotonic()
        if newest != seq:
            seq, changed = newest, now
        elif now - changed >= DRAIN_QUIET_S:
            return seq, changed, True
    return seq, changed, False


async def measure_traffic(
    clients: Clients, running: Running, names: list[str], duration_s: float
) -> Traffic:
    """Load every session with sends, then wait for the outbox to drain."""
    first = await newest_seq(clients[0])
    started = time.monotonic()
    tally = await send_load(clients, names, duration_s)
    stopped = time.monotonic()
    at_stop = await newest_seq(clients[0], first)
    last, changed, drained = await wait_drained(clients[0], at_stop)
    return Traffic(
        load_s=stopped - started,
        sends_accepted=tally.ok,
        send_errors=tally.errors,
        first_error=tally.first_error,
        events_load=at_stop - first,
        drain_s=changed - stopped,
        events_total=last - first,
        drained=drained,
        rss_after_load_kb=rss_kb(running.process.pid),
    )


async def run_workload(running: Running, plan: Plan) -> SessionsResult:
    """Both measurements against an already started server."""
    names = session_names(plan.sessions)
    concurrency = max(CREATE_CONCURRENCY, SEND_CONCURRENCY)
    async with api_clients(running.port, plan.api_key, concurrency) as clients:
        memory = await measure_memory(clients, running, names)
        traffic = await measure_traffic(clients, running, names, plan.duration_s)
    return SessionsResult(plan.sessions, memory, traffic)


async def restarted(running: Running, plan: Plan, since: datetime) -> None:
    """Wait until the warm-up, the default and the plan's sessions are WORKING again."""
    async with api_clients(running.port, plan.api_key, 1) as clients:
        await wait_restarted(clients[0], plan.sessions + 2, since)


def measure_restart(
    server: Server,
    cwd: Path,
    log_path: Path,
    plan: Plan,
    prefix: Sequence[str] = (),
    client_cpu: int | None = None,
) -> Restart:
    """Start ``server`` on the data a finished :func:`run` left; time it (see :class:`Restart`)."""
    since = datetime.now().astimezone()
    launched = time.monotonic()
    with serve(server, cwd, log_path, prefix) as running:
        ready = time.monotonic() - launched
        with pinned(client_cpu):
            asyncio.run(restarted(running, plan, since))
        working = time.monotonic() - launched
        return Restart(round(ready, 3), round(working, 3), rss_kb(running.process.pid))


def run(running: Running, plan: Plan, client_cpu: int | None) -> SessionsResult:
    """Run the workload on its own event loop, pinned to ``client_cpu`` if given."""
    with pinned(client_cpu):
        try:
            return asyncio.run(run_workload(running, plan))
        except httpx.HTTPError as exc:
            raise BenchError(f"request to the server failed: {exc!r}") from exc
