"""The noisy-neighbour workload: does tenant B keep its latencies while tenant A attacks?

One zapgate server (on the server CPU; product defaults for every quota and rate limit, pacing
off, loopback webhook receivers allowed) with two tenants, each with its own key made by
``zapgate keys create`` before the server starts:

* the victim B (:mod:`bench.victim`): ~20 API requests/s, a webhook subscription and a live
  Socket.IO client, measured the same way in both phases;
* the hostile A: a history of :data:`DEFAULT_HISTORY` events made before the phases; in the second
  phase only, :mod:`bench.hostile` (ReDoS, slow and dead webhook receivers, 40 sockets replaying
  from offset 0) and a wrk flood of a cheap GET with A's key.

Phase "idle" runs B alone, phase "hostile" runs B while A attacks. Each of B's p99 figures
passes when hostile/idle <= :data:`MAX_RATIO` (the bar of issue 8), and B must get no errors.
Both phases run on the same server within a minute, so the ratios mean something on a busy
machine; the absolute figures less so.

A's load generators run under ``nice -n 19`` on the load generator's CPU, so they take it from
B's measuring client only when that is idle: B's figures show the server's fairness, not a fight
for the client CPU (a real attacker runs on another machine).
"""

import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import httpx
import socketio
import uvloop

from bench import hostile
from bench.aio import bounded
from bench.server import BenchError, Running, free_port, log_tail, serve
from bench.sessions import Tally, api_clients, create_sessions, newest_seq, pinned, pool
from bench.sessions import wait_working as all_working
from bench.targets import Request, key_command, neighbours_server, tenant_command
from bench.victim import Distribution, PhaseFigures, Victim
from bench.wrkrun import FLOOD_SCRIPT, parse_statuses, parse_wrk, wrk_argv, wrk_env

REPO_ROOT = Path(__file__).resolve().parent.parent
VICTIM, HOSTILE = "victim", "hostile"
"""Tenant ids of B and A."""
VICTIM_SESSION, HOSTILE_SESSION = "main", "noise"
DEFAULT_HISTORY = 5000
"""A's events before the phases: what each of its sockets asks to replay (today's server answers
``resync_required`` instead beyond 10,000)."""
EVENTS_PER_SEND = 5
"""A send to the echo contact makes queued, sent, delivered, read and the echo's received."""
ECHO_CONTACT = "5511900000000"
HISTORY_CONCURRENCY = 20
HISTORY_TIMEOUT_S = 90.0
WARMUP_S = 2.0
MIN_DURATION_S = 30
"""Each phase lasts at least this long: a p99 of 900 samples is the 9th largest, not the 3rd,
so one stray pause does not decide the verdict."""
RAMP_S = 2.0
ATTACK_MARGIN_S = 3.0
"""B's load runs on while A opens its connections and starts; then the measured window."""
MAX_RATIO = 2.0
RESOLUTION_MS = 1.0
"""Envelope timestamps are whole milliseconds: no figure is taken as smaller than this."""
KEY_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 60.0
EXIT_GRACE_S = 20.0
"""How long after the phase the hostile process and wrk may take to finish."""
FLOOD_PATH = "/api/v1/sessions"


@dataclass(frozen=True)
class Plan:
    """What to run, where to log, and how to place the processes."""

    duration_s: int
    api_key: str
    log_dir: Path
    wrk: str
    server_prefix: list[str]
    hostile_prefix: list[str]
    """Prefix of A's load generators (taskset to the client CPU, ``nice -n 19``)."""
    client_cpu: int | None
    attacks: frozenset[str] = frozenset(hostile.ATTACKS)
    history: int = DEFAULT_HISTORY


@dataclass(frozen=True)
class Flood:
    """What A's wrk flood got."""

    requests: int = 0
    requests_per_sec: float = 0.0
    statuses: dict[int, int] | None = None
    socket_errors: dict[str, int] | None = None
    failure: str | None = None

    @property
    def rate_limited(self) -> int:
        """Answers 429."""
        return (self.statuses or {}).get(429, 0)


