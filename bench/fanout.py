"""The fan-out workload: inbound messages broadcast to 100 Socket.IO clients, zapgate beside
the original Node backend, in the same run and on the same pinned core.

For each server (the original first, then zapgate with an authenticated tenant and the
simulator's ``default`` session), :file:`bench/node/fanout.js` runs on the load core: it
connects the clients (light Engine.IO/Socket.IO clients over ``ws``, websocket transport: one
core of the real socket.io-client saturated before either server did), warms up, then runs two
phases on the same sockets: ``max`` (inbound POSTs with :data:`CONCURRENCY` in flight, as fast as
the server takes them) and ``paced`` (:data:`RATE` inbound messages/s, each timed from its
scheduled send time). Every phase waits until every client has every message. The server's and
the clients' CPU seconds are read from ``/proc`` at each phase's start and end marks; clients
near 100% of their core mean the load, not the server, set the pace.

Figures per phase: messages/s, events/s (``message`` events received over all clients), e2e
latency p50/p99 (POST sent -> a client has it), server CPU per message. zapgate's clients also
receive each event's ``event`` envelope, which is not counted.
"""

import json
import os
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.server import BenchError, Running, cpu_seconds, http_call, serve
from bench.targets import NODE_DIR, Request, original_server, webhooks_server

CLIENTS = 100
CONCURRENCY = 50
RATE = 500
PHASES = ("max", "paced")
SESSION = "default"
ZAPGATE_PATH = f"/api/v1/sessions/{SESSION}/simulate/inbound"
ORIGINAL_PATH = "/inbound"
TIMEOUT_PAD_S = 120.0
WORKING_TIMEOUT_S = 60.0
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Plan:
    """What to run, where to log, and which CPUs to use."""

    duration_s: int
    api_key: str
    log_dir: Path
    server_prefix: list[str]
    load_prefix: list[str]
    clients: int = CLIENTS


@dataclass(frozen=True)
class Phase:
    """One phase's figures against one server."""

    phase: str
    messages: int
    receipts: int
    expected_receipts: int
    complete: bool
    late: int
    failed: int
    seconds: float
    messages_per_s: float
    events_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    @property
    def errors(self) -> int:
        """Failed POSTs, plus one if some receipt never came."""
        return self.failed + (0 if self.complete else 1)

    @property
    def cpu_ms_per_message(self) -> float:
        """Server CPU milliseconds per inbound message."""
        return 1000 * self.cpu_s / self.messages if self.messages else 0.0

    @property
    def client_busy(self) -> float:
        """Share of one core the clients used (near 1.0: the load core, not the server, limits)."""
        return self.client_cpu_s / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view."""
        return {
            **{k: v for k, v in self.__dict__.items()},
            "cpu_ms_per_message": round(self.cpu_ms_per_message, 3),
            "client_busy": round(self.client_busy, 3),
        }


@dataclass(frozen=True)
class Side:
    """Every phase against one server."""

    server: str
    phases: dict[str, Phase] = field(default_factory=dict)
    errors_seen: tuple[str, ...] = ()


@dataclass(frozen=True)
class FanoutResult:
    """The original's figures and zapgate's, phase by phase."""

    clients: int
    original: Side
    zapgate: Side

    @property
    def errors(self) -> int:
        """Errors over both servers and phases (a missing phase counts as one)."""
        total = 0
        for side in (self.original, self.zapgate):
            for name in PHASES:
                phase = side.phases.get(name)
                total += 1 if phase is None else phase.errors
        return total

    def ratio(self, name: str) -> float | None:
        """zapgate's events/s over the original's in phase ``name``."""
        ours, theirs = self.zapgate.phases.get(name), self.original.phases.get(name)
        if ours is None or theirs is None or not theirs.events_per_s:
            return None
        return ours.events_per_s / theirs.events_per_s

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view."""
        return {
            "clients": self.clients,
            "errors": self.errors,
            "original": {k: p.as_dict() for k, p in self.original.phases.items()},
            "zapgate": {k: p.as_dict() for k, p in self.zapgate.phases.items()},
            "ratio_events_per_s": {name: self.ratio(name) for name in PHASES},
        }


