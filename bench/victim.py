"""The victim tenant B of the noisy-neighbour workload: a steady, modest load, measured per phase.

The API load is open-loop: requests go out on a fixed schedule (:data:`RATE` per second, in turn:
list sessions, inbound, message history, inbound, send, inbound) whatever the answers,
and each latency runs from the request's scheduled time, so a stalled server shows as long
latencies, not as fewer requests. Every simulated inbound message is then followed to B's webhook
receiver and B's live Socket.IO client (both in this process); its lag on each is the receipt
time minus the envelope's ``timestamp``.

A phase issues requests for its duration, then waits up to :data:`GRACE_S` for the answers and
deliveries still out. Whatever is missing then counts as *stalled*, with its wait so far as a
lower bound of its latency or lag (so a stall raises the percentiles, it never hides).
"""

import asyncio
import contextlib
import itertools
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
import socketio
from aiohttp import web

from bench.aio import bounded
from bench.server import HOST, BenchError

RATE = 30.0
"""B's API requests per second: half of them simulated inbound messages (each followed to the
webhook and the socket, 150 lag samples per channel in 10 s), a sixth each of the other kinds."""
GRACE_S = 15.0
"""After a phase, how long answers and deliveries still out are awaited before they count as
stalled."""
MAX_CONNECTIONS = 64
REQUEST_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 5.0
SEND_TO = "5511977776666"
"""Not the simulator's echo contact: B's sends add acks, but no inbound message."""
INBOUND_FROM = "5511988887777"
RECEIVED = "message.received"
QUIET = logging.getLogger("bench.socketio")
"""For the Socket.IO clients: a stalled server is measured, not logged to the terminal."""
QUIET.setLevel(logging.CRITICAL)


def socket_client() -> Any:
    """A Socket.IO client that never reconnects by itself and stays quiet."""
    return socketio.AsyncClient(reconnection=False, logger=QUIET, engineio_logger=QUIET)


@dataclass(frozen=True)
class Distribution:
    """Percentiles of latencies or lags (ms); ``stalled`` of them are lower bounds."""

    count: int
    stalled: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, values_ms: list[float], stalled: int) -> "Distribution":
        """Nearest-rank percentiles of ``values_ms``."""
        ordered = sorted(values_ms)

        def rank(pct: float) -> float:
            if not ordered:
                return 0.0
            return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]

        return cls(len(ordered), stalled, rank(50), rank(95), rank(99), rank(100))

    def at(self, percentile: int) -> float | None:
        """The p50, p95, p99 or p100 (max) figure; None without samples."""
        figures = {50: self.p50_ms, 95: self.p95_ms, 99: self.p99_ms, 100: self.max_ms}
        return figures[percentile] if self.count else None


@dataclass(frozen=True)
class PhaseFigures:
    """B's experience during one phase."""

    duration_s: float
    api: Distribution
    api_errors: int
    first_error: str | None
    webhook_lag: Distribution
    socket_lag: Distribution

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view."""
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass
class Tally:
    """What one phase recorded while it ran."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    inbound: dict[str, float] = field(default_factory=dict)
    """Message id of each answered inbound simulation -> its timestamp (wall clock, s)."""

    def fail(self, detail: str) -> None:
        """Count a failed request, remembering the first one."""
        self.errors += 1
        if self.first_error is None:
            self.first_error = detail


@dataclass(frozen=True)
class Kind:
    """One of B's request kinds; ``follow``: its answer's id is followed to webhook and socket."""

    name: str
    method: str
    path: str
    expected: int
    body: dict[str, str] | None = None
    follow: bool = False


def stamp_of(data: dict[str, Any]) -> float:
    """The ``timestamp`` of an envelope or a message, as a wall-clock time in seconds."""
    return datetime.fromisoformat(str(data["timestamp"])).timestamp()


class Receipts:
    """First receipt of each message id on one channel (lag in seconds), with a wake-up."""

    def __init__(self) -> None:
        self.lags: dict[str, float] = {}
        self.arrived = asyncio.Event()

    def record(self, envelope: dict[str, Any], received_at: float) -> None:
        """Store a ``message.received`` envelope's lag (other types are ignored)."""
        if envelope.get("type") != RECEIVED:
            return
        message_id = str(envelope["payload"]["id"])
        self.lags.setdefault(message_id, received_at - stamp_of(envelope))
        self.arrived.set()