@dataclass(frozen=True)
class Ratio:
    """One percentile of one of B's figures, idle and hostile."""

    name: str
    idle: Distribution
    hostile: Distribution
    percentile: int
    gated: bool

    @property
    def idle_ms(self) -> float | None:
        """The idle figure (None: no sample)."""
        return self.idle.at(self.percentile)

    @property
    def hostile_ms(self) -> float | None:
        """The hostile figure (None: no sample, e.g. no inbound message was even answered)."""
        return self.hostile.at(self.percentile)

    @property
    def ratio(self) -> float | None:
        """Hostile over idle (each at least :data:`RESOLUTION_MS`); None without samples."""
        if self.idle_ms is None or self.hostile_ms is None:
            return None
        return max(self.hostile_ms, RESOLUTION_MS) / max(self.idle_ms, RESOLUTION_MS)

    @property
    def passed(self) -> bool:
        """Within :data:`MAX_RATIO` (no sample: not passed)."""
        return self.ratio is not None and self.ratio <= MAX_RATIO

    def verdict(self) -> str:
        """The failure in words, e.g. ``webhook lag p99 7.4x``."""
        if self.ratio is None:
            return f"{self.name}: no sample"
        return f"{self.name} {self.ratio:.1f}x"

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view."""
        figures = {"idle_ms": self.idle_ms, "hostile_ms": self.hostile_ms, "ratio": self.ratio}
        return {
            "name": self.name,
            **{k: None if v is None else round(v, 3) for k, v in figures.items()},
            "gated": self.gated,
            "passed": self.passed,
        }


@dataclass(frozen=True)
class NeighboursResult:
    """B's figures in both phases and what A achieved."""

    attacks: list[str]
    history: int
    idle: PhaseFigures
    ramp: PhaseFigures
    """B during the attack's first ``RAMP_S`` seconds (A opening its connections): reported,
    not judged, since the gate is about B's service under a sustained attack."""
    hostile: PhaseFigures
    attacker: dict[str, object]
    flood: Flood | None

    def ratios(self) -> list[Ratio]:
        """B's figures side by side; the p99s are gated."""
        i, h = self.idle, self.hostile
        return [
            Ratio(f"{name} p{pct}", idle, hostile, pct, gated=pct == 99)
            for name, idle, hostile in (
                ("API latency", i.api, h.api),
                ("webhook lag", i.webhook_lag, h.webhook_lag),
                ("socket lag", i.socket_lag, h.socket_lag),
            )
            for pct in (50, 99)
        ]

    def failed_checks(self) -> list[str]:
        """Why B was not kept safe from A (empty: PASS)."""
        failed = [r.verdict() for r in self.ratios() if r.gated and not r.passed]
        if self.hostile.api_errors:
            failed.append(f"{self.hostile.api_errors} of B's requests failed under load")
        return failed

    @property
    def idle_problems(self) -> int:
        """Errors and stalls of the idle phase: the baseline itself is not valid."""
        i = self.idle
        return i.api_errors + i.api.stalled + i.webhook_lag.stalled + i.socket_lag.stalled

    @property
    def passed(self) -> bool:
        """Every gated ratio within bounds, no error for B, a valid baseline."""
        return not self.failed_checks() and not self.idle_problems

    @property
    def errors(self) -> int:
        """Failed checks plus the idle phase's errors and stalls."""
        return len(self.failed_checks()) + self.idle_problems

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view."""
        flood = {} if self.flood is None else {"flood": asdict(self.flood)}
        return {
            "attacks": self.attacks,
            "history_events": self.history,
            "idle": self.idle.as_dict(),
            "ramp_up": self.ramp.as_dict(),
            "hostile": self.hostile.as_dict(),
            "ratios": [r.as_dict() for r in self.ratios()],
            "max_ratio": MAX_RATIO,
            "passed": self.passed,
            "failed_checks": self.failed_checks(),
            "attacker": {**self.attacker, **flood},
            "errors": self.errors,
        }


def log(message: str) -> None:
    """Progress line on stderr."""
    print(f"[bench] neighbours: {message}", file=sys.stderr, flush=True)


# set-up -----------------------------------------------------------------------------------------


def create_key(plan: Plan, data_dir: Path, tenant: str) -> str:
    """Run ``zapgate keys create`` for ``tenant`` against the data dir; return the key."""
    env = {**os.environ, **neighbours_server(data_dir, plan.api_key).env}
    if tenant != "default":  # made by the first start; the others by the operator
        subprocess.run(
            tenant_command(tenant), cwd=REPO_ROOT, env=env, capture_output=True, text=True,
            timeout=KEY_TIMEOUT_S, check=False,
        )  # fmt: skip
    try:
        proc = subprocess.run(
            key_command(tenant), cwd=REPO_ROOT, env=env, capture_output=True, text=True,
            timeout=KEY_TIMEOUT_S, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"zapgate keys create --tenant {tenant} took over {exc.timeout}s") from exc
    lines = proc.stdout.split()
    if proc.returncode != 0 or not lines:
        raise BenchError(f"zapgate keys create --tenant {tenant} failed:\n{proc.stderr}")
    return lines[-1]


async def create_session(port: int, key: str, name: str) -> None:
    """Create a simulator session for the key's tenant and wait until it is WORKING."""
    async with api_clients(port, key, 1) as clients:
        await create_sessions(clients, [name])
        await all_working(clients[0], 1)