def drive(plan: Plan, running: Running, style: str, path: str, token: str | None) -> Side:
    """Run :file:`fanout.js` against ``running``; sample its CPU on the phase marks."""
    argv = [
        *plan.load_prefix, "node", str(NODE_DIR / "fanout.js"),
        "--url", f"http://127.0.0.1:{running.port}", "--path", path, "--style", style,
        "--clients", str(plan.clients), "--duration", str(plan.duration_s),
        "--concurrency", str(CONCURRENCY), "--rate", str(RATE), "--phases", ",".join(PHASES),
    ]  # fmt: skip
    env = {**os.environ, **({"BENCH_TOKEN": token} if token else {})}  # not in argv: ps shows it
    cpu: dict[str, float] = {}
    stderr: list[str] = []
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=NODE_DIR
    )

    def watch() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            stderr.append(line)
            if line.startswith('{"mark"'):
                mark = json.loads(line)
                key = f"{mark['phase']}:{mark['mark']}"
                cpu[key] = cpu_seconds(running.process.pid)
                cpu[f"client:{key}"] = cpu_seconds(process.pid)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    timer = threading.Timer(len(PHASES) * plan.duration_s + TIMEOUT_PAD_S, process.kill)
    timer.start()
    try:
        assert process.stdout is not None
        stdout = process.stdout.read()  # stderr is the watcher's alone
        process.wait()
        watcher.join()
    finally:
        timer.cancel()
    if process.returncode != 0:
        raise BenchError(f"fanout.js against {style} failed: {''.join(stderr)[-2000:]}")
    document = json.loads(stdout)
    phases = {}
    for raw in document["phases"]:
        name = raw["phase"]
        spent = cpu.get(f"{name}:end", 0.0) - cpu.get(f"{name}:start", 0.0)
        client = cpu.get(f"client:{name}:end", 0.0) - cpu.get(f"client:{name}:start", 0.0)
        phases[name] = Phase(**raw, cpu_s=spent, client_cpu_s=client)
    return Side(style, phases, tuple(document["errors"]))


def wait_working(running: Running, api_key: str) -> None:
    """Wait until the simulator's ``default`` session is WORKING, or raise."""
    request = Request("GET", f"/api/v1/sessions/{SESSION}", {"Authorization": f"Bearer {api_key}"})
    deadline = time.monotonic() + WORKING_TIMEOUT_S
    status = None
    while time.monotonic() < deadline:
        code, body = http_call(running.port, request)
        status = json.loads(body).get("status") if code == 200 else code
        if status == "WORKING":
            return
        time.sleep(0.05)
    raise BenchError(f"session {SESSION!r} not WORKING after {WORKING_TIMEOUT_S:.0f}s: {status}")


def run(plan: Plan) -> FanoutResult:
    """Measure the original, then zapgate."""
    with serve(
        original_server(), REPO_ROOT, plan.log_dir / "fanout-original.log", plan.server_prefix
    ) as running:
        original = drive(plan, running, "original", ORIGINAL_PATH, None)
    data_dir = plan.log_dir / "fanout-data"
    data_dir.mkdir(exist_ok=True)
    server = webhooks_server(data_dir, plan.api_key)
    with serve(
        server, REPO_ROOT, plan.log_dir / "fanout-zapgate.log", plan.server_prefix
    ) as running:
        wait_working(running, plan.api_key)
        zapgate = drive(plan, running, "zapgate", ZAPGATE_PATH, plan.api_key)
    return FanoutResult(plan.clients, original, zapgate)


def section(result: FanoutResult) -> str:
    """The workload's table: one row per server and phase, then the ratios."""
    lines = [
        f"fan-out to {result.clients} Socket.IO clients:",
        f"  {'server':<9} {'phase':<6} {'msg/s':>8} {'events/s':>10} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'cpu ms/msg':>10} {'clients':>7} {'complete':>8}",
    ]
    for side in (result.original, result.zapgate):
        for name in PHASES:
            p = side.phases.get(name)
            if p is None:
                lines.append(f"  {side.server:<9} {name:<6} {'FAILED':>8}")
                continue
            lines.append(
                f"  {side.server:<9} {name:<6} {p.messages_per_s:>8.0f} {p.events_per_s:>10.0f} "
                f"{_ms(p.p50_ms):>8} {_ms(p.p99_ms):>8} {p.cpu_ms_per_message:>10.2f} "
                f"{p.client_busy:>7.0%} {'yes' if p.complete else 'NO':>8}"
            )
    for name in PHASES:
        ratio = result.ratio(name)
        if ratio is not None:
            lines.append(f"  zapgate/original events/s, {name}: {ratio:.2f}x")
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - manual runs
    """Run the workload alone: ``python -m bench.fanout [duration_s]``."""
    import secrets
    import sys
    import tempfile

    from bench.wrkrun import cpu_prefixes

    args = list(sys.argv[1:] if argv is None else argv)
    duration = int(args[0]) if args else 10
    server_prefix, load_prefix = cpu_prefixes()
    with tempfile.TemporaryDirectory(prefix="zapgate-fanout-") as tmp:
        plan = Plan(duration, secrets.token_urlsafe(32), Path(tmp), server_prefix, load_prefix)
        print(section(run(plan)))


if __name__ == "__main__":
    main()
