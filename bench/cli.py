"""Command line: start each target, load it (wrk, or the sessions workload), report the figures."""

import argparse
import dataclasses
import http.client
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from bench import (
    cloudapi,
    cluster,
    e2e,
    fanout,
    history,
    hostile,
    neighbours,
    report,
    sessions,
    sinks,
    victim,
    webhooks,
)
from bench.report import Result
from bench.server import BenchError, http_call, serve
from bench.targets import SEND_KEY, Target, build_targets, key_command, sessions_server
from bench.wrkrun import (
    CONNECTIONS,
    THREADS,
    WrkResult,
    cpu_prefixes,
    ensure_wrk,
    load_cpus,
    parse_wrk,
    run_wrk,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DURATION_S = 10
WARMUP_S = 2
SESSIONS = "sessions"
"""Name of the sessions workload (run after the wrk targets)."""
WEBHOOKS = "webhooks"
"""Name of the webhooks workload."""
E2E = "e2e"
"""Name of the end-to-end workload (sends all the way to ``read``, pacing off)."""
FANOUT = "fanout"
"""Name of the fan-out workload (the original and zapgate, 100 Socket.IO clients)."""
HISTORY = "history"
"""Name of the history workload (page latency and RSS with 10,000 and 1,000,000 messages)."""
CLUSTER = "cluster"
"""Name of the cluster workload (PostgreSQL + Redis: sends, fan-out and failover, 1 and 2 nodes)."""
SINKS = "sinks"
"""Name of the sinks workload (events/s to RabbitMQ with confirms, next to a webhook's)."""
CLOUDAPI = "cloudapi"
"""Name of the Cloud API workload (sustained sends to a local Graph API at a strict rate)."""
NEIGHBOURS = "neighbours"
"""Name of the noisy-neighbour workload (run last)."""
WORKLOADS = (E2E, FANOUT, SESSIONS, WEBHOOKS, SINKS, HISTORY, CLUSTER, CLOUDAPI, NEIGHBOURS)


@dataclass(frozen=True)
class Setup:
    """Everything a measurement needs besides the target."""

    wrk: str
    duration_s: int
    server_prefix: list[str]
    wrk_prefix: list[str]
    log_dir: Path
    sessions: int
    client_cpu: int | None
    server_cpu: int | None
    backlog: int
    attacks: frozenset[str]
    history: int


def log(message: str) -> None:
    """Progress line on stderr."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def positive_int(text: str) -> int:
    """Parse a positive integer (argparse type)."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse ``--only``, ``--duration``, ``--sessions``, ``--backlog`` (defaults from the env)."""
    names = [*build_targets(Path(), ""), *WORKLOADS]
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only", action="append", choices=names, help="run only this target (repeatable)"
    )
    parser.add_argument(
        "--duration",
        type=positive_int,
        default=os.environ.get("BENCH_DURATION", str(DEFAULT_DURATION_S)),  # argparse applies type
        help="measured seconds per target (env BENCH_DURATION, default 10)",
    )
    parser.add_argument(
        "--sessions",
        type=positive_int,
        default=os.environ.get("BENCH_SESSIONS", str(sessions.DEFAULT_SESSIONS)),
        help=f"sessions of the sessions workload (env BENCH_SESSIONS, "
        f"default {sessions.DEFAULT_SESSIONS})",
    )
    parser.add_argument(
        "--backlog",
        type=positive_int,
        default=os.environ.get("BENCH_WEBHOOK_BACKLOG", str(webhooks.DEFAULT_BACKLOG)),
        help=f"deliveries owed after the receivers' outage in the webhooks workload (events "
        f"stored = backlog / subscriptions; env BENCH_WEBHOOK_BACKLOG, default "
        f"{webhooks.DEFAULT_BACKLOG}; target {webhooks.TARGET_BACKLOG})",
    )
    parser.add_argument(
        "--history",
        type=positive_int,
        default=os.environ.get("BENCH_HISTORY", str(history.DEFAULT_LARGE)),
        help=f"messages stored for the large history run (env BENCH_HISTORY, "
        f"default {history.DEFAULT_LARGE})",
    )
    parser.add_argument(
        "--attacks",
        type=hostile.attack_names,
        default=os.environ.get("BENCH_NEIGHBOURS_ATTACKS", ",".join(hostile.ATTACKS)),
        help=f"tenant A's attacks in the neighbours workload, comma-separated "
        f"(env BENCH_NEIGHBOURS_ATTACKS, default all: {','.join(hostile.ATTACKS)})",
    )
    return parser.parse_args(argv)