async def build_history(port: int, key: str, events: int) -> int:
    """Sends to the echo contact until A's log holds ``events`` events; its newest seq."""
    sends = iter(range(math.ceil(events / EVENTS_PER_SEND)))
    tally = Tally()
    path = f"/api/v1/sessions/{HOSTILE_SESSION}/messages"
    body: dict[str, object] = {"to": ECHO_CONTACT, "text": "history"}

    async def job(client: httpx.AsyncClient) -> bool:
        if next(sends, None) is None:
            return False
        while True:  # the history is set-up, not the attack: it keeps to A's rate limit
            try:
                answer = await client.post(path, json=body)
            except httpx.HTTPError as exc:
                tally.fail(f"POST {path}: {exc!r}")
                return True
            if answer.status_code != 429:
                break
            await asyncio.sleep(float(answer.headers.get("retry-after", "1")))
        if answer.status_code == 202:
            tally.ok += 1
        else:
            tally.fail(f"POST {path}: {answer.status_code} {answer.text[:200]}")
        return True

    async with api_clients(port, key, HISTORY_CONCURRENCY) as clients:
        await pool(clients, HISTORY_CONCURRENCY, job)
        if tally.errors:
            raise BenchError(f"A's history: {tally.errors} sends failed; {tally.first_error}")
        deadline = time.monotonic() + HISTORY_TIMEOUT_S
        newest = 0
        while time.monotonic() < deadline:
            newest = await newest_seq(clients[0], newest)
            if newest >= events:
                return newest
            await asyncio.sleep(0.25)
    raise BenchError(f"A's history reached {newest} of {events} events in {HISTORY_TIMEOUT_S}s")


# A's processes -----------------------------------------------------------------------------------


def attack_s(plan: Plan) -> int:
    """How long A attacks: through the ramp-up and B's whole measured window, so that A's own
    start and end (connections opened, receivers torn down) fall outside the window."""
    return math.ceil(RAMP_S + plan.duration_s + ATTACK_MARGIN_S)


async def start_hostile(
    plan: Plan, port: int, key: str, history: int
) -> asyncio.subprocess.Process:
    """Start :mod:`bench.hostile` and wait for its ``ready``."""
    argv = [
        *plan.hostile_prefix, sys.executable, "-m", "bench.hostile",
        "--port", str(port), "--session", HOSTILE_SESSION, "--duration", str(attack_s(plan)),
        "--history", str(history), "--summary", str(plan.log_dir / "hostile.json"),
        "--attacks", ",".join(sorted(plan.attacks)),
    ]  # fmt: skip
    log_path = plan.log_dir / "hostile.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=REPO_ROOT, env={**os.environ, hostile.KEY_ENV: key},
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, start_new_session=True,
        )  # fmt: skip
    assert process.stdout is not None
    try:
        line = await bounded(process.stdout.readline(), READY_TIMEOUT_S)
    except TimeoutError:
        line = b""
    if line.strip() != hostile.READY.encode():
        await finish(process, 0)
        raise BenchError(f"the hostile tenant did not get ready:\n{log_tail(log_path)}")
    return process


