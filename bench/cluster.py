"""The cluster workload: what several nodes on PostgreSQL and Redis cost and give, on this
machine, against one node on PostgreSQL without Redis in the same run.

Four setups, one after the other, each on a fresh database (a copy of a template one node
seeded, see :mod:`bench.fleet`), the same ten simulator sessions (``default``, ``s1``..``s9``),
pacing and per-key limits off:

- ``single``: one node, PostgreSQL only (no Redis: not cluster mode), the baseline;
- ``cluster x1``: one node in cluster mode (PostgreSQL + Redis);
- ``cluster x2``: two nodes in cluster mode, the sessions spread five and five; then the
  failover with the default lease TTL (15 s, see :mod:`bench.failover`);
- ``failover TTL 5``: two nodes with ``ZAPGATE_LEASE_TTL_SECONDS=5``, failover only.

Sends, in each of the first three: two wrk processes of 25 connections each (against the one
node, or one per node), each sending ``POST /api/v1/sessions/{s}/messages`` round-robin over the
ten sessions (:file:`bench/cluster.lua`), for a second of warm-up (first-use costs of a fresh
process), then for ``send_s`` seconds; then the wait until every accepted message is ``sent``,
read from the database (first accepted to the last ``message.sent`` event).

Fan-out, in each of the first three: :file:`bench/node/cluster_fanout.js` connects 100
Socket.IO clients spread round-robin over the nodes and POSTs inbound messages to the
``default`` session through the node that runs it (which writes them): a ``max`` phase (50 POSTs
in flight) and a ``paced`` one (``RATE``/s), each timed from commit (the event's ``timestamp``)
to each client's receipt; on two nodes the clients of the other node get the events through the
cross-node event tail (the PostgreSQL log, woken through Redis).

Nothing is pinned: the nodes, PostgreSQL, Redis and the load generators share the machine's
cores, as a cluster's parts would share them here.
"""

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

from bench import failover
from bench.failover import Failover
from bench.fleet import (
    Database,
    Fleet,
    Node,
    api,
    connect,
    create_sessions,
    database,
    node_env,
    scalars,
    settle,
    where,
)
from bench.fleet import redis as redis_server
from bench.server import BenchError, cpu_seconds
from bench.targets import NODE_DIR, Request
from bench.wrkrun import LUA_SCRIPT, parse_statuses, parse_wrk, request_env

REPO_ROOT = Path(__file__).resolve().parent.parent
SESSIONS = ("default", *(f"s{n}" for n in range(1, 10)))
SEND_S = 5
SEND_WARMUP_S = 1
WRK_PROCESSES = 2
WRK_CONNECTIONS = 25
CLUSTER_LUA = Path(__file__).with_name("cluster.lua")
SEND_BODY = json.dumps({"to": "5511999999999", "text": "Olá, mundo!"}, ensure_ascii=False)
DRAIN_TIMEOUT_S = 120.0
FANOUT_S = 4
CLIENTS = 100
CONCURRENCY = 50
RATE = 50
PHASES = ("max", "paced")
FANOUT_TIMEOUT_S = 120.0
FANOUT_WARMUP = 100
"""Inbound messages ``cluster_fanout.js`` sends before its phases (its WARMUP_MESSAGES)."""
TTL_DEFAULT_S = 15.0
TTL_SHORT_S = 5.0
SINGLE = "single"
T = TypeVar("T")


