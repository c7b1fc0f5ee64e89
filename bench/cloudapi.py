"""The Cloud API workload: sustained sending to a local Graph API at a configured rate.

A fresh zapgate server (CPU 0, anti-ban pacing off; the engine keeps its own rate) gets one
``cloudapi`` session with ``rate_per_second`` = ``rate`` whose ``base_url`` is a lean local Graph
API (:mod:`bench.graphfake`, CPU 1). A client on CPU 1 offers ``rate`` sends a second for
``seconds`` (each to its own recipient, so Meta's per-recipient limit never applies), through
``POST /api/v1/sessions/meta/messages``. When the outbox has drained it reports:

- **achieved**: sends that reached the Graph API per second, first to last arrival;
- **busiest window**: the most sends that arrived in any 1-second window (never above ``rate``);
- **accept to sent**: p50/p99 from acceptance to the ``sent`` record (the stored rows: created
  and updated times), queueing included when the offer outruns the rate.
"""

import asyncio
import json
import os
import sqlite3
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import aiohttp
import httpx

from bench.graphfake import PHONE_NUMBER_ID, TOKEN, VERSION
from bench.server import HOST, BenchError, cpu_seconds, free_port, serve
from bench.sessions import pinned
from bench.targets import Server, zapgate_server

REPO_ROOT = Path(__file__).resolve().parent.parent
RATE = int(os.environ.get("BENCH_CLOUDAPI_RATE", "1000"))
SECONDS = int(os.environ.get("BENCH_CLOUDAPI_SECONDS", "30"))
IN_FLIGHT = 256
"""Client requests in flight at most (the offer is paced; this only bounds a stall)."""
DRAIN_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Plan:
    api_key: str
    log_dir: Path
    server_prefix: list[str]
    client_prefix: list[str]
    client_cpu: int | None
    rate: int = RATE
    seconds: int = SECONDS


@dataclass(frozen=True)
class CloudApiResult:
    rate_setting: int
    offered: int
    accepted: int
    refused: int
    sent: int
    arrived: int
    """Sends that reached the Graph API (more than ``sent``: some went twice)."""
    failed: int
    drained: bool
    achieved_per_s: float
    busiest_window: int
    accept_to_sent_p50_ms: float
    accept_to_sent_p99_ms: float
    cpu_ms_per_message: float

    @property
    def errors(self) -> int:
        """Refused sends, failed messages, a window over the setting, an undrained outbox."""
        over = 1 if self.busiest_window > self.rate_setting else 0
        twice = max(0, self.arrived - self.sent)
        return self.refused + self.failed + over + twice + (0 if self.drained else 1)

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "errors": self.errors}


def busiest_window(times: list[float], window: float = 1.0) -> int:
    """The most arrivals in any window of ``window`` seconds."""
    ordered = sorted(times)
    best = first = 0
    for last, at in enumerate(ordered):
        while ordered[first] <= at - window:
            first += 1
        best = max(best, last - first + 1)
    return best


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, max(0, round(pct / 100 * len(values)) - 1))]


def _rows(database: Path) -> list[tuple[str, int, int]]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as connection:
        rows = connection.execute(
            "SELECT status, created_at, updated_at FROM messages WHERE direction = 'out'"
        ).fetchall()
    return [(str(s), int(c), int(u)) for s, c, u in rows]