class Victim:
    """B's clients: the API load, a webhook receiver, a live Socket.IO client."""

    def __init__(self, port: int, api_key: str, session: str, hook_port: int) -> None:
        self._port = port
        self._api_key = api_key
        self._session = session
        self._hook_port = hook_port
        self.webhook = Receipts()
        self.socket = Receipts()
        self._stack = contextlib.AsyncExitStack()
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "Victim":
        await self._stack.__aenter__()
        try:
            await self._start()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(TimeoutError):
            await bounded(self._stack.aclose(), CLOSE_TIMEOUT_S * 2)

    async def _start(self) -> None:
        connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS)
        self._http = await self._stack.enter_async_context(
            aiohttp.ClientSession(
                base_url=f"http://{HOST}:{self._port}",
                headers={"Authorization": f"Bearer {self._api_key}"},
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
            )
        )
        await self._serve_hooks()
        await self._subscribe()
        await self._connect_socket()

    async def _serve_hooks(self) -> None:
        async def hook(request: web.Request) -> web.Response:
            body = await request.json()
            self.webhook.record(body, time.time())
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        await web.TCPSite(runner, HOST, self._hook_port).start()

    async def _subscribe(self) -> None:
        body = {"url": f"http://{HOST}:{self._hook_port}/hook", "events": [RECEIVED]}
        status, data = await _answer(self._client().post("/api/v1/webhooks", json=body))
        if status != 201:
            raise BenchError(f"B's webhook subscription answered {status}: {data}")

    async def _connect_socket(self) -> None:
        client = socket_client()
        client.on("event", lambda envelope: self.socket.record(envelope, time.time()))
        await bounded(
            client.connect(
                f"http://{HOST}:{self._port}",
                auth={"token": self._api_key},
                transports=["websocket"],
                wait_timeout=CONNECT_TIMEOUT_S,
            ),
            CONNECT_TIMEOUT_S * 2,
        )
        self._stack.push_async_callback(_disconnect, client)

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise BenchError("the victim's client is not started")
        return self._http

    def _kinds(self) -> list[Kind]:
        """The request kinds, issued in turn (every second one an inbound message)."""
        base = f"/api/v1/sessions/{self._session}"
        inbound = Kind(
            "inbound", "POST", f"{base}/simulate/inbound", 201,
            {"from": INBOUND_FROM, "text": "hi"}, follow=True,
        )  # fmt: skip
        return [
            Kind("list sessions", "GET", "/api/v1/sessions", 200),
            inbound,
            Kind("history", "GET", f"{base}/messages?limit=50", 200),
            inbound,
            Kind("send", "POST", f"{base}/messages", 202, {"to": SEND_TO, "text": "hello"}),
            inbound,
        ]

    async def _request(self, kind: Kind, scheduled: float, tally: Tally) -> None:
        request = self._client().request(kind.method, kind.path, json=kind.body)
        try:
            status, data = await _answer(request, read=kind.follow)
        except (aiohttp.ClientError, TimeoutError) as exc:
            tally.latencies_ms.append((time.monotonic() - scheduled) * 1000)
            tally.fail(f"{kind.name}: {exc!r}")
            return
        tally.latencies_ms.append((time.monotonic() - scheduled) * 1000)
        if status != kind.expected:
            tally.fail(f"{kind.name}: {status} {str(data)[:200]}")
        elif kind.follow and data is not None:
            tally.inbound[str(data["id"])] = stamp_of(data)

    async def phase(self, duration_s: float) -> PhaseFigures:
        """Run B's load for ``duration_s``, then collect what arrives within the grace."""
        tally = Tally()
        pending: dict[asyncio.Task[None], float] = {}
        started = time.monotonic()
        kinds = itertools.cycle(self._kinds())
        for n in itertools.count():
            scheduled = started + n / RATE
            if scheduled >= started + duration_s:
                break
            await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
            task = asyncio.create_task(self._request(next(kinds), scheduled, tally))
            pending[task] = scheduled
            task.add_done_callback(lambda done: pending.pop(done, None))
        cutoff = time.monotonic() + GRACE_S
        if pending:
            await asyncio.wait(list(pending), timeout=GRACE_S)
        await self._await_deliveries(tally, cutoff)
        stalled = await _cancel(pending)
        tally.latencies_ms.extend(stalled)
        return PhaseFigures(
            duration_s=duration_s,
            api=Distribution.of(tally.latencies_ms, len(stalled)),
            api_errors=tally.errors,
            first_error=tally.first_error,
            webhook_lag=_lags(self.webhook, tally.inbound),
            socket_lag=_lags(self.socket, tally.inbound),
        )

    async def _await_deliveries(self, tally: Tally, cutoff: float) -> None:
        """Wait until both channels have every answered inbound message, or the cutoff."""
        for receipts in (self.webhook, self.socket):
            while not tally.inbound.keys() <= receipts.lags.keys():
                remaining = cutoff - time.monotonic()
                if remaining <= 0:
                    return
                receipts.arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await bounded(receipts.arrived.wait(), remaining)


async def _answer(request: Any, read: bool = True) -> tuple[int, dict[str, Any] | None]:
    """Status and (if ``read``, or on an error) the JSON object of an aiohttp request."""
    async with request as response:
        if not read and response.status < 300:
            await response.read()
            return response.status, None
        try:
            data = await response.json(content_type=None)
        except ValueError:
            data = {"text": (await response.text())[:200]}
        return response.status, data if isinstance(data, dict) else {"data": data}


async def _cancel(pending: dict[asyncio.Task[None], float]) -> list[float]:
    """Cancel the requests still out; their waits so far (ms), lower bounds of their latency."""
    now = time.monotonic()
    waits = [(now - scheduled) * 1000 for scheduled in pending.values()]
    tasks = list(pending)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return waits


def _lags(receipts: Receipts, inbound: dict[str, float]) -> Distribution:
    """Lags (ms) of the phase's inbound messages; a missing one's is its age now, counted from
    the message's timestamp (its event is stamped a moment later, in the same request)."""
    now = time.time()
    values, stalled = [], 0
    for message_id, created_at in inbound.items():
        lag = receipts.lags.get(message_id)
        if lag is None:
            stalled += 1
            lag = now - created_at
        values.append(lag * 1000)
    return Distribution.of(values, stalled)


async def _disconnect(client: Any) -> None:
    """Disconnect a Socket.IO client, bounded."""
    with contextlib.suppress(TimeoutError, OSError):
        await bounded(client.disconnect(), CLOSE_TIMEOUT_S)