def smoke_check(port: int, target: Target) -> None:
    """Send the request once; warn loudly if it does not answer 2xx."""
    try:
        status, body = http_call(port, target.request)
    except (OSError, http.client.HTTPException) as exc:
        log(f"!!! {target.name}: request failed: {exc!r}")
        return
    if not 200 <= status < 300:
        log(f"!!! {target.name}: request answered {status}: {body[:200]!r}")


def with_send_key(target: Target) -> Target:
    """``target`` sending with a new key whose only scope is ``send`` (made in its data dir)."""
    env = {**os.environ, **target.server.env}
    made = subprocess.run(
        key_command("default", "send"), cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    if made.returncode != 0:
        raise BenchError(f"could not make a send key: {made.stderr[-500:]}")
    headers = {**target.request.headers, "Authorization": f"Bearer {made.stdout.strip()}"}
    return dataclasses.replace(target, request=dataclasses.replace(target.request, headers=headers))


def measure(target: Target, setup: Setup) -> WrkResult:
    """Start the target's server, warm it up, then measure it with wrk."""
    if target.name == SEND_KEY:
        target = with_send_key(target)
    log(f"{target.name}: starting server")
    log_path = setup.log_dir / f"{target.name}.log"
    with serve(target.server, REPO_ROOT, log_path, setup.server_prefix) as running:
        smoke_check(running.port, target)
        log(f"{target.name}: warm-up {WARMUP_S}s")
        run_wrk(setup.wrk, running.port, target.request, WARMUP_S, setup.wrk_prefix)
        log(f"{target.name}: measuring {setup.duration_s}s")
        output = run_wrk(
            setup.wrk, running.port, target.request, setup.duration_s, setup.wrk_prefix
        )
    return parse_wrk(output)


def measure_all(targets: list[Target], setup: Setup) -> list[report.Outcome]:
    """Measure targets one after the other; a failure does not stop the rest."""
    outcomes = []
    for target in targets:
        try:
            outcomes.append(report.Outcome(target.name, result=measure(target, setup)))
        except BenchError as exc:
            outcomes.append(report.Outcome(target.name, failure=str(exc)))
    return outcomes


def outcome(name: str, run: Callable[[], Result]) -> report.Outcome:
    """A workload's result, or why it could not be measured."""
    try:
        return report.Outcome(name, result=run())
    except BenchError as exc:
        return report.Outcome(name, failure=str(exc))


def measure_sessions(api_key: str, setup: Setup) -> report.Outcome:
    """Start a fresh zapgate server and run the sessions workload against it."""
    log(f"{SESSIONS}: starting server ({setup.sessions} sessions, then {setup.duration_s}s load)")
    data_dir = setup.log_dir / "sessions-data"
    data_dir.mkdir()
    plan = sessions.Plan(setup.sessions, setup.duration_s, api_key)
    log_path = setup.log_dir / f"{SESSIONS}.log"
    try:
        server = sessions_server(data_dir, api_key)
        with serve(server, REPO_ROOT, log_path, setup.server_prefix) as running:
            result = sessions.run(running, plan, setup.client_cpu)
        log(f"{SESSIONS}: restarting on the same data ({setup.sessions} sessions to run again)")
        restart_log = setup.log_dir / f"{SESSIONS}-restart.log"
        restart = sessions.measure_restart(
            server, REPO_ROOT, restart_log, plan, setup.server_prefix, setup.client_cpu
        )
        result = dataclasses.replace(result, restart=restart)
    except BenchError as exc:
        return report.Outcome(SESSIONS, failure=str(exc))
    return report.Outcome(SESSIONS, result=result)


def measure_webhooks(api_key: str, setup: Setup) -> report.Outcome:
    """Run the webhooks workload (it starts its own zapgate server and receivers)."""
    log(f"{WEBHOOKS}: {setup.duration_s}s of live load, then a {setup.backlog}-delivery backlog")
    plan = webhooks.Plan(
        setup.duration_s, setup.backlog, api_key, setup.log_dir,
        server_prefix=setup.server_prefix, receiver_prefix=setup.wrk_prefix,
        server_cpu=setup.server_cpu, client_cpu=setup.client_cpu,
    )  # fmt: skip
    return outcome(WEBHOOKS, lambda: webhooks.run(plan))


def measure_sinks(api_key: str, setup: Setup) -> report.Outcome:
    """Run the sinks workload: RabbitMQ events/s next to webhook deliveries/s, one backlog."""
    log(f"{SINKS}: {sinks.EVENTS} events drained by a RabbitMQ sink, then by a webhook")
    plan = sinks.Plan(api_key, setup.log_dir, setup.server_prefix, setup.client_cpu)
    return outcome(SINKS, lambda: sinks.run(plan))


def measure_cloudapi(api_key: str, setup: Setup) -> report.Outcome:
    """Run the Cloud API workload (its own zapgate server and Graph API)."""
    log(f"{CLOUDAPI}: {cloudapi.SECONDS}s of sends offered at {cloudapi.RATE}/s")
    plan = cloudapi.Plan(
        api_key, setup.log_dir, setup.server_prefix, setup.wrk_prefix, setup.client_cpu
    )
    return outcome(CLOUDAPI, lambda: cloudapi.run(plan))


def measure_e2e(api_key: str, setup: Setup) -> report.Outcome:
    """Run the end-to-end workload (its own zapgate server, pacing off)."""
    log(f"{E2E}: {setup.duration_s}s of sends, then until every one is read")
    plan = e2e.Plan(
        setup.duration_s, api_key, setup.log_dir, setup.wrk, setup.server_prefix, setup.wrk_prefix
    )
    return outcome(E2E, lambda: e2e.run(plan))


def measure_fanout(api_key: str, setup: Setup) -> report.Outcome:
    """Run the fan-out workload against the original, then zapgate."""
    log(f"{FANOUT}: {fanout.CLIENTS} clients, max and paced phases of {setup.duration_s}s each")
    plan = fanout.Plan(
        setup.duration_s, api_key, setup.log_dir, setup.server_prefix, setup.wrk_prefix
    )
    return outcome(FANOUT, lambda: fanout.run(plan))


def measure_history(api_key: str, setup: Setup) -> report.Outcome:
    """Run the history workload (its own seeded servers, small and large)."""
    log(f"{HISTORY}: {history.DEFAULT_SMALL} then {setup.history} stored messages")
    plan = history.Plan(
        api_key, setup.log_dir, server_prefix=setup.server_prefix,
        client_cpu=setup.client_cpu, messages_large=setup.history,
    )  # fmt: skip
    return outcome(HISTORY, lambda: history.run(plan))


def measure_cluster(api_key: str, setup: Setup) -> report.Outcome:
    """Run the cluster workload (its own PostgreSQL databases, Redis and nodes)."""
    send_s = min(setup.duration_s, cluster.SEND_S)
    log(f"{CLUSTER}: single node, then 1 and 2 cluster nodes ({send_s} s of sends each), failover")
    plan = cluster.Plan(api_key, setup.log_dir, setup.wrk, send_s=send_s)
    return outcome(CLUSTER, lambda: cluster.run(plan))


def measure_neighbours(api_key: str, setup: Setup) -> report.Outcome:
    """Run the noisy-neighbour workload (its own zapgate server, two tenants, two phases)."""
    duration_s = max(setup.duration_s, neighbours.MIN_DURATION_S)
    log(f"{NEIGHBOURS}: tenant B alone for {duration_s}s, then while tenant A attacks")
    nice = shutil.which("nice")
    plan = neighbours.Plan(
        duration_s, api_key, setup.log_dir, setup.wrk,
        server_prefix=setup.server_prefix,
        hostile_prefix=[*setup.wrk_prefix, *([nice, "-n", "19"] if nice else [])],
        client_cpu=setup.client_cpu, attacks=setup.attacks,
    )  # fmt: skip
    return outcome(NEIGHBOURS, lambda: neighbours.run(plan))


def payload(outcomes: list[report.Outcome], setup: Setup) -> dict[str, object]:
    """Build the JSON document written to ``bench/results/latest.json``."""
    return {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {
            "duration_s": setup.duration_s,
            "warmup_s": WARMUP_S,
            "connections": CONNECTIONS,
            "threads": THREADS,
            "sessions": setup.sessions,
            "sessions_create_concurrency": sessions.CREATE_CONCURRENCY,
            "sessions_send_concurrency": sessions.SEND_CONCURRENCY,
            "webhooks_inbound_concurrency": webhooks.INBOUND_CONCURRENCY,
            "webhooks_backlog": setup.backlog,
            "neighbours_victim_rate": victim.RATE,
            "neighbours_history": neighbours.DEFAULT_HISTORY,
            "neighbours_attacks": sorted(setup.attacks),
            "fanout_clients": fanout.CLIENTS,
            "fanout_paced_rate": fanout.RATE,
            "history_large": setup.history,
            "server_prefix": setup.server_prefix,
            "wrk_prefix": setup.wrk_prefix,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "results": [o.as_dict() for o in outcomes],
        "ratio_zapgate_over_baseline": report.throughput_ratio(outcomes, "zapgate", "baseline"),
        "ratio_zapgate_e2e_over_baseline": report.throughput_ratio(
            outcomes, "zapgate-e2e", "baseline"
        ),
        "ratio_zapgate_over_original": report.throughput_ratio(outcomes, "zapgate", "original"),
    }


def print_report(outcomes: list[report.Outcome]) -> None:
    """The wrk table and ratio (if a wrk target ran), then the sessions section (if measured)."""
    if any(o.target not in WORKLOADS for o in outcomes):
        print(report.table(outcomes))
    for target, meaning in (
        ("zapgate", "accept path, outbox paced (production defaults)"),
        ("zapgate-e2e", "every message also sent and acknowledged on the same core"),
    ):
        for reference in ("baseline", "original"):
            ratio = report.throughput_ratio(outcomes, target, reference)
            if ratio is not None:
                print(f"{target}/{reference} throughput: {ratio:.2f}x  ({meaning})")
    print(report.summary(outcomes))
    for o in outcomes:
        if isinstance(o.result, e2e.E2EResult):
            print(e2e.section(o.result))
        if isinstance(o.result, fanout.FanoutResult):
            print(fanout.section(o.result))
        if isinstance(o.result, history.HistoryResult):
            print(history.section(o.result))
        if isinstance(o.result, sessions.SessionsResult):
            print(report.sessions_section(o.result))
        if isinstance(o.result, webhooks.WebhooksResult):
            print(report.webhooks_section(o.result))
        if isinstance(o.result, cluster.ClusterResult):
            print(cluster.section(o.result))
        if isinstance(o.result, cloudapi.CloudApiResult):
            print(cloudapi.section(o.result))
        if isinstance(o.result, sinks.SinksResult):
            print(sinks.section(o.result))
        if isinstance(o.result, neighbours.NeighboursResult):
            print(report.neighbours_section(o.result))


def run(args: argparse.Namespace) -> int:
    """Run the selected targets; return 0 only if all ran without errors."""
    wrk = ensure_wrk()
    server_prefix, wrk_prefix = cpu_prefixes()
    cpus = load_cpus()
    api_key = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="zapgate-bench-") as tmp:
        data_dir = Path(tmp, "data")
        data_dir.mkdir()
        targets = build_targets(data_dir, api_key)
        chosen = [t for name, t in targets.items() if not args.only or name in args.only]
        setup = Setup(
            wrk, args.duration, server_prefix, wrk_prefix, Path(tmp),
            sessions=args.sessions, client_cpu=cpus[1] if cpus else None,
            server_cpu=cpus[0] if cpus else None, backlog=args.backlog, attacks=args.attacks,
            history=args.history,
        )  # fmt: skip
        outcomes = measure_all(chosen, setup)
        workloads = {
            E2E: measure_e2e,
            FANOUT: measure_fanout,
            SESSIONS: measure_sessions,
            WEBHOOKS: measure_webhooks,
            SINKS: measure_sinks,
            HISTORY: measure_history,
            CLUSTER: measure_cluster,
            CLOUDAPI: measure_cloudapi,
            NEIGHBOURS: measure_neighbours,
        }
        for name, measure_workload in workloads.items():
            if not args.only or name in args.only:
                outcomes.append(measure_workload(api_key, setup))
    print_report(outcomes)
    log(f"results written to {report.write_json(payload(outcomes, setup))}")
    report.warn_failures(outcomes)
    return 0 if all(o.ok for o in outcomes) else 1


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    """Turn SIGTERM into KeyboardInterrupt so servers are stopped on the way out."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit code 0 ok, 1 failures/errors, 130 interrupted."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run(args)
    except KeyboardInterrupt:
        log("interrupted; servers stopped")
        return 130
    except BenchError as exc:
        log(f"error: {exc}")
        return 1