async def _create_session(port: int, api_key: str, graph_port: int, rate: int) -> None:
    config = {
        "phone_number_id": PHONE_NUMBER_ID,
        "access_token": TOKEN,
        "app_secret": "bench-app-secret",
        "verify_token": "bench-verify",
        "api_version": VERSION,
        "base_url": f"http://{HOST}:{graph_port}",
        "rate_per_second": rate,
    }
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", headers=headers) as client:
        body = {"name": "meta", "engine": "cloudapi", "config": config}
        created = await client.post("/api/v1/sessions", json=body)
        if created.status_code != 201:
            raise BenchError(f"cannot create the session: {created.status_code} {created.text}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = (await client.get("/api/v1/sessions/meta")).json()["status"]
            if status == "WORKING":
                return
            await asyncio.sleep(0.1)
    raise BenchError(f"the Cloud API session is {status}, not WORKING")


async def _offer(port: int, api_key: str, rate: int, seconds: int) -> tuple[int, int, int]:
    """Offer ``rate`` sends a second for ``seconds``: (offered, accepted, refused)."""
    url = f"http://{HOST}:{port}/api/v1/sessions/meta/messages"
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    accepted = refused = 0
    slots = asyncio.Semaphore(IN_FLIGHT)
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as client:

        async def one(n: int) -> None:
            nonlocal accepted, refused
            body = json.dumps({"to": f"5511{900000000 + n}", "text": f"bench {n}"})
            try:
                async with client.post(url, data=body) as response:
                    await response.read()
                    if response.status == 202:
                        accepted += 1
                    else:
                        refused += 1
            except aiohttp.ClientError:
                refused += 1
            finally:
                slots.release()

        total = rate * seconds
        start = time.monotonic()
        tasks = []
        for n in range(total):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    return total, accepted, refused


def _wait_drained(database: Path) -> bool:
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        if not any(status == "queued" for status, _, _ in _rows(database)):
            return True
        time.sleep(0.5)
    return False


def run(plan: Plan) -> CloudApiResult:
    """Start the Graph API and zapgate, offer the load, read the figures."""
    data_dir = plan.log_dir / "cloudapi-data"
    data_dir.mkdir(exist_ok=True)
    graph = Server(
        command=(sys.executable, "-m", "bench.graphfake", "--port", "{port}"),
        ready_path="/__ready",
    )
    base = zapgate_server(data_dir, plan.api_key)
    server = replace(base, env={**base.env, "ZAPGATE_WEBHOOK_ALLOWLIST": "127.0.0.1"})
    graph_port = free_port()
    with (
        serve(graph, REPO_ROOT, plan.log_dir / "graphfake.log", plan.client_prefix, graph_port),
        serve(server, REPO_ROOT, plan.log_dir / "cloudapi.log", plan.server_prefix) as running,
    ):
        database = data_dir / "zapgate.db"
        with pinned(plan.client_cpu):
            asyncio.run(_create_session(running.port, plan.api_key, graph_port, plan.rate))
            cpu_before = cpu_seconds(running.process.pid)
            offered, accepted, refused = asyncio.run(
                _offer(running.port, plan.api_key, plan.rate, plan.seconds)
            )
        drained = _wait_drained(database)
        cpu = cpu_seconds(running.process.pid) - cpu_before
        dumped = httpx.get(f"http://{HOST}:{graph_port}/__dump", timeout=30).json()
    arrivals = sorted(dumped["arrivals"])
    rows = _rows(database)
    sent = [(created, updated) for status, created, updated in rows if status == "sent"]
    lags = sorted(float(updated - created) for created, updated in sent)
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    return CloudApiResult(
        rate_setting=plan.rate,
        offered=offered,
        accepted=accepted,
        refused=refused,
        sent=len(sent),
        arrived=len(arrivals),
        failed=sum(1 for status, _, _ in rows if status == "failed"),
        drained=drained,
        achieved_per_s=round((len(arrivals) - 1) / span, 1) if span else 0.0,
        busiest_window=busiest_window(arrivals),
        accept_to_sent_p50_ms=_percentile(lags, 50),
        accept_to_sent_p99_ms=_percentile(lags, 99),
        cpu_ms_per_message=round(1000 * cpu / len(sent), 3) if sent else 0.0,
    )


def section(result: CloudApiResult) -> str:
    """The workload's lines of the report."""
    return "\n".join(
        [
            f"cloudapi: rate_per_second {result.rate_setting}, offered {result.offered} sends "
            f"({result.accepted} accepted, {result.refused} refused)",
            f"  achieved {result.achieved_per_s:.1f} sends/s at the Graph API; busiest 1-s window "
            f"{result.busiest_window} (setting {result.rate_setting})",
            f"  accept to sent p50 {result.accept_to_sent_p50_ms:.0f} ms, "
            f"p99 {result.accept_to_sent_p99_ms:.0f} ms; {result.sent} sent "
            f"({result.arrived} reached the API), {result.failed} failed; "
            f"server CPU {result.cpu_ms_per_message:.3f} ms/message",
        ]
    )