async def start_flood(plan: Plan, port: int, key: str) -> asyncio.subprocess.Process:
    """wrk on a cheap GET with A's key, for the phase's duration."""
    request = Request("GET", FLOOD_PATH, {"Authorization": f"Bearer {key}"})
    argv = wrk_argv(plan.wrk, port, request, attack_s(plan), plan.hostile_prefix, FLOOD_SCRIPT)
    return await asyncio.create_subprocess_exec(
        *argv, env=wrk_env(request), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


async def finish(process: asyncio.subprocess.Process, grace: float) -> tuple[bytes, bool]:
    """Its output once it exits within ``grace`` (True), else kill its group (False)."""
    try:
        output, _ = await bounded(process.communicate(), grace)
        return output or b"", True
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        output, _ = await process.communicate()
        return output or b"", False


def flood_figures(output: bytes, finished: bool) -> Flood:
    """Parse wrk's output (a stalled or unparsable run is a failure, not an exception)."""
    text = output.decode(errors="replace")
    if not finished:
        return Flood(failure="wrk did not finish (killed)")
    try:
        parsed = parse_wrk(text)
    except BenchError:
        return Flood(statuses=parse_statuses(text), failure=f"unparsable wrk output: {text[-300:]}")
    return Flood(
        parsed.requests, parsed.requests_per_sec, parse_statuses(text), parsed.socket_errors
    )


def attacker_summary(plan: Plan, finished: bool) -> dict[str, object]:
    """What :mod:`bench.hostile` wrote, or why it wrote nothing."""
    path = plan.log_dir / "hostile.json"
    if not finished or not path.exists():
        return {"failure": f"stalled: no summary\n{log_tail(plan.log_dir / 'hostile.log')}"}
    data: dict[str, object] = json.loads(path.read_text())
    return data


# run ---------------------------------------------------------------------------------------------


async def hostile_phase(
    plan: Plan, victim: Victim, port: int, key: str, history: int
) -> tuple[PhaseFigures, PhaseFigures, dict[str, object], Flood | None]:
    """B measured while A ramps its attack up, then while it keeps it up; A always ends."""
    attacker: asyncio.subprocess.Process | None = None
    flood: asyncio.subprocess.Process | None = None
    try:
        if plan.attacks - {hostile.FLOOD}:
            attacker = await start_hostile(plan, port, key, history)
        if hostile.FLOOD in plan.attacks:
            flood = await start_flood(plan, port, key)
        ramp = await victim.phase(RAMP_S)
        figures = await victim.phase(plan.duration_s)
    finally:
        wrk_done = await finish(flood, EXIT_GRACE_S) if flood else None
        attacker_done = await finish(attacker, EXIT_GRACE_S) if attacker else None
    summary = {} if attacker_done is None else attacker_summary(plan, attacker_done[1])
    return ramp, figures, summary, flood_figures(*wrk_done) if wrk_done else None


async def run_workload(plan: Plan, running: Running, keys: dict[str, str]) -> NeighboursResult:
    """Set up both tenants, then the idle phase, then the hostile one."""
    port = running.port
    await create_session(port, keys[VICTIM], VICTIM_SESSION)
    await create_session(port, keys[HOSTILE], HOSTILE_SESSION)
    started = time.monotonic()
    history = await build_history(port, keys[HOSTILE], plan.history)
    log(f"tenant A's history: {history} events in {time.monotonic() - started:.1f}s")
    async with Victim(port, keys[VICTIM], VICTIM_SESSION, free_port()) as victim:
        await victim.phase(WARMUP_S)
        log(f"idle phase: tenant B alone for {plan.duration_s}s")
        idle = await victim.phase(plan.duration_s)
        log(f"hostile phase: tenant A attacks ({', '.join(sorted(plan.attacks))})")
        ramp, hostile_figures, attacker, flood = await hostile_phase(
            plan, victim, port, keys[HOSTILE], history
        )
    attacks = sorted(plan.attacks)
    return NeighboursResult(attacks, history, idle, ramp, hostile_figures, attacker, flood)


def run(plan: Plan) -> NeighboursResult:
    """Start the server with both tenants' keys and run the workload (client CPU, uvloop)."""
    data_dir = plan.log_dir / "neighbours-data"
    data_dir.mkdir()
    keys = {tenant: create_key(plan, data_dir, tenant) for tenant in (VICTIM, HOSTILE)}
    server = neighbours_server(data_dir, plan.api_key)
    log_path = plan.log_dir / "neighbours.log"
    with (
        serve(server, REPO_ROOT, log_path, plan.server_prefix) as running,
        pinned(plan.client_cpu),
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        try:
            return runner.run(run_workload(plan, running, keys))
        except (httpx.HTTPError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise BenchError(f"request failed: {exc!r}") from exc
        except socketio.exceptions.ConnectionError as exc:
            raise BenchError(f"B's Socket.IO client could not connect: {exc!r}") from exc