def log(message: str) -> None:
    """Progress line on stderr, with the time of day."""
    print(f"[bench] {time.strftime('%H:%M:%S')} cluster: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Plan:
    """The API key, where logs go, wrk, and how long each load runs."""

    api_key: str
    log_dir: Path
    wrk: str
    send_s: int = SEND_S
    fanout_s: int = FANOUT_S


@dataclass(frozen=True)
class SendRun:
    """One setup's sends: accepted by the nodes, then all sent."""

    setup: str
    nodes: int
    accepted: int
    refused: int
    load_s: float
    p50_ms: float
    p99_ms: float
    sent: int
    sent_s: float
    """First accepted to the last ``message.sent`` event."""
    drain_s: float
    """From the end of the load until the last accepted message was sent."""
    drained: bool
    cpu_s: float
    """CPU seconds of every node from the load's start until all were sent."""
    statuses: dict[int, int]
    """wrk's answers per HTTP status."""

    @property
    def accepted_per_s(self) -> float:
        return self.accepted / self.load_s if self.load_s else 0.0

    @property
    def sent_per_s(self) -> float:
        return self.sent / self.sent_s if self.sent_s else 0.0

    @property
    def cpu_ms_per_message(self) -> float:
        return 1000 * self.cpu_s / self.sent if self.sent else 0.0

    @property
    def errors(self) -> int:
        return self.refused + (0 if self.drained else 1)


@dataclass(frozen=True)
class FanPhase:
    """One phase of the fan-out, as ``cluster_fanout.js`` measured it."""

    phase: str
    messages: int
    receipts: int
    expected_receipts: int
    complete: bool
    late: int
    failed: int
    seconds: float
    events_per_s: float
    commit_p50_ms: float | None
    commit_p99_ms: float | None
    same_p50_ms: float | None
    same_p99_ms: float | None
    other_p50_ms: float | None
    other_p99_ms: float | None
    post_p50_ms: float | None
    post_p99_ms: float | None
    client_busy: float

    @property
    def errors(self) -> int:
        return self.failed + (0 if self.complete else 1)


@dataclass(frozen=True)
class FanoutRun:
    """One setup's fan-out phases."""

    setup: str
    nodes: int
    phases: dict[str, FanPhase]
    cpu_ms_per_message: float
    """CPU milliseconds of every node per inbound message, over the warm-up and the phases."""

    @property
    def errors(self) -> int:
        return sum(p.errors for p in self.phases.values()) + len(PHASES) - len(self.phases)


@dataclass(frozen=True)
class ClusterResult:
    """Every setup's figures, and the machine's load around them."""

    sends: list[SendRun] = field(default_factory=list)
    fanouts: list[FanoutRun] = field(default_factory=list)
    failovers: list[Failover] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    seconds: float = 0.0
    send_s: int = SEND_S

    @property
    def errors(self) -> int:
        parts: list[SendRun | FanoutRun | Failover] = [*self.sends, *self.fanouts, *self.failovers]
        return sum(p.errors for p in parts) + len(self.failures)

    def send_ratio(self, run: SendRun, figure: Callable[[SendRun], float]) -> float | None:
        """``run``'s figure over the single node's."""
        base = next((s for s in self.sends if s.setup == SINGLE), None)
        return figure(run) / figure(base) if base is not None and figure(base) else None

    def fanout_ratio(self, run: FanoutRun, phase: str) -> float | None:
        """``run``'s events/s in ``phase`` over the single node's."""
        base = next((f for f in self.fanouts if f.setup == SINGLE), None)
        ours, theirs = run.phases.get(phase), base.phases.get(phase) if base else None
        if ours is None or theirs is None or not theirs.events_per_s:
            return None
        return ours.events_per_s / theirs.events_per_s

    def as_dict(self) -> dict[str, object]:
        return {
            "errors": self.errors,
            "sends": [
                {**asdict(s), "accepted_per_s": s.accepted_per_s, "sent_per_s": s.sent_per_s,
                 "ratio_accepted": self.send_ratio(s, lambda r: r.accepted_per_s),
                 "ratio_sent": self.send_ratio(s, lambda r: r.sent_per_s)}
                for s in self.sends
            ],
            "fanouts": [
                {**asdict(f), "ratio_events_per_s": {p: self.fanout_ratio(f, p) for p in PHASES}}
                for f in self.fanouts
            ],
            "failovers": [f.as_dict() for f in self.failovers],
            "failures": self.failures,
            "load_before": self.load_before,
            "load_after": self.load_after,
            "seconds": round(self.seconds, 1),
            "send_s": self.send_s,
        }  # fmt: skip


# sends -----------------------------------------------------------------------------------------


def send_request(api_key: str) -> Request:
    """The send every wrk connection repeats (its path is replaced by ``cluster.lua``'s)."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"}
    return Request("POST", f"/api/v1/sessions/{SESSIONS[0]}/messages", headers, SEND_BODY.encode())


def _wrk(plan: Plan, node: Node, seconds: int) -> subprocess.Popen[str]:
    request = send_request(plan.api_key)
    paths = "\n".join(f"/api/v1/sessions/{s}/messages" for s in SESSIONS)
    env = {**os.environ, **request_env(request), "BENCH_POST_LUA": str(LUA_SCRIPT),
           "BENCH_PATHS": paths}  # fmt: skip
    argv = [
        plan.wrk, "-t1", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "--latency",
        "-s", str(CLUSTER_LUA), f"{node.url}{request.path}",
    ]  # fmt: skip
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _load(plan: Plan, nodes: Sequence[Node], seconds: int) -> list[str]:
    """``WRK_PROCESSES`` wrk runs at once, spread over ``nodes``; their outputs."""
    processes = [_wrk(plan, nodes[i % len(nodes)], seconds) for i in range(WRK_PROCESSES)]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=seconds + 30)
        if process.returncode != 0:
            raise BenchError(f"wrk exited with {process.returncode}: {err}{out}")
        outputs.append(out)
    return outputs


def measure_sends(plan: Plan, setup: str, nodes: Sequence[Node], db: Database) -> SendRun:
    """A warm-up, then two wrk processes (spread over ``nodes``) and the wait until every send
    is sent; only what the measured load accepted counts."""
    _load(plan, nodes, SEND_WARMUP_S)
    asyncio.run(_wait_sent(db, 0))
    started_ms = time.time_ns() // 1_000_000
    cpu_before = _cpu(nodes)
    outputs = _load(plan, nodes, plan.send_s)
    results = [parse_wrk(out) for out in outputs]
    ended_ms = time.time_ns() // 1_000_000
    drained, sent, first_ms, last_ms = asyncio.run(_wait_sent(db, started_ms))
    statuses: dict[int, int] = {}
    for out in outputs:
        for status, count in parse_statuses(out).items():
            statuses[status] = statuses.get(status, 0) + count
    return SendRun(
        setup, len(nodes),
        accepted=sum(r.requests - r.non_2xx for r in results),
        refused=sum(r.errors for r in results),
        load_s=max(r.duration_s for r in results),
        p50_ms=sum(r.p50_ms for r in results) / len(results),
        p99_ms=max(r.p99_ms for r in results),
        sent=sent, sent_s=(last_ms - first_ms) / 1000, drain_s=(last_ms - ended_ms) / 1000,
        drained=drained, cpu_s=_cpu(nodes) - cpu_before, statuses=statuses,
    )  # fmt: skip


def _cpu(nodes: Sequence[Node]) -> float:
    """CPU seconds the nodes used so far, together."""
    return sum(cpu_seconds(node.running.process.pid) for node in nodes)


async def _wait_sent(db: Database, since_ms: int) -> tuple[bool, int, int, int]:
    """Wait until no message is queued; then (none left queued, messages accepted since
    ``since_ms`` that were sent, the first of them accepted, the last ``message.sent``)."""
    async with connect(db) as connection:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while True:
            queued = await scalars(
                connection, "SELECT count(*) FROM messages WHERE direction = 'out'"
                " AND status = 'queued'"
            )  # fmt: skip
            drained = queued[0] == 0
            if drained or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        sent = await scalars(
            connection, "SELECT count(*) FROM messages WHERE direction = 'out'"
            " AND status IN ('sent', 'delivered', 'read') AND created_at >= :since",
            since=since_ms,
        )  # fmt: skip
        first = await scalars(
            connection, "SELECT min(created_at) FROM messages WHERE created_at >= :since",
            since=since_ms,
        )  # fmt: skip
        last = await scalars(
            connection, "SELECT max(created_at) FROM events WHERE type = 'message.sent'"
            " AND created_at >= :since",
            since=since_ms,
        )  # fmt: skip
    return drained, int(sent[0]), int(first[0] or 0), int(last[0] or 0)


# fan-out ---------------------------------------------------------------------------------------


def measure_fanout(plan: Plan, setup: str, nodes: Sequence[Node]) -> FanoutRun:
    """Clients spread over ``nodes``; inbound POSTs through the node running ``default``."""
    with api(nodes[0], plan.api_key) as client:
        shown = client.get(f"/api/v1/sessions/{SESSIONS[0]}").json()
    writer = next((n for n in nodes if n.name == shown.get("node")), nodes[0])
    argv = [
        "node", str(NODE_DIR / "cluster_fanout.js"),
        "--urls", ",".join(n.url for n in nodes), "--post", writer.url,
        "--path", f"/api/v1/sessions/{SESSIONS[0]}/simulate/inbound",
        "--clients", str(CLIENTS), "--duration", str(plan.fanout_s),
        "--concurrency", str(CONCURRENCY), "--rate", str(RATE), "--phases", ",".join(PHASES),
    ]  # fmt: skip
    env = {**os.environ, "BENCH_TOKEN": plan.api_key}  # not in argv: ps shows it
    cpu_before = _cpu(nodes)
    try:
        done = subprocess.run(
            argv, env=env, cwd=NODE_DIR, capture_output=True, text=True, timeout=FANOUT_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"cluster_fanout.js did not finish within {exc.timeout:.0f} s") from exc
    if done.returncode != 0:
        raise BenchError(f"cluster_fanout.js failed: {done.stderr[-2000:]}")
    document = json.loads(done.stdout)
    phases = {raw["phase"]: FanPhase(**raw) for raw in document["phases"]}
    messages = FANOUT_WARMUP + sum(p.messages for p in phases.values())
    return FanoutRun(setup, len(nodes), phases, 1000 * (_cpu(nodes) - cpu_before) / messages)


# the setups ------------------------------------------------------------------------------------


class Runner:
    """Runs the setups in order, keeping each measurement or why it failed."""

    def __init__(self, plan: Plan, redis_url: str, template: Database) -> None:
        self.plan = plan
        self.redis_url = redis_url
        self.template = template
        self.result = ClusterResult(load_before=os.getloadavg())

    def attempt(self, what: str, work: Callable[[], T]) -> T | None:
        """``work()``, or None with the failure kept."""
        try:
            return work()
        except (BenchError, OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
            self.result.failures.append(f"{what}: {exc}")
            return None

    def env(self, db: Database, name: str, cluster: bool, ttl_s: float) -> dict[str, str]:
        data_dir = self.plan.log_dir / f"cluster-{db.name}-{name}"
        redis_url = self.redis_url if cluster else None
        return node_env(db, self.plan.api_key, data_dir, name, redis_url, ttl_s)

    def loads(self, setup: str, nodes: list[Node], db: Database) -> None:
        """Sends, then fan-out, on ``nodes`` once the sessions work (and are spread)."""
        with api(nodes[0], self.plan.api_key) as client:
            create_sessions(client, SESSIONS[1:])
            settle(client, SESSIONS, nodes)
        log(f"{setup}: {self.plan.send_s} s of sends, then until all are sent; then fan-out")
        sends = self.attempt(f"{setup} sends", lambda: measure_sends(self.plan, setup, nodes, db))
        if sends is not None:
            self.result.sends.append(sends)
        fan = self.attempt(f"{setup} fan-out", lambda: measure_fanout(self.plan, setup, nodes))
        if fan is not None:
            self.result.fanouts.append(fan)

    def single(self) -> None:
        """The seed of the template and the single node start together (no shared database);
        the seed stops before the single node is loaded."""
        with database(SINGLE) as db, Fleet(REPO_ROOT, self.plan.log_dir) as fleet:
            log("starting the template's seed and the single node (PostgreSQL, no Redis)")
            seed_env = self.env(self.template, "template", False, TTL_DEFAULT_S)
            seeder, node = fleet.start(
                [("template", seed_env), (SINGLE, self.env(db, SINGLE, False, TTL_DEFAULT_S))]
            )
            fleet.stop(seeder)
            self.loads(SINGLE, [node], db)

    def cluster(self, size: int, ttl_s: float, load: bool) -> None:
        with (
            database(f"x{size}", self.template) as db,
            Fleet(REPO_ROOT, self.plan.log_dir) as fleet,
        ):
            names = ["a", "b", "c"][:size]
            log(f"starting {size} cluster node(s), lease TTL {ttl_s:.0f} s")
            nodes = fleet.start([(n, self.env(db, n, True, ttl_s)) for n in names])
            if load:
                self.loads(f"cluster x{size}", nodes, db)
            else:
                with api(nodes[0], self.plan.api_key) as client:
                    create_sessions(client, SESSIONS[1:])
            if size == 2:
                log(f"cluster x2: failover with a {ttl_s:.0f} s lease TTL")
                moved = self.attempt(
                    f"failover TTL {ttl_s:.0f}",
                    lambda: failover.measure(fleet, nodes, db, self.plan.api_key, ttl_s),
                )
                if moved is not None:
                    self.result.failovers.append(moved)


def run(plan: Plan) -> ClusterResult:
    """Every setup in turn (a failed one is noted, the rest still run)."""
    started = time.monotonic()
    with redis_server(plan.log_dir / "cluster-redis") as redis_url, database("tpl") as template:
        runner = Runner(plan, redis_url, template)
        runner.single()  # seeds the template too: nothing else runs without it
        runner.attempt("cluster x1", lambda: runner.cluster(1, TTL_DEFAULT_S, load=True))
        runner.attempt("cluster x2", lambda: runner.cluster(2, TTL_DEFAULT_S, load=True))
        runner.attempt("failover TTL 5", lambda: runner.cluster(2, TTL_SHORT_S, load=False))
    result = runner.result
    return ClusterResult(
        result.sends, result.fanouts, result.failovers, result.failures,
        result.load_before, os.getloadavg(), time.monotonic() - started, plan.send_s,
    )  # fmt: skip


# the report ------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _loadavg(load: tuple[float, float, float]) -> str:
    return "/".join(f"{x:.1f}" for x in load)


def send_lines(result: ClusterResult, plan_s: str) -> list[str]:
    lines = [
        f"  sends ({WRK_PROCESSES} wrk x {WRK_CONNECTIONS} conns{plan_s}, POST "
        f"/api/v1/sessions/{{s}}/messages round-robin over {len(SESSIONS)} sessions; ratio to "
        f"{SINGLE}):",
        f"    {'setup':<12} {'nodes':>5} {'accepted/s':>10} {'ratio':>6} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'all sent/s':>10} {'ratio':>6} {'sent by':>9} {'cpu ms/msg':>10}",
    ]
    for s in result.sends:
        drained = f"+{s.drain_s:.1f} s" if s.drained else "NOT all"
        lines.append(
            f"    {s.setup:<12} {s.nodes:>5} {s.accepted_per_s:>10,.0f} "
            f"{_ratio(result.send_ratio(s, lambda r: r.accepted_per_s)):>6} {s.p50_ms:>7.1f} "
            f"{s.p99_ms:>7.1f} {s.sent_per_s:>10,.0f} "
            f"{_ratio(result.send_ratio(s, lambda r: r.sent_per_s)):>6} {drained:>9} "
            f"{s.cpu_ms_per_message:>10.2f}"
        )
        if s.refused:
            answers = ", ".join(f"{code}: {n}" for code, n in sorted(s.statuses.items()))
            lines.append(f"    {'':<12} {s.refused} refused or failed [{answers}]")
    lines.append(
        "    (all sent/s: accepted messages, first accepted -> last sent; sent by: the last "
        "send, after the load ended; cpu: every node's, load start -> all sent)"
    )
    return lines


def fanout_lines(result: ClusterResult) -> list[str]:
    lines = [
        f"  fan-out ({CLIENTS} Socket.IO clients spread over the nodes, inbound POSTs through "
        f"the writing node; max = {CONCURRENCY} in flight, paced = {RATE}/s; latency from "
        "commit to client, ms):",
        f"    {'setup':<12} {'phase':<6} {'events/s':>9} {'ratio':>6} {'p50':>5} {'p99':>6} "
        f"{'same p50/p99':>13} {'other p50/p99':>14} {'clients':>7} {'complete':>8} "
        f"{'cpu ms/msg':>10}",
    ]
    for f in result.fanouts:
        for name in PHASES:
            p = f.phases.get(name)
            if p is None:
                lines.append(f"    {f.setup:<12} {name:<6} {'FAILED':>9}")
                continue
            same = f"{_ms(p.same_p50_ms)}/{_ms(p.same_p99_ms)}"
            other = f"{_ms(p.other_p50_ms)}/{_ms(p.other_p99_ms)}"
            cpu = f"{f.cpu_ms_per_message:.2f}" if name == PHASES[0] else ""
            lines.append(
                f"    {f.setup:<12} {name:<6} {p.events_per_s:>9,.0f} "
                f"{_ratio(result.fanout_ratio(f, name)):>6} {_ms(p.commit_p50_ms):>5} "
                f"{_ms(p.commit_p99_ms):>6} {same:>13} {other:>14} {p.client_busy:>7.0%} "
                f"{'yes' if p.complete else 'NO':>8} {cpu:>10}"
            )
    lines.append(
        "    (same/other: clients on the writing node / on the other node, which get the events "
        "through the event tail; clients: the load process's share of a core; cpu: every "
        "node's, per inbound message, both phases and the warm-up)"
    )
    return lines


def failover_lines(result: ClusterResult) -> list[str]:
    lines = [
        "  failover (2 nodes, kill -9 of the node running the most sessions; through the "
        "survivor, polled every 50 ms):"
    ]
    pad = " " * 15
    for f in result.failovers:
        gone = "-" if f.node_gone_s is None else f"{f.node_gone_s:.1f} s"
        lines += [
            f"    TTL {f.ttl_s:>4.0f} s: {len(f.observed_s)}/{f.moved} of {f.sessions} sessions "
            f"WORKING on the survivor after median {_s(f.median_s)}, max {_s(f.max_s)} "
            f"(status written at {statistics_line(f.written_s)}); dead node unlisted after "
            f"{gone}; killed at {f.killed_at}",
            f"{pad}messages accepted just before the kill: {f.reached_sent}/{f.accepted} sent "
            f"({f.failed} failed, {f.echoed_twice} echoed twice); slowest GET /api/v1/sessions "
            f"{f.slowest_list_s:.1f} s",
        ]
        if f.dropped:
            seen = "; ".join(f.dropped_seen[:3]) + ("; ..." if f.dropped > 3 else "")
            lines.append(
                f"{pad}!! {f.dropped} of the survivor's own sessions stopped running there "
                f"meanwhile ({seen})"
            )
    return lines


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def statistics_line(values: tuple[float, ...]) -> str:
    """``median/max s`` of ``values``."""
    if not values:
        return "-"
    return f"{statistics.median(values):.1f}/{max(values):.1f} s"


def error_detail(result: ClusterResult) -> str:
    """What went wrong, for the failure banner."""
    bad = [f"sends {s.setup}" for s in result.sends if s.errors]
    bad += [f"fan-out {f.setup}" for f in result.fanouts if f.errors]
    bad += [f"failover TTL {f.ttl_s:.0f}" for f in result.failovers if f.errors]
    return f"errors in: {', '.join(bad) or '-'}; failed: {'; '.join(result.failures) or '-'}"


def section(result: ClusterResult) -> str:
    """The workload's tables, then the failovers and what failed."""
    lines = [
        f"cluster (PostgreSQL at {where()} + Redis; {os.cpu_count()} cores shared by the "
        f"nodes, PostgreSQL, Redis and the load, none pinned; load average "
        f"{_loadavg(result.load_before)} before, {_loadavg(result.load_after)} after; "
        f"{result.seconds:.0f} s):",
        *send_lines(result, f", {result.send_s} s"),
        *fanout_lines(result),
        *failover_lines(result),
        *(f"  FAILED: {failure}" for failure in result.failures),
    ]
    return "\n".join(lines)


def main() -> None:  # pragma: no cover - manual runs
    """Run the workload alone: ``python -m bench.cluster``."""
    import secrets
    import tempfile

    from bench.wrkrun import ensure_wrk

    with tempfile.TemporaryDirectory(prefix="zapgate-cluster-") as tmp:
        plan = Plan(secrets.token_urlsafe(32), Path(tmp), ensure_wrk())
        print(section(run(plan)))


if __name__ == "__main__":
    main()
